-- Payment lifecycle (issue 3): the read model keeps monotonic facts per payment and derives
-- `status` from them (intake.domain.payment), so duplicate or out-of-order events cannot move
-- a payment backwards. See docs/payment-states.md.
ALTER TABLE payments
    ADD COLUMN action_required   BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN authorized        BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN declined          BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN captured_amount   BIGINT      NOT NULL DEFAULT 0 CHECK (captured_amount >= 0),
    ADD COLUMN captured_at       TIMESTAMPTZ,
    ADD COLUMN voided            BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN expired           BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN settled           BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN refunded_amount   BIGINT      NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    -- A capture or void sent to authorization and not yet answered (blocks a second one).
    ADD COLUMN pending_operation TEXT CHECK (pending_operation IN ('capture', 'void')),
    -- The shopper/merchant RiskContext given at create, for fraud reports.
    ADD COLUMN risk_context      JSONB;

-- Payments created before this migration: their facts follow from the status they reached.
UPDATE payments SET
    authorized      = status IN ('authorized', 'captured', 'settled'),
    declined        = status = 'declined',
    captured_amount = CASE WHEN status IN ('captured', 'settled') THEN amount ELSE 0 END,
    settled         = status = 'settled';

-- Refunds: intake is the gatekeeper of the running total (non-failed refunds <= captured).
CREATE TABLE refunds (
    id           UUID PRIMARY KEY,
    payment_id   UUID        NOT NULL REFERENCES payments (id),
    amount       BIGINT      NOT NULL CHECK (amount > 0),
    currency     CHAR(3)     NOT NULL,
    reason       TEXT        NOT NULL,
    status       TEXT        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure_reason TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);

-- Idempotency keys are claimed before the work runs (state in_progress, locked_until) and
-- completed in the work's own transaction (state done, with the response to replay). A claim
-- whose request crashed is reclaimable once locked_until has passed.
ALTER TABLE idempotency_keys
    ALTER COLUMN response_status DROP NOT NULL,
    ALTER COLUMN response_body DROP NOT NULL,
    ADD COLUMN endpoint     TEXT        NOT NULL DEFAULT 'POST /v1/payments',
    ADD COLUMN state        TEXT        NOT NULL DEFAULT 'done'
        CHECK (state IN ('in_progress', 'done')),
    ADD COLUMN claim_id     UUID,
    ADD COLUMN locked_until TIMESTAMPTZ,
    ADD CONSTRAINT idempotency_done_has_response
        CHECK (state = 'in_progress' OR (response_status IS NOT NULL AND response_body IS NOT NULL));
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
