-- A row the broker can never take (e.g. over the record size limit) is poisoned instead of
-- blocking every row behind it: the relay skips it; it is kept, unpublished, for operators.
ALTER TABLE outbox ADD COLUMN poisoned_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN poison_reason TEXT;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL AND poisoned_at IS NULL;
CREATE INDEX outbox_poisoned ON outbox (id) WHERE poisoned_at IS NOT NULL;

-- Inbox rows are purged by age (messaging/inbox.py). BRIN: rows arrive in processed_at
-- order, so a tiny index finds the old ones without slowing every insert.
CREATE INDEX inbox_processed_at ON inbox USING brin (processed_at);
