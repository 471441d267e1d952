-- The change feed of the session cache (server/db/changes.rs). On SQLite
-- its triggers are TEMP ones, made on each of the server's own connections
-- (they call a function only the server defines), so this migration has
-- nothing to create; it keeps the two backends' migration lists alike.
SELECT 1;
