-- Initial schema (SQLite). Keep in step with ../../postgres/ and server/db/schema.rs.
-- Timestamps are BIGINT unix epoch milliseconds (UTC). Ids are 64-bit rowids.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username TEXT,
    -- Case-folded copy of username; uniqueness is enforced on it.
    username_lower TEXT,
    -- NULL means the user has no usable password.
    password_hash TEXT,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    date_joined BIGINT NOT NULL,
    last_login BIGINT,
    CONSTRAINT users_username_lower_check CHECK ((username IS NULL) = (username_lower IS NULL))
);
CREATE UNIQUE INDEX users_username_lower_key ON users (username_lower);

CREATE TABLE email_addresses (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    email_lower TEXT NOT NULL,
    verified BOOLEAN NOT NULL DEFAULT FALSE,
    "primary" BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT email_addresses_user_id_email_lower_key UNIQUE (user_id, email_lower)
);
-- A verified address belongs to one account only.
CREATE UNIQUE INDEX email_addresses_verified_email_lower_key ON email_addresses (email_lower) WHERE verified;
-- At most one primary address per user.
CREATE UNIQUE INDEX email_addresses_primary_user_id_key ON email_addresses (user_id) WHERE "primary";
CREATE INDEX email_addresses_email_lower_idx ON email_addresses (email_lower);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- Lowercase hex SHA-256 of the session token; the token itself is never stored.
    key_hash TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    client TEXT NOT NULL,
    -- JSON written by the application layer (the pending flow state and more).
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    CONSTRAINT sessions_client_check CHECK (client IN ('app', 'browser'))
);
CREATE UNIQUE INDEX sessions_key_hash_key ON sessions (key_hash);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE rate_limit_hits (
    action TEXT NOT NULL,
    "key" TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT rate_limit_hits_pkey PRIMARY KEY (action, "key", window_start)
);
CREATE INDEX rate_limit_hits_expires_at_idx ON rate_limit_hits (expires_at);

CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    created_at BIGINT NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX mail_outbox_next_attempt_at_idx ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
