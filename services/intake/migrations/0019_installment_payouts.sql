-- Installment payouts (issue 13): the merchant's payout plan is either `batch` (the batch's net
-- at batch date + payout_delay_days business days) or `per_installment` (each sale paid in as
-- many monthly parts as it has installments; docs/payouts.md of settlement).
ALTER TABLE merchants
    ADD COLUMN payout_plan TEXT NOT NULL DEFAULT 'batch'
        CHECK (payout_plan IN ('batch', 'per_installment'));

-- A per_installment batch's net by value date (settlement.batch-closed.v1 payout_schedule):
-- the balance shows each part pending until its own value date.
CREATE TABLE settlement_batch_schedule (
    batch_id   UUID   NOT NULL REFERENCES settlement_batches (batch_id),
    value_date DATE   NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (batch_id, value_date)
);
