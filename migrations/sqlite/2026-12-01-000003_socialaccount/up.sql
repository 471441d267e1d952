-- Accounts at third-party providers (allauth's socialaccount_socialaccount):
-- one row per (provider, uid), where provider is the provider's id or, for
-- an OpenID Connect app, its provider_id. extra_data is the provider's data
-- as JSON in allauth's shape, so an import from django-allauth stores its
-- rows as they are.
CREATE TABLE social_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    uid TEXT NOT NULL,
    extra_data TEXT NOT NULL DEFAULT '{}',
    -- Unix epoch milliseconds.
    date_joined BIGINT NOT NULL,
    last_login BIGINT NOT NULL
);
CREATE UNIQUE INDEX social_accounts_provider_uid_key ON social_accounts (provider, uid);
CREATE INDEX social_accounts_user_id_idx ON social_accounts (user_id);
-- Provider tokens (socialaccount_socialtoken), kept only with
-- socialaccount.store_tokens: one per account and app (client id).
-- token and token_secret are sealed with a key derived from the server secret.
CREATE TABLE social_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES social_accounts (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL DEFAULT '',
    token TEXT NOT NULL,
    token_secret TEXT NOT NULL DEFAULT '',
    expires_at BIGINT
);
CREATE UNIQUE INDEX social_tokens_account_id_client_id_key ON social_tokens (account_id, client_id);
