-- A sale is recorded captured as it is authorized (one INSERT, no authorized -> captured
-- UPDATE), so its capture reaches the clearing file through an insert trigger as well.
CREATE FUNCTION clearing_from_sale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO clearing_operations
        (id, kind, payment_id, merchant_id, currency, amount, occurred_at)
    VALUES (gen_random_uuid(), 'capture', NEW.payment_id, NEW.merchant_id, NEW.currency,
            NEW.captured_amount, now());
    RETURN NULL;
END $$;

CREATE TRIGGER authorizations_clearing_sale AFTER INSERT ON authorizations
    FOR EACH ROW WHEN (NEW.status = 'captured')
    EXECUTE FUNCTION clearing_from_sale();
