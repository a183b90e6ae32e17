-- Receipts and notices to shoppers (payment.initiated's optional `shopper`), kept the way
-- webhook deliveries are: one row per email, written in the consuming transaction (outbox
-- style), sent by a worker with retries; every attempt logged.

-- What notification keeps of each payment.initiated: enough to write the shopper's emails.
-- Never the card number: its brand and last four digits only.
CREATE TABLE shopper_payments (
    payment_id     UUID PRIMARY KEY,
    merchant_id    TEXT        NOT NULL,
    amount         BIGINT      NOT NULL CHECK (amount > 0),
    currency       TEXT        NOT NULL,
    capture        BOOLEAN     NOT NULL,
    installments   INT         NOT NULL,
    card_brand     TEXT        NOT NULL,
    card_last4     TEXT        NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
    created_at     TIMESTAMPTZ NOT NULL,
    -- NULL: the payment came without a shopper address, so it never gets an email.
    shopper_email  TEXT,
    shopper_name   TEXT,
    shopper_locale TEXT        NOT NULL DEFAULT 'tr' CHECK (shopper_locale IN ('tr', 'en')),
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Display name and time zone from merchant.updated (the newest version wins).
CREATE TABLE merchants (
    merchant_id TEXT PRIMARY KEY,
    name        TEXT        NOT NULL,
    time_zone   TEXT        NOT NULL,
    version     INT         NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- An outcome consumed before its payment.initiated (different topics: no order between
-- them). It waits here, and becomes an email (or nothing) when the payment arrives.
CREATE TABLE shopper_emails_waiting (
    message_id  UUID PRIMARY KEY,
    payment_id  UUID        NOT NULL,
    event       JSONB       NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX shopper_emails_waiting_payment ON shopper_emails_waiting (payment_id);

CREATE TABLE shopper_emails (
    -- uuid5 of the triggering event's message_id: one email per event; also the Message-ID.
    id              UUID PRIMARY KEY,
    message_id      UUID        NOT NULL UNIQUE,
    payment_id      UUID        NOT NULL,
    merchant_id     TEXT        NOT NULL,
    kind            TEXT        NOT NULL
                    CHECK (kind IN ('receipt', 'preauthorization', 'refund', 'void', 'void_hold')),
    locale          TEXT        NOT NULL CHECK (locale IN ('tr', 'en')),
    to_address      TEXT        NOT NULL,
    to_name         TEXT,
    subject         TEXT        NOT NULL,
    text_body       TEXT        NOT NULL,
    html_body       TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INT         NOT NULL DEFAULT 0,
    -- Due time while pending; while an attempt is in flight it is the claim's lease expiry.
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_smtp_code  INT,
    last_error      TEXT,
    traceparent     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ
);
CREATE INDEX shopper_emails_due ON shopper_emails (next_attempt_at) WHERE status = 'pending';
CREATE INDEX shopper_emails_payment ON shopper_emails (payment_id);

CREATE TABLE shopper_email_attempts (
    id           BIGSERIAL PRIMARY KEY,
    email_id     UUID        NOT NULL REFERENCES shopper_emails (id),
    attempt      INT         NOT NULL CHECK (attempt >= 1),
    smtp_code    INT,
    error        TEXT,
    duration_ms  INT         NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (email_id, attempt)
);
