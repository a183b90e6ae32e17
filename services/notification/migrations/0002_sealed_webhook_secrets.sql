-- Webhook signing secrets leave the table in clear: they are kept only as ciphertexts sealed
-- to notification's `webhook` keyring (sp3; associated data webhook-secret|merchant|endpoint).
-- SQL cannot seal, so secrets written before this migration wait in webhook_secrets_to_seal,
-- which the service empties at start-up (before it consumes or delivers), sealing each one.

ALTER TABLE webhook_endpoints
    ADD COLUMN secret_ciphertext          TEXT,
    ADD COLUMN previous_secret_ciphertext TEXT;

CREATE TABLE webhook_secrets_to_seal (
    endpoint_id     UUID PRIMARY KEY REFERENCES webhook_endpoints (endpoint_id),
    secret          TEXT NOT NULL,
    previous_secret TEXT
);

INSERT INTO webhook_secrets_to_seal (endpoint_id, secret, previous_secret)
SELECT endpoint_id, secret, previous_secret FROM webhook_endpoints;

ALTER TABLE webhook_endpoints
    DROP COLUMN secret,
    DROP COLUMN previous_secret;
