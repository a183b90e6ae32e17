-- Client-side encrypted cards (JWE) are single use: each token's `jti` is recorded, in the
-- transaction of the payment or stored card it paid for, and kept until the token would be
-- refused as stale anyway (iat + max age + clock skew), then purged.
CREATE TABLE used_jwe (
    merchant_id TEXT        NOT NULL,
    jti         TEXT        NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, jti)
);
CREATE INDEX used_jwe_expiry ON used_jwe (expires_at);

-- Answers of POST /v1/webhook-endpoints kept for Idempotency-Key replays now hold the signing
-- secret only sealed (`secret_sealed`). Those stored before held it in clear: it is removed
-- (SQL cannot seal), so such a replay answers the endpoint without its secret.
UPDATE idempotency_keys
SET response_body = response_body - 'secret'
WHERE response_body ? 'secret' AND response_body->>'secret' LIKE 'whsec\_%';
