-- Fee plans come from sanalpos_common.fees, chosen per merchant by merchant.updated.
DROP TABLE fee_plans;

CREATE TABLE merchants (
    merchant_id         TEXT PRIMARY KEY,
    name                TEXT        NOT NULL,
    settlement_currency CHAR(3)     NOT NULL,
    time_zone           TEXT        NOT NULL,
    cutoff_time         TIME        NOT NULL,
    fee_plan            TEXT        NOT NULL,
    active              BOOLEAN     NOT NULL,
    version             BIGINT      NOT NULL CHECK (version >= 1),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One batch per merchant, currency and business date; a manual close mid-day lets a second
-- batch of the same date open, hence "at most one open" rather than unique.
CREATE TABLE settlement_batches (
    id              UUID PRIMARY KEY,
    merchant_id     TEXT        NOT NULL,
    currency        CHAR(3)     NOT NULL,
    batch_date      DATE        NOT NULL,
    closes_at       TIMESTAMPTZ NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at       TIMESTAMPTZ,
    close_reason    TEXT CHECK (close_reason IN ('cutoff', 'manual')),
    value_date      DATE,
    gross_amount    BIGINT,
    fee_amount      BIGINT,
    refund_amount   BIGINT,
    reversal_amount BIGINT,
    net_amount      BIGINT,
    payment_count   INT,
    refund_count    INT,
    reversal_count  INT,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE UNIQUE INDEX settlement_batches_one_open
    ON settlement_batches (merchant_id, currency, batch_date) WHERE status = 'open';
CREATE INDEX settlement_batches_due ON settlement_batches (closes_at) WHERE status = 'open';
CREATE INDEX settlement_batches_merchant ON settlement_batches (merchant_id, batch_date DESC);

-- Several refunds per payment: the deterministic transaction id is the duplicate guard now.
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_payment_id_kind_key;
ALTER TABLE ledger_transactions ADD COLUMN batch_id UUID REFERENCES settlement_batches (id);
CREATE INDEX ledger_transactions_payment ON ledger_transactions (payment_id);
CREATE INDEX ledger_transactions_batch ON ledger_transactions (batch_id);

-- Each captured payment and where it stands: settled when its batch closes, or voided.
CREATE TABLE settlement_payments (
    payment_id             UUID PRIMARY KEY,
    merchant_id            TEXT        NOT NULL,
    currency               CHAR(3)     NOT NULL,
    batch_id               UUID        NOT NULL REFERENCES settlement_batches (id),
    capture_transaction_id UUID        NOT NULL REFERENCES ledger_transactions (id),
    gross_amount           BIGINT      NOT NULL CHECK (gross_amount > 0),
    fee_amount             BIGINT      NOT NULL CHECK (fee_amount >= 0),
    status                 TEXT        NOT NULL CHECK (status IN ('captured', 'voided', 'settled')),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX settlement_payments_batch ON settlement_payments (batch_id) WHERE status = 'captured';

-- A void read before its capture (different topics carry no order between them): applied the
-- moment the capture arrives.
CREATE TABLE voids_before_capture (
    payment_id  UUID PRIMARY KEY,
    message_id  UUID        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
