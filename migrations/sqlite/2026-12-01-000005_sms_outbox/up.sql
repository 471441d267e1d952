-- Text messages waiting to be sent (phone verification and login codes):
-- queued in the transaction of the change, claimed by pushing
-- next_attempt_at (a lease, as the mail outbox), retried with backoff.
CREATE TABLE sms_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- E.164, e.g. +4915112345678.
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    -- A short stable name of the message (verification_code, login_code…),
    -- for logs and metrics, which never show the body.
    kind TEXT NOT NULL,
    -- Unix epoch milliseconds.
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at BIGINT
);
CREATE INDEX sms_outbox_next_attempt_at_idx ON sms_outbox (next_attempt_at) WHERE sent_at IS NULL;
