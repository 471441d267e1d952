DROP TRIGGER allauth_changes_address ON email_addresses;
DROP TRIGGER allauth_changes_user ON users;
DROP TRIGGER allauth_changes_session_delete ON sessions;
DROP TRIGGER allauth_changes_session_update ON sessions;
DROP FUNCTION allauth_changes_user();
DROP FUNCTION allauth_changes_session();
