-- Wake the outbox relay from the database itself: one NOTIFY per inserting statement,
-- delivered on commit (PostgreSQL folds repeats within a transaction), instead of a
-- separate `SELECT pg_notify(...)` round trip from every emitting transaction.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sanalpos_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
