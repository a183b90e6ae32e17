-- One row per scored payment, kept for audit and as training data for later models.
-- Card data: only the fingerprint (keyed HMAC), BIN and last 4. Never a PAN, CVC or ciphertext.
CREATE TABLE fraud_decisions (
    payment_id         UUID        PRIMARY KEY,
    merchant_id        TEXT        NOT NULL,
    score              SMALLINT    NOT NULL CHECK (score BETWEEN 0 AND 99),
    decision           TEXT        NOT NULL CHECK (decision IN ('approve', 'review', 'decline')),
    reasons            TEXT[]      NOT NULL,
    rules_version      TEXT        NOT NULL,
    amount             BIGINT      NOT NULL CHECK (amount > 0),
    currency           CHAR(3)     NOT NULL,
    card_fingerprint   TEXT        NOT NULL,
    card_bin           TEXT        NOT NULL,
    card_last4         CHAR(4)     NOT NULL,
    velocity_card_10m  INT         NOT NULL,
    velocity_card_1h   INT         NOT NULL,
    payment_created_at TIMESTAMPTZ NOT NULL,
    message_id         UUID        NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX fraud_decisions_card ON fraud_decisions (card_fingerprint, payment_created_at);
CREATE INDEX fraud_decisions_merchant ON fraud_decisions (merchant_id, created_at);
