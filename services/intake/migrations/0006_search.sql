-- Payment search, export and reports (issue 3). Every index leads with the merchant (every
-- read is scoped to it) and, where a page is read, ends with the page order
-- (created_at DESC, id DESC), so a filtered page is one index range scan.
CREATE INDEX payments_merchant_status_created
    ON payments (merchant_id, status, created_at DESC, id DESC);
CREATE INDEX payments_merchant_fingerprint_created
    ON payments (merchant_id, card_fingerprint, created_at DESC, id DESC);
CREATE INDEX payments_merchant_last4_created
    ON payments (merchant_id, card_last4, created_at DESC, id DESC);
CREATE INDEX payments_merchant_order
    ON payments (merchant_id, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX payments_merchant_currency_created
    ON payments (merchant_id, currency, created_at DESC, id DESC);
