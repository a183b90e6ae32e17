-- The payment lifecycle after authorization: capture, void, refund, expiry, fraud review.

-- Issuer side: a captured hold can be reversed (void after capture) or refunded in part.
ALTER TABLE holds DROP CONSTRAINT holds_status_check;
ALTER TABLE holds
    ADD CONSTRAINT holds_status_check
        CHECK (status IN ('held', 'captured', 'released', 'reversed')),
    ADD COLUMN refunded_amount BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT holds_amounts_check
        CHECK (captured_amount <= amount AND refunded_amount BETWEEN 0 AND captured_amount);

-- Acquirer side.
ALTER TABLE authorizations DROP CONSTRAINT authorizations_status_check;
ALTER TABLE authorizations
    ADD CONSTRAINT authorizations_status_check CHECK (status IN (
        'authorized', 'declined', 'captured', 'partially_refunded', 'refunded', 'voided', 'expired'
    )),
    ADD COLUMN installments    INT    NOT NULL DEFAULT 1,
    ADD COLUMN captured_amount BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refunded_amount BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN expires_at      TIMESTAMPTZ,
    ADD CONSTRAINT authorizations_amounts_check
        CHECK (captured_amount <= amount AND refunded_amount BETWEEN 0 AND captured_amount);

UPDATE authorizations SET captured_amount = amount WHERE status = 'captured';
-- Pre-authorizations from before this migration get the default period (7 days).
UPDATE authorizations SET expires_at = created_at + interval '7 days' WHERE status = 'authorized';

CREATE INDEX authorizations_open_preauths ON authorizations (expires_at)
    WHERE status = 'authorized';

-- One row per executed refund: its id makes a repeated refund command a no-op.
CREATE TABLE refunds (
    refund_id  UUID PRIMARY KEY,
    payment_id UUID        NOT NULL REFERENCES authorizations (payment_id),
    amount     BIGINT      NOT NULL CHECK (amount > 0),
    currency   CHAR(3)     NOT NULL,
    reason     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment ON refunds (payment_id);

-- Payments fraud sent to review. `scored_payload` is the payment.scored payload, card
-- ciphertexts included, kept only until the review is resolved (then set to NULL). Its security
-- code ciphertext is under an hourly key destroyed after 2 h: a later approval declines N7.
CREATE TABLE reviews (
    payment_id     UUID PRIMARY KEY,
    merchant_id    TEXT        NOT NULL,
    amount         BIGINT      NOT NULL CHECK (amount > 0),
    currency       CHAR(3)     NOT NULL,
    score          INT         NOT NULL,
    status         TEXT        NOT NULL CHECK (status IN ('pending', 'approved', 'declined')),
    scored_payload JSONB,
    resolved_by    TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at    TIMESTAMPTZ,
    CHECK ((status = 'pending') = (scored_payload IS NOT NULL))
);
