-- Kafka entry point (issue 3): merchants' request-signing secrets and the answers given to
-- their Kafka requests.

-- HMAC needs the secret itself, so it is kept encrypted (envelope encryption under the
-- `signing` keyring, associated data binding it to merchant and secret id), never in clear.
-- At most two are live per merchant: the newest and the one it replaced (rotation overlap).
CREATE TABLE merchant_signing_secrets (
    id          UUID PRIMARY KEY,
    merchant_id TEXT        NOT NULL REFERENCES merchants (id),
    ciphertext  TEXT        NOT NULL,
    prefix      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX merchant_signing_secrets_live ON merchant_signing_secrets (merchant_id, created_at DESC)
    WHERE revoked_at IS NULL;

-- One answer per (merchant, request id) once the request reached the payment logic: the same
-- request id with the same body gets this reply again, with another body a rejection.
CREATE TABLE kafka_requests (
    merchant_id  TEXT        NOT NULL,
    request_id   TEXT        NOT NULL,
    operation    TEXT        NOT NULL,
    request_hash TEXT        NOT NULL,
    reply_status INT         NOT NULL,
    reply        JSONB       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, request_id)
);
CREATE INDEX kafka_requests_created ON kafka_requests (created_at);
