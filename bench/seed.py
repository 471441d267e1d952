#!/usr/bin/env python3
"""Adds N users, each with a live app session, to a benchmark database, for
the scale run of bench/run.sh (the session check with a million rows).

    python3 bench/seed.py sqlite:///path/bench.sqlite3 1000000
    python3 bench/seed.py postgres://postgres@127.0.0.1:5432/bench 1000000

SQLite through Python's sqlite3 module, PostgreSQL through psql; the rows are
made by the database itself (a recursive CTE, generate_series), so a million
take seconds. The keys are random and never handed out: the benchmark's own
session is found among the others by its index, as in production.
"""
import subprocess
import sqlite3
import sys

FAR_FUTURE = 9_000_000_000_000  # unix ms, year 2255


def seed_sqlite(path: str, n: int) -> None:
    db = sqlite3.connect(path, timeout=120)
    (base,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM users").fetchone()
    db.execute(
        """WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
           INSERT INTO users (username, username_lower, password_hash, is_active, date_joined)
           SELECT 'scale' || i, 'scale' || i, NULL, 1, 0 FROM s""",
        (n,),
    )
    db.execute(
        """INSERT INTO sessions (key_hash, user_id, client, data, created_at, expires_at, last_seen_at)
           SELECT lower(hex(randomblob(32))), id, 'app', '{}', 0, ?, 0
           FROM users WHERE id > ?""",
        (FAR_FUTURE, base),
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def seed_postgres(url: str, n: int) -> None:
    sql = f"""
    BEGIN;
    CREATE TEMP TABLE seed_base AS SELECT COALESCE(MAX(id), 0) AS base FROM users;
    INSERT INTO users (username, username_lower, password_hash, is_active, date_joined)
      SELECT 'scale' || i, 'scale' || i, NULL, true, 0 FROM generate_series(1, {n}) AS i;
    INSERT INTO sessions (key_hash, user_id, client, data, created_at, expires_at, last_seen_at)
      SELECT md5(random()::text) || md5(random()::text), id, 'app', '{{}}', 0, {FAR_FUTURE}, 0
      FROM users WHERE id > (SELECT base FROM seed_base);
    COMMIT;
    ANALYZE users; ANALYZE sessions;
    """
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True)


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2])
    if url.startswith("sqlite://"):
        seed_sqlite(url.removeprefix("sqlite://"), n)
    else:
        seed_postgres(url, n)
    print(f"seeded {n} users and sessions")


if __name__ == "__main__":
    main()
