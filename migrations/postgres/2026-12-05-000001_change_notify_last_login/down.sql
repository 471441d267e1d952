DROP TRIGGER allauth_changes_user_delete ON users;
DROP TRIGGER allauth_changes_user_update ON users;
CREATE TRIGGER allauth_changes_user
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION allauth_changes_user('id');
