-- A review resolution read before its payment.scored (two topics carry no order between
-- them): kept here and applied, in the score's transaction, the moment the score arrives.
-- Only the first resolution of a payment is kept, as for a pending review.
CREATE TABLE review_resolutions_before_score (
    payment_id  UUID PRIMARY KEY,
    merchant_id TEXT        NOT NULL,
    decision    TEXT        NOT NULL CHECK (decision IN ('approve', 'decline')),
    resolved_by TEXT        NOT NULL,
    message_id  UUID        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
