-- A login writes `users.last_login`, which no session lookup reads: an
-- update that changes nothing else notifies nobody, so a login neither
-- takes the notify lock at its commit nor makes every instance read the
-- user's other sessions again. Any other column counts, also one added
-- later (the row is compared whole, less `last_login`).
DROP TRIGGER allauth_changes_user ON users;
CREATE TRIGGER allauth_changes_user_update
    AFTER UPDATE ON users
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_login') IS DISTINCT FROM (to_jsonb(NEW) - 'last_login'))
    EXECUTE FUNCTION allauth_changes_user('id');
CREATE TRIGGER allauth_changes_user_delete
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION allauth_changes_user('id');
