-- The W3C traceparent of the handler span that queued a delivery: each webhook POST joins
-- the payment's trace as a child of it. NULL when tracing was off.
ALTER TABLE webhook_deliveries ADD COLUMN traceparent TEXT;
