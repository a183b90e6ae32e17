CREATE TABLE fee_plans (
    merchant_id     TEXT PRIMARY KEY,
    mdr_bps         INT  NOT NULL CHECK (mdr_bps BETWEEN 0 AND 10000),
    installment_bps INT  NOT NULL CHECK (installment_bps BETWEEN 0 AND 10000)
);

CREATE TABLE ledger_transactions (
    id          UUID PRIMARY KEY,
    payment_id  UUID        NOT NULL,
    merchant_id TEXT        NOT NULL,
    kind        TEXT        NOT NULL,
    currency    CHAR(3)     NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (payment_id, kind)
);

CREATE TABLE ledger_entries (
    id             BIGSERIAL PRIMARY KEY,
    transaction_id UUID    NOT NULL REFERENCES ledger_transactions (id),
    account        TEXT    NOT NULL,
    direction      TEXT    NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount         BIGINT  NOT NULL CHECK (amount > 0),
    currency       CHAR(3) NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries (account, currency);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
