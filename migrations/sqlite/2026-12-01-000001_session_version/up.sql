-- A session row's version: every change of its data, user or key is a
-- compare-and-set on it (UPDATE ... WHERE version = <read>), so that
-- concurrent requests on one session cannot overwrite each other's flow
-- state (attempt counts, single-use codes, key rotation).
ALTER TABLE sessions ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
