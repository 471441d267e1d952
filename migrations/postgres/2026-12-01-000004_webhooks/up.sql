-- Account events for the configured webhook endpoints: one row per event
-- and endpoint, queued in the transaction of the change, delivered at
-- least once by the deliverer (claimed by pushing next_attempt_at, as the
-- mail outbox), retried with backoff.
CREATE TABLE webhook_outbox (
    id BIGSERIAL PRIMARY KEY,
    -- The event's id (the same for every endpoint it goes to): receivers
    -- deduplicate on it.
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    body TEXT NOT NULL,
    -- Unix epoch milliseconds.
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at BIGINT
);
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
