-- Webhook endpoints per merchant, one delivery per (event, endpoint), and every attempt made.

CREATE TABLE webhook_endpoints (
    endpoint_id                 UUID PRIMARY KEY,
    merchant_id                 TEXT        NOT NULL,
    url                         TEXT        NOT NULL,
    secret                      TEXT        NOT NULL,
    -- Kept for a grace period after a rotation: both secrets sign, so receivers can roll over.
    previous_secret             TEXT,
    previous_secret_expires_at  TIMESTAMPTZ,
    enabled                     BOOLEAN     NOT NULL DEFAULT true,
    source                      TEXT        NOT NULL CHECK (source IN ('event', 'static')),
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id) WHERE enabled;

CREATE TABLE webhook_deliveries (
    -- The webhook-id header: uuid5(event message_id, endpoint_id), the same on every retry.
    id               UUID PRIMARY KEY,
    endpoint_id      UUID        NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    merchant_id      TEXT        NOT NULL,
    payment_id       UUID        NOT NULL,
    message_id       UUID        NOT NULL,
    event_type       TEXT        NOT NULL,
    -- The exact JSON text that is signed and sent (TEXT, not JSONB: bytes must not change).
    body             TEXT        NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         INT         NOT NULL DEFAULT 0,
    -- Due time while pending; while an attempt is in flight it is the claim's lease expiry.
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status_code INT,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at     TIMESTAMPTZ,
    UNIQUE (message_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_merchant ON webhook_deliveries (merchant_id, created_at);
CREATE INDEX webhook_deliveries_payment ON webhook_deliveries (payment_id);

CREATE TABLE webhook_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  UUID        NOT NULL REFERENCES webhook_deliveries (id),
    attempt      INT         NOT NULL CHECK (attempt >= 1),
    status_code  INT,
    error        TEXT,
    duration_ms  INT         NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (delivery_id, attempt),
    CHECK (status_code IS NOT NULL OR error IS NOT NULL)
);
