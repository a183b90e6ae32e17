-- Reconciliation (issue 13): every executed money operation, the source of the daily clearing
-- file (authorization.clearing-reported.v1), and which files were published.
CREATE TABLE clearing_operations (
    id          UUID PRIMARY KEY,
    kind        TEXT        NOT NULL CHECK (kind IN ('capture', 'refund', 'void')),
    payment_id  UUID        NOT NULL,
    refund_id   UUID,
    merchant_id TEXT        NOT NULL,
    currency    CHAR(3)     NOT NULL,
    amount      BIGINT      NOT NULL CHECK (amount > 0),
    occurred_at TIMESTAMPTZ NOT NULL,
    CHECK ((kind = 'refund') = (refund_id IS NOT NULL))
);
CREATE INDEX clearing_operations_day ON clearing_operations (occurred_at);

-- One row per merchant, currency and clearing date published; a re-run bumps the version.
CREATE TABLE clearing_files (
    merchant_id   TEXT        NOT NULL,
    currency      CHAR(3)     NOT NULL,
    clearing_date DATE        NOT NULL,
    version       INT         NOT NULL CHECK (version >= 1),
    line_count    INT         NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, currency, clearing_date)
);

-- Filled by triggers on the state changes themselves, so no code path that captures, reverses
-- or refunds can leave its operation out of the clearing file: a capture is authorized ->
-- captured, a void after capture is captured -> voided (plan_void: never once refunded), a
-- refund is a row in refunds.
CREATE FUNCTION clearing_from_authorization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'authorized' AND NEW.status = 'captured' THEN
        INSERT INTO clearing_operations
            (id, kind, payment_id, merchant_id, currency, amount, occurred_at)
        VALUES (gen_random_uuid(), 'capture', NEW.payment_id, NEW.merchant_id, NEW.currency,
                NEW.captured_amount, now());
    ELSIF OLD.status = 'captured' AND NEW.status = 'voided' THEN
        INSERT INTO clearing_operations
            (id, kind, payment_id, merchant_id, currency, amount, occurred_at)
        VALUES (gen_random_uuid(), 'void', NEW.payment_id, NEW.merchant_id, NEW.currency,
                NEW.captured_amount, now());
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER authorizations_clearing AFTER UPDATE OF status ON authorizations
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION clearing_from_authorization();

CREATE FUNCTION clearing_from_refund() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO clearing_operations
        (id, kind, payment_id, refund_id, merchant_id, currency, amount, occurred_at)
    SELECT gen_random_uuid(), 'refund', NEW.payment_id, NEW.refund_id, a.merchant_id,
           NEW.currency, NEW.amount, now()
    FROM authorizations a WHERE a.payment_id = NEW.payment_id;
    RETURN NULL;
END $$;

CREATE TRIGGER refunds_clearing AFTER INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION clearing_from_refund();
