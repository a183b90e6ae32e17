-- 3-D Secure: the result recorded with each authorization it preceded, and challenges
-- waiting for the shopper. A pending challenge keeps the `payment.scored` payload (the card
-- ciphertexts) that authorizing it takes; it is set to NULL when the challenge ends either way.
ALTER TABLE authorizations ADD COLUMN authentication JSONB;

CREATE TABLE three_ds_challenges (
    challenge_id      TEXT PRIMARY KEY,
    payment_id        UUID        NOT NULL UNIQUE,
    merchant_id       TEXT        NOT NULL,
    amount            BIGINT      NOT NULL,
    currency          CHAR(3)     NOT NULL,
    card_profile      TEXT        NOT NULL,
    cause             TEXT        NOT NULL CHECK (cause IN ('requested', 'fraud_step_up', 'issuer')),
    ds_transaction_id UUID        NOT NULL,
    code_hash         TEXT        NOT NULL,
    attempts          INT         NOT NULL DEFAULT 0,
    max_attempts      INT         NOT NULL CHECK (max_attempts > 0),
    expires_at        TIMESTAMPTZ NOT NULL,
    return_url        TEXT,
    status            TEXT        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'authenticated', 'failed', 'abandoned')),
    scored_payload    JSONB,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ
);

CREATE INDEX three_ds_challenges_due ON three_ds_challenges (expires_at) WHERE status = 'pending';
