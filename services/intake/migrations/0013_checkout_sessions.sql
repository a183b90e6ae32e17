-- The hosted payment page (issue 11): checkout sessions a merchant opens for a shopper, the
-- payments made in them, and the merchant's page settings (default language, the origins
-- allowed to frame the page). A session's status (open, completed, expired) is derived
-- from its payments and expiry when read, so nothing needs sweeping.
CREATE TABLE checkout_sessions (
    id            TEXT PRIMARY KEY,
    merchant_id   TEXT        NOT NULL REFERENCES merchants (id),
    amount        BIGINT      NOT NULL CHECK (amount > 0),
    currency      CHAR(3)     NOT NULL,
    order_id      TEXT        NOT NULL,
    basket        JSONB       NOT NULL DEFAULT '[]'::jsonb,
    capture       BOOLEAN     NOT NULL,
    installments  INT[]       NOT NULL,
    locale        TEXT        NOT NULL CHECK (locale IN ('tr', 'en')),
    shopper_email TEXT,
    shopper_name  TEXT,
    success_url   TEXT        NOT NULL,
    failure_url   TEXT        NOT NULL,
    -- The page's CSRF token: also the value of its SameSite=Strict cookie.
    csrf_token    TEXT        NOT NULL,
    max_attempts  INT         NOT NULL CHECK (max_attempts >= 1),
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_merchant_created
    ON checkout_sessions (merchant_id, created_at DESC, id DESC);

ALTER TABLE payments ADD COLUMN checkout_session_id TEXT REFERENCES checkout_sessions (id);
CREATE INDEX payments_checkout_session
    ON payments (checkout_session_id, created_at) WHERE checkout_session_id IS NOT NULL;

-- Merchant settings of the page (kept apart from the other merchant fields).
ALTER TABLE merchants
    ADD COLUMN checkout_locale          TEXT   NOT NULL DEFAULT 'tr'
        CHECK (checkout_locale IN ('tr', 'en')),
    ADD COLUMN checkout_frame_ancestors TEXT[] NOT NULL DEFAULT '{}';
