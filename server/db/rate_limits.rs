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

/// Deletes the rows that expired before `before` (unix epoch milliseconds). Returns how many.
pub fn purge(conn: &mut DbConnection, before: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(rate_limit_hits::table.filter(rate_limit_hits::expires_at.lt(before)))
            .execute(conn)?,
    )
}
