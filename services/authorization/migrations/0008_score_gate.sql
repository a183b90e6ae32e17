-- A payment.scored's first step, in one round trip: take the payment's advisory lock (the one
-- its review resolution takes too), then read whether the payment was scored already
-- (authorized or declined, in review, in a 3-D Secure challenge) and, when it was not, take
-- the resolution kept for it. A plain statement cannot do this: its snapshot is taken before
-- the lock is waited for, so it would miss what the lock's holder committed meanwhile. Each
-- statement of a volatile function takes its own snapshot, after the lock is held.
CREATE FUNCTION authorization_score_arrived(lock_key TEXT, OUT already_scored BOOLEAN,
    OUT early_merchant_id TEXT, OUT early_decision TEXT, OUT early_resolved_by TEXT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    pid UUID := lock_key::uuid;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(lock_key, 7301));
    SELECT EXISTS (SELECT FROM authorizations a WHERE a.payment_id = pid)
        OR EXISTS (SELECT FROM reviews r WHERE r.payment_id = pid)
        OR EXISTS (SELECT FROM three_ds_challenges c WHERE c.payment_id = pid)
    INTO already_scored;
    IF NOT already_scored THEN
        DELETE FROM review_resolutions_before_score e WHERE e.payment_id = pid
        RETURNING e.merchant_id, e.decision, e.resolved_by
        INTO early_merchant_id, early_decision, early_resolved_by;
    END IF;
END $$;
