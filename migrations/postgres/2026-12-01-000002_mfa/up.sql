-- Second factors (allauth's mfa_authenticator): one row per TOTP
-- authenticator, recovery-code set or WebAuthn credential. `data` is JSON in
-- allauth's shape ({"secret"} for TOTP; {"seed", "used_mask"} for recovery
-- codes, or {"migrated_codes"}), secrets sealed with a key derived from the
-- server secret. A user has at most one TOTP and one recovery-code set.
CREATE TABLE mfa_authenticators (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN ('totp', 'recovery_codes', 'webauthn')),
    data TEXT NOT NULL,
    -- Unix epoch milliseconds.
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    -- TOTP: the last time step whose code was accepted; a code of that step
    -- or an earlier one is refused (RFC 6238 §5.2, one use per code).
    last_step BIGINT,
    -- Bumped by every change of `data`: compare-and-set for used codes.
    version BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX mfa_authenticators_user_id_type_key ON mfa_authenticators (user_id, type)
    WHERE type IN ('totp', 'recovery_codes');
CREATE INDEX mfa_authenticators_user_id_idx ON mfa_authenticators (user_id);
