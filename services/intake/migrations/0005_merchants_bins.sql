-- Merchant API keys (issue 3): an id to list, rotate and revoke a key by (never its hash), and
-- optional per-key rate limits (NULL = the service's configured default). A rotation with a
-- grace period sets revoked_at in the future: the old key works until then.
ALTER TABLE api_keys
    ADD COLUMN id              UUID NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN rate_per_second DOUBLE PRECISION CHECK (rate_per_second > 0),
    ADD COLUMN rate_burst      INT CHECK (rate_burst >= 1);
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, created_at DESC);

-- Card BIN (IIN) reference data: the shipped seed (data/bins.csv, source 'seed', refreshed at
-- start-up) plus what the operator imports (`sanalpos bins import`, source 'operator', never
-- overwritten by the seed). Keyed by the first 6 or 8 digits; the longest match wins.
CREATE TABLE bins (
    prefix           TEXT PRIMARY KEY CHECK (prefix ~ '^[0-9]{6}([0-9]{2})?$'),
    scheme           TEXT        NOT NULL,
    card_type        TEXT        NOT NULL CHECK (card_type IN ('credit', 'debit', 'prepaid')),
    issuer           TEXT,
    programme        TEXT,
    country          CHAR(2),
    max_installments INT CHECK (max_installments BETWEEN 1 AND 12),
    source           TEXT        NOT NULL DEFAULT 'operator' CHECK (source IN ('seed', 'operator')),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
