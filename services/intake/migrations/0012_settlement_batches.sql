-- What settlement announced of each closed batch (settlement.batch-closed.v1): the merchant's
-- balance and payout dates are read from here. Settlement's ledger stays the source of truth.
CREATE TABLE settlement_batches (
    batch_id        UUID PRIMARY KEY,
    merchant_id     TEXT        NOT NULL,
    currency        CHAR(3)     NOT NULL,
    batch_date      DATE        NOT NULL,
    value_date      DATE        NOT NULL,
    gross_amount    BIGINT      NOT NULL,
    fee_amount      BIGINT      NOT NULL,
    refund_amount   BIGINT      NOT NULL,
    reversal_amount BIGINT      NOT NULL,
    net_amount      BIGINT      NOT NULL,
    payment_count   INT         NOT NULL,
    refund_count    INT         NOT NULL,
    reversal_count  INT         NOT NULL,
    closed_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX settlement_batches_merchant ON settlement_batches (merchant_id, batch_date DESC);
