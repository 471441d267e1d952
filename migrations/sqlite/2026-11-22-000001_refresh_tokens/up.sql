-- JWT refresh tokens (token strategy "jwt"): one row per outstanding refresh
-- token, by its `jti` claim. Consuming one is a conditional DELETE, so a
-- token is used at most once; ending the session removes its tokens.
CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- Unix epoch milliseconds.
    expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
