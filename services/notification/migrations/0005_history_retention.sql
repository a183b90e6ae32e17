-- Finished deliveries and emails are deleted after NOTIFICATION_HISTORY_RETENTION_DAYS
-- (adapters.history_purge): these indexes find them without reading the whole table.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (completed_at)
    WHERE status <> 'pending';
CREATE INDEX shopper_emails_finished ON shopper_emails (completed_at)
    WHERE status <> 'pending';
