-- The merchant's payout bank accounts (announced to settlement on merchant.payout-account.v1)
-- and intake's copy of settlement's payouts (settlement.payout-updated.v1). Only new tables.
CREATE TABLE payout_accounts (
    id          UUID PRIMARY KEY,
    merchant_id TEXT        NOT NULL,
    iban        TEXT        NOT NULL,
    holder_name TEXT        NOT NULL,
    currency    CHAR(3)     NOT NULL,
    is_default  BOOLEAN     NOT NULL,
    version     BIGINT      NOT NULL CHECK (version >= 1),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at  TIMESTAMPTZ
);
CREATE INDEX payout_accounts_merchant ON payout_accounts (merchant_id, created_at DESC);
CREATE UNIQUE INDEX payout_accounts_one_default
    ON payout_accounts (merchant_id, currency) WHERE is_default AND deleted_at IS NULL;

CREATE TABLE payouts (
    payout_id   UUID PRIMARY KEY,
    merchant_id TEXT        NOT NULL,
    currency    CHAR(3)     NOT NULL,
    amount      BIGINT      NOT NULL,
    status      TEXT        NOT NULL,
    value_date  DATE        NOT NULL,
    account_id  UUID        NOT NULL,
    iban_last4  TEXT        NOT NULL,
    reason      TEXT,
    lines       JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT      NOT NULL
);
CREATE INDEX payouts_merchant ON payouts (merchant_id, created_at DESC, payout_id DESC);

-- Which payout each batch is in now (a returned payout releases its batches).
CREATE TABLE payout_batches (
    batch_id  UUID PRIMARY KEY,
    payout_id UUID NOT NULL REFERENCES payouts (payout_id)
);
