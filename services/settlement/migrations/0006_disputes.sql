-- Disputes (chargebacks, issue 13): raised by the issuer (ops API), answered by the merchant
-- (merchant.dispute-responded.v1 from intake), decided by the issuer or lost for want of an
-- answer. The ledger moves are ledger transactions whose payment_id is the dispute id.
CREATE TABLE disputes (
    dispute_id     UUID PRIMARY KEY,
    payment_id     UUID        NOT NULL,
    merchant_id    TEXT        NOT NULL,
    amount         BIGINT      NOT NULL CHECK (amount > 0),
    currency       CHAR(3)     NOT NULL,
    reason_code    TEXT        NOT NULL,
    reason         TEXT        NOT NULL,
    respond_by     TIMESTAMPTZ NOT NULL,
    fee            BIGINT      NOT NULL CHECK (fee >= 0),
    status         TEXT        NOT NULL
        CHECK (status IN ('needs_response', 'under_review', 'won', 'lost')),
    response       TEXT CHECK (response IN ('accept', 'evidence')),
    responded_at   TIMESTAMPTZ,
    evidence       JSONB,
    outcome_reason TEXT,
    version        INT         NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX disputes_payment ON disputes (payment_id);
CREATE INDEX disputes_awaiting ON disputes (respond_by) WHERE status = 'needs_response';
