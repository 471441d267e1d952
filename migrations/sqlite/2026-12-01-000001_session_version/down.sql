ALTER TABLE sessions DROP COLUMN version;
