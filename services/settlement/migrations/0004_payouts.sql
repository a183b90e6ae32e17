-- Payouts (issue 13): merchants' bank accounts from merchant.payout-account.v1, the payouts the
-- payout job makes from batches that reached their value date, the files sent to the bank,
-- and why a merchant's due money was not paid out on a run date.
CREATE TABLE payout_accounts (
    account_id  UUID PRIMARY KEY,
    merchant_id TEXT        NOT NULL,
    currency    CHAR(3)     NOT NULL,
    iban        TEXT        NOT NULL,
    holder_name TEXT        NOT NULL,
    is_default  BOOLEAN     NOT NULL,
    active      BOOLEAN     NOT NULL,
    version     BIGINT      NOT NULL CHECK (version >= 1),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payout_accounts_default ON payout_accounts (merchant_id, currency)
    WHERE is_default AND active;

CREATE TABLE payout_files (
    id            UUID PRIMARY KEY,
    run_date      DATE        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    xml_path      TEXT        NOT NULL,
    csv_path      TEXT        NOT NULL,
    payout_count  INT         NOT NULL,
    message_id    TEXT        NOT NULL
);

CREATE TABLE payouts (
    id          UUID PRIMARY KEY,
    merchant_id TEXT        NOT NULL,
    currency    CHAR(3)     NOT NULL,
    amount      BIGINT      NOT NULL CHECK (amount > 0),
    value_date  DATE        NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('in_transit', 'paid', 'returned')),
    account_id  UUID        NOT NULL REFERENCES payout_accounts (account_id),
    iban        TEXT        NOT NULL,
    holder_name TEXT        NOT NULL,
    file_id     UUID REFERENCES payout_files (id),
    reason      TEXT,
    version     INT         NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payouts_merchant ON payouts (merchant_id, created_at DESC);
CREATE INDEX payouts_unfiled ON payouts (created_at) WHERE file_id IS NULL;

CREATE TABLE payout_lines (
    payout_id UUID   NOT NULL REFERENCES payouts (id),
    batch_id  UUID   NOT NULL REFERENCES settlement_batches (id),
    amount    BIGINT NOT NULL,
    PRIMARY KEY (payout_id, batch_id)
);

-- The payout a closed batch is paid by now; NULL: not yet, or its payout was returned.
ALTER TABLE settlement_batches ADD COLUMN payout_id UUID REFERENCES payouts (id);
CREATE INDEX settlement_batches_unpaid ON settlement_batches (value_date)
    WHERE status = 'closed' AND payout_id IS NULL;

-- Due money not paid out on a run date, and why (one row per merchant, currency and date).
CREATE TABLE payout_holds (
    merchant_id TEXT        NOT NULL,
    currency    CHAR(3)     NOT NULL,
    run_date    DATE        NOT NULL,
    reason      TEXT        NOT NULL,
    amount      BIGINT      NOT NULL,
    batch_count INT         NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, currency, run_date)
);
