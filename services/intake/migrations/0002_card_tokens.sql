-- Stored cards. The PAN ciphertext is bound by associated data to (merchant, token); intake
-- only writes it. Deleting a card destroys the ciphertext (set to NULL), keeping the masked,
-- non-sensitive details for the merchant's payment history. No security code is ever stored.
CREATE TABLE card_tokens (
    token          TEXT PRIMARY KEY,
    merchant_id    TEXT        NOT NULL REFERENCES merchants (id),
    pan_ciphertext TEXT,
    fingerprint    TEXT        NOT NULL,
    brand          TEXT        NOT NULL,
    bin            TEXT        NOT NULL,
    last4          CHAR(4)     NOT NULL,
    masked_number  TEXT        NOT NULL,
    exp_month      INT         NOT NULL,
    exp_year       INT         NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at     TIMESTAMPTZ,
    CHECK ((deleted_at IS NULL) = (pan_ciphertext IS NOT NULL))
);
CREATE INDEX card_tokens_merchant_live ON card_tokens (merchant_id, created_at DESC, token DESC)
    WHERE deleted_at IS NULL;

ALTER TABLE payments
    ADD COLUMN card_token   TEXT,
    ADD COLUMN initiated_by TEXT NOT NULL DEFAULT 'customer'
        CHECK (initiated_by IN ('customer', 'merchant'));
