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
