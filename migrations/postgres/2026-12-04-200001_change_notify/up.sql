-- The change feed of the session cache (server/db/changes.rs): every write
-- that can change what a session lookup answers sends a notification on
-- `allauth_changes`, delivered after the commit to each listening instance.
-- `s<id>`: a session row was changed or deleted (a new row cannot be cached
-- yet); `u<id>`: a user, or one of their addresses, was.
CREATE FUNCTION allauth_changes_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allauth_changes', 's' || OLD.id);
    RETURN NULL;
END
$$;

-- For `users` (argument `id`) and `email_addresses` (argument `user_id`):
-- the user the row belongs to, before and after the write.
CREATE FUNCTION allauth_changes_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('allauth_changes', 'u' || (to_jsonb(OLD) ->> TG_ARGV[0]));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('allauth_changes', 'u' || (to_jsonb(NEW) ->> TG_ARGV[0]));
    END IF;
    RETURN NULL;
END
$$;

-- The activity columns (last_seen_at, ip, user_agent) are not part of a
-- lookup: writing them alone notifies nobody.
CREATE TRIGGER allauth_changes_session_update
    AFTER UPDATE OF key_hash, user_id, data, expires_at, version ON sessions
    FOR EACH ROW EXECUTE FUNCTION allauth_changes_session();
CREATE TRIGGER allauth_changes_session_delete
    AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION allauth_changes_session();
CREATE TRIGGER allauth_changes_user
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION allauth_changes_user('id');
CREATE TRIGGER allauth_changes_address
    AFTER INSERT OR UPDATE OR DELETE ON email_addresses
    FOR EACH ROW EXECUTE FUNCTION allauth_changes_user('user_id');
