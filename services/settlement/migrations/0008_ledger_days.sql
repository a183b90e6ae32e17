-- Statements (issue 13): each merchant's payable per currency and posting day (its local
-- date), as last announced on settlement.ledger-day.v1; a recomputed day that differs gets
-- the next version. The job finds the merchants to recompute by the postings made since
-- its watermark.
CREATE TABLE ledger_days (
    merchant_id     TEXT        NOT NULL,
    currency        CHAR(3)     NOT NULL,
    day             DATE        NOT NULL,
    opening_balance BIGINT      NOT NULL,
    sales           BIGINT      NOT NULL,
    refunds         BIGINT      NOT NULL,
    fees            BIGINT      NOT NULL,
    fx              BIGINT      NOT NULL,
    disputes        BIGINT      NOT NULL,
    payouts         BIGINT      NOT NULL,
    other           BIGINT      NOT NULL,
    closing_balance BIGINT      NOT NULL,
    capture_count   INT         NOT NULL,
    reversal_count  INT         NOT NULL,
    refund_count    INT         NOT NULL,
    payout_count    INT         NOT NULL,
    version         INT         NOT NULL CHECK (version >= 1),
    computed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, currency, day),
    CHECK (closing_balance = opening_balance + sales + refunds + fees + fx + disputes + payouts
        + other)
);

CREATE TABLE ledger_day_watermark (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    posted_since TIMESTAMPTZ NOT NULL
);

CREATE INDEX ledger_transactions_merchant_created ON ledger_transactions (merchant_id, created_at);
CREATE INDEX ledger_transactions_created ON ledger_transactions (created_at);
