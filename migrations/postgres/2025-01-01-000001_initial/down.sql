-- Reverts the initial schema (PostgreSQL).
DROP TABLE mail_outbox;
DROP TABLE rate_limit_hits;
DROP TABLE sessions;
DROP TABLE email_addresses;
DROP TABLE users;
