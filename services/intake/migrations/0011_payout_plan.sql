-- The merchant's payout plan ("valör"): value date = batch date + N business days.
ALTER TABLE merchants
    ADD COLUMN payout_delay_days INT NOT NULL DEFAULT 1 CHECK (payout_delay_days BETWEEN 0 AND 30);
