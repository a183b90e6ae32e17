-- Installment payouts (issue 13): the merchant's payout plan `per_installment` pays a sale in N
-- installments in N monthly parts (domain/installments.py). The schedule of a batch closed
-- under that plan is written when it closes; the payout job pays the parts due.
ALTER TABLE merchants
    ADD COLUMN payout_plan TEXT NOT NULL DEFAULT 'batch'
        CHECK (payout_plan IN ('batch', 'per_installment'));
ALTER TABLE settlement_payments
    ADD COLUMN installments INT NOT NULL DEFAULT 1 CHECK (installments BETWEEN 1 AND 12);
-- The plan a batch closed under: a `per_installment` batch is paid by its schedule's parts,
-- never as a whole (its payout_id stays NULL).
ALTER TABLE settlement_batches
    ADD COLUMN payout_plan TEXT NOT NULL DEFAULT 'batch'
        CHECK (payout_plan IN ('batch', 'per_installment'));

CREATE TABLE payout_schedule (
    id          UUID PRIMARY KEY,
    batch_id    UUID    NOT NULL REFERENCES settlement_batches (id),
    merchant_id TEXT    NOT NULL,
    currency    CHAR(3) NOT NULL,
    payment_id  UUID,   -- NULL: the rest of the batch's net (refunds, reversals)
    part        INT     NOT NULL CHECK (part >= 1),
    parts       INT     NOT NULL CHECK (parts >= part),
    value_date  DATE    NOT NULL,
    amount      BIGINT  NOT NULL CHECK (amount <> 0),
    payout_id   UUID REFERENCES payouts (id)
);
CREATE INDEX payout_schedule_due ON payout_schedule (merchant_id, currency, value_date)
    WHERE payout_id IS NULL;
CREATE INDEX payout_schedule_batch ON payout_schedule (batch_id);
CREATE INDEX payout_schedule_payout ON payout_schedule (payout_id) WHERE payout_id IS NOT NULL;

-- A payout line paying installment parts carries their (earliest) value date.
ALTER TABLE payout_lines ADD COLUMN value_date DATE;
