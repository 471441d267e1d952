ALTER TABLE users DROP COLUMN last_name;
ALTER TABLE users DROP COLUMN first_name;
