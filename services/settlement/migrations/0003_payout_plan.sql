-- The merchant's payout plan: value date = batch date + N business days (NULL: the default).
ALTER TABLE merchants ADD COLUMN payout_delay_days INT CHECK (payout_delay_days BETWEEN 0 AND 30);
