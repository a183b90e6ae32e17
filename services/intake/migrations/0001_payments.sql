CREATE TABLE merchants (
    id                  TEXT PRIMARY KEY,
    name                TEXT        NOT NULL,
    settlement_currency CHAR(3)     NOT NULL DEFAULT 'TRY',
    time_zone           TEXT        NOT NULL DEFAULT 'Europe/Istanbul',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- API keys are stored only as a SHA-256 of the (high-entropy, random) key.
CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    merchant_id TEXT        NOT NULL REFERENCES merchants (id),
    mode        TEXT        NOT NULL CHECK (mode IN ('test', 'live')),
    prefix      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

CREATE TABLE payments (
    id               UUID PRIMARY KEY,
    merchant_id      TEXT        NOT NULL REFERENCES merchants (id),
    amount           BIGINT      NOT NULL CHECK (amount > 0),
    currency         CHAR(3)     NOT NULL,
    capture          BOOLEAN     NOT NULL,
    installments     INT         NOT NULL CHECK (installments BETWEEN 1 AND 12),
    order_id         TEXT,
    description      TEXT,
    metadata         JSONB       NOT NULL DEFAULT '{}'::jsonb,
    status           TEXT        NOT NULL,
    status_rank      INT         NOT NULL,
    card_brand       TEXT        NOT NULL,
    card_bin         TEXT        NOT NULL,
    card_last4       CHAR(4)     NOT NULL,
    card_exp_month   INT         NOT NULL,
    card_exp_year    INT         NOT NULL,
    card_fingerprint TEXT        NOT NULL,
    response_code    TEXT,
    auth_code        TEXT,
    decline_reason   TEXT,
    fee_amount       BIGINT,
    net_amount       BIGINT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at DESC, id DESC);

CREATE TABLE payment_events (
    message_id  UUID PRIMARY KEY,
    payment_id  UUID        NOT NULL REFERENCES payments (id),
    type        TEXT        NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    details     JSONB       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, occurred_at);

CREATE TABLE idempotency_keys (
    merchant_id     TEXT        NOT NULL,
    key             TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    response_status INT         NOT NULL,
    response_body   JSONB       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, key)
);

CREATE TABLE webhook_endpoints (
    id          UUID PRIMARY KEY,
    merchant_id TEXT        NOT NULL REFERENCES merchants (id),
    url         TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
