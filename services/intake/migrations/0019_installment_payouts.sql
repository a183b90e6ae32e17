-- Installment payouts (issue 13): the merchant's payout plan is either `batch` (the batch's net
-- at batch date + payout_delay_days business days) or `per_installment` (each sale paid in as
-- many monthly parts as it has installments; docs/payouts.md of settlement).
ALTER TABLE merchants
    ADD COLUMN payout_plan TEXT NOT NULL DEFAULT 'batch'
        CHECK (payout_plan IN ('batch', 'per_installment'));
