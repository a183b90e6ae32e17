-- Disputes (issue 13): the chargebacks the issuer simulator raised on captured payments and
-- its rulings, announced to settlement on issuer.dispute-raised.v1 / issuer.dispute-decided.v1.
CREATE TABLE issuer_disputes (
    dispute_id  UUID PRIMARY KEY,
    payment_id  UUID        NOT NULL REFERENCES authorizations (payment_id),
    merchant_id TEXT        NOT NULL,
    amount      BIGINT      NOT NULL CHECK (amount > 0),
    currency    CHAR(3)     NOT NULL,
    reason_code TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    respond_by  TIMESTAMPTZ,
    outcome     TEXT CHECK (outcome IN ('won', 'lost')),
    raised_at   TIMESTAMPTZ NOT NULL,
    decided_at  TIMESTAMPTZ
);
CREATE INDEX issuer_disputes_payment ON issuer_disputes (payment_id);
