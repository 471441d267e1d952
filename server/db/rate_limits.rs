//! The `rate_limit_hits` table: per-window hit counters shared by every server instance.
//!
//! A row counts the hits of one `(action, key)` in the window starting at
//! `window_start`; `expires_at` says when the row is no longer needed (when
//! the window, or the last sliding span that reads it, has passed).
//! [`hit`] is one atomic statement (`INSERT … ON CONFLICT … DO UPDATE SET
//! count = count + 1 RETURNING count`), so concurrent callers each see a
//! distinct count. The caller compares it with its limit and, to leave no
//! trace of a refused attempt or to give a slot back, calls [`release`].

use diesel::prelude::*;

use super::schema::rate_limit_hits;
use super::{DbConnection, DbError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rate_limit_hits)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct RateLimitHit {
    pub action: String,
    pub key: String,
    /// Unix epoch milliseconds.
    pub window_start: i64,
    pub count: i32,
    /// Unix epoch milliseconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = rate_limit_hits)]
pub struct NewRateLimitHit<'a> {
    pub action: &'a str,
    pub key: &'a str,
    pub window_start: i64,
    pub count: i32,
    pub expires_at: i64,
}

/// Counts one hit and returns the window's count including it (1 for the first).
///
/// `expires_at` is only used when the row is created.
pub fn hit(
    conn: &mut DbConnection,
    action: &str,
    key: &str,
    window_start: i64,
    expires_at: i64,
) -> Result<i32, DbError> {
    let row = NewRateLimitHit {
        action,
        key,
        window_start,
        count: 1,
        expires_at,
    };
    // MultiConnection has no ON CONFLICT: build the statement once, run it on
    // the concrete connection.
    let query = diesel::insert_into(rate_limit_hits::table)
        .values(&row)
        .on_conflict((
            rate_limit_hits::action,
            rate_limit_hits::key,
            rate_limit_hits::window_start,
        ))
        .do_update()
        .set(rate_limit_hits::count.eq(rate_limit_hits::count + 1))
        .returning(rate_limit_hits::count);
    let count = match conn {
        DbConnection::Sqlite(conn) => query.get_result::<i32>(conn)?,
        DbConnection::Postgresql(conn) => query.get_result::<i32>(conn)?,
    };
    Ok(count)
}

/// Takes one hit back (never below zero). Returns whether a hit was taken back.
pub fn release(
    conn: &mut DbConnection,
    action: &str,
    key: &str,
    window_start: i64,
) -> Result<bool, DbError> {
    let n = diesel::update(
        rate_limit_hits::table
            .filter(rate_limit_hits::action.eq(action))
            .filter(rate_limit_hits::key.eq(key))
            .filter(rate_limit_hits::window_start.eq(window_start))
            .filter(rate_limit_hits::count.gt(0)),
    )
    .set(rate_limit_hits::count.eq(rate_limit_hits::count - 1))
    .execute(conn)?;
    Ok(n > 0)
}

/// The window's current count (0 when it has no row), without counting a hit.
pub fn count(
    conn: &mut DbConnection,
    action: &str,
    key: &str,
    window_start: i64,
) -> Result<i32, DbError> {
    Ok(rate_limit_hits::table
        .filter(rate_limit_hits::action.eq(action))
        .filter(rate_limit_hits::key.eq(key))
        .filter(rate_limit_hits::window_start.eq(window_start))
        .select(rate_limit_hits::count)
        .first::<i32>(conn)
        .optional()?
        .unwrap_or(0))
}

/// Deletes every counter of `action` under one of `keys` (allauth's
/// `ratelimit.clear`). Returns how many rows went.
pub fn clear(conn: &mut DbConnection, action: &str, keys: &[String]) -> Result<usize, DbError> {
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(
        rate_limit_hits::table
            .filter(rate_limit_hits::action.eq(action))
            .filter(rate_limit_hits::key.eq_any(keys)),
    )
    .execute(conn)?)
}

/// Deletes the rows that expired before `before` (unix epoch milliseconds). Returns how many.
pub fn purge(conn: &mut DbConnection, before: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(rate_limit_hits::table.filter(rate_limit_hits::expires_at.lt(before)))
            .execute(conn)?,
    )
}

#[derive(diesel::QueryableByName)]
struct HitCount {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    count: i32,
}

/// The window start under which [`hit_anchored`] keeps its one row per key.
pub const ANCHORED: i64 = 0;

/// Counts one hit in a window that starts at the key's first hit (not at a
/// multiple of the period) and returns the count including it. One atomic
/// upsert: a window that has ended restarts at `now` with a count of 1.
///
/// Anchoring matters for cooldowns such as `1/10s`: with epoch-aligned
/// windows a second request one second later could land in a new window.
pub fn hit_anchored(
    conn: &mut DbConnection,
    action: &str,
    key: &str,
    now: i64,
    period_ms: i64,
) -> Result<i32, DbError> {
    use diesel::sql_types::{BigInt, Text};
    const SQL_PG: &str = "INSERT INTO rate_limit_hits (action, \"key\", window_start, count, expires_at) \
        VALUES ($1, $2, 0, 1, $3 + $4) \
        ON CONFLICT (action, \"key\", window_start) DO UPDATE SET \
        count = CASE WHEN rate_limit_hits.expires_at <= $3 THEN 1 ELSE rate_limit_hits.count + 1 END, \
        expires_at = CASE WHEN rate_limit_hits.expires_at <= $3 THEN $3 + $4 ELSE rate_limit_hits.expires_at END \
        RETURNING count";
    const SQL_SQLITE: &str = "INSERT INTO rate_limit_hits (action, \"key\", window_start, count, expires_at) \
        VALUES (?1, ?2, 0, 1, ?3 + ?4) \
        ON CONFLICT (action, \"key\", window_start) DO UPDATE SET \
        count = CASE WHEN rate_limit_hits.expires_at <= ?3 THEN 1 ELSE rate_limit_hits.count + 1 END, \
        expires_at = CASE WHEN rate_limit_hits.expires_at <= ?3 THEN ?3 + ?4 ELSE rate_limit_hits.expires_at END \
        RETURNING count";
    let row: HitCount = match conn {
        DbConnection::Sqlite(conn) => diesel::sql_query(SQL_SQLITE)
            .bind::<Text, _>(action)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(period_ms)
            .get_result(conn)?,
        DbConnection::Postgresql(conn) => diesel::sql_query(SQL_PG)
            .bind::<Text, _>(action)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(period_ms)
            .get_result(conn)?,
    };
    Ok(row.count)
}
