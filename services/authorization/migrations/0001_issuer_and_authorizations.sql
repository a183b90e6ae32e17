-- Issuer simulator: card accounts indexed by an HMAC of the PAN, never the PAN itself.
CREATE TABLE card_accounts (
    card_ref    TEXT PRIMARY KEY,
    last4       CHAR(4) NOT NULL,
    behaviour   TEXT    NOT NULL,
    exp_month   INT     NOT NULL,
    exp_year    INT     NOT NULL,
    limit_major BIGINT  NOT NULL CHECK (limit_major >= 0)
);

CREATE TABLE account_balances (
    card_ref  TEXT    NOT NULL REFERENCES card_accounts (card_ref),
    currency  CHAR(3) NOT NULL,
    available BIGINT  NOT NULL CHECK (available >= 0),
    PRIMARY KEY (card_ref, currency)
);

CREATE TABLE holds (
    payment_id      UUID PRIMARY KEY,
    card_ref        TEXT        NOT NULL REFERENCES card_accounts (card_ref),
    currency        CHAR(3)     NOT NULL,
    amount          BIGINT      NOT NULL CHECK (amount > 0),
    captured_amount BIGINT      NOT NULL DEFAULT 0,
    status          TEXT        NOT NULL CHECK (status IN ('held', 'captured', 'released')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The acquirer's record of each authorization it asked for.
CREATE TABLE authorizations (
    payment_id    UUID PRIMARY KEY,
    merchant_id   TEXT        NOT NULL,
    amount        BIGINT      NOT NULL,
    currency      CHAR(3)     NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('authorized', 'declined', 'captured')),
    response_code TEXT        NOT NULL,
    auth_code     TEXT,
    fraud_score   INT,
    fraud_decision TEXT,
    card_bin      TEXT        NOT NULL,
    card_last4    CHAR(4)     NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
