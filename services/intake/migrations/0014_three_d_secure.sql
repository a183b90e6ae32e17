-- 3-D Secure (issue 11). A payment's next action while it requires one (the ACS challenge
-- URL and when it stops accepting an answer), and the authentication result once decided
-- (status, flow, eci, liability_shift, ds_transaction_id; never the CAVV-like value).
ALTER TABLE payments
    ADD COLUMN next_action_url        TEXT,
    ADD COLUMN next_action_expires_at TIMESTAMPTZ,
    ADD COLUMN authentication         JSONB;

-- The merchant's "always 3-D Secure" setting: every payment of the merchant is sent with
-- three_d_secure = required, whatever the request asked.
ALTER TABLE merchants
    ADD COLUMN always_three_d_secure BOOLEAN NOT NULL DEFAULT false;
