//! The `refresh_tokens` table: the outstanding JWT refresh tokens of each
//! session, by `jti`. Rows go with their session (`ON DELETE CASCADE`), so
//! ending a session ends its refresh tokens.

use diesel::prelude::*;

use super::schema::refresh_tokens;
use super::{DbConnection, DbError};

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken {
    pub jti: String,
    pub session_id: i64,
    /// Unix epoch milliseconds.
    pub expires_at: i64,
}

pub fn insert(conn: &mut DbConnection, new: &NewRefreshToken) -> Result<(), DbError> {
    diesel::insert_into(refresh_tokens::table)
        .values(new)
        .execute(conn)?;
    Ok(())
}

/// Uses up the refresh token `jti` of session `session_id` if it is still
/// live at `now`: one conditional DELETE, so of concurrent callers exactly
/// one gets `true`.
pub fn consume(
    conn: &mut DbConnection,
    jti: &str,
    session_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        refresh_tokens::table
            .filter(refresh_tokens::jti.eq(jti))
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::expires_at.gt(now)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Whether the refresh token `jti` of session `session_id` is live at `now`
/// (rotation off: a refresh token is reusable until it expires).
pub fn is_live(
    conn: &mut DbConnection,
    jti: &str,
    session_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let n: i64 = refresh_tokens::table
        .filter(refresh_tokens::jti.eq(jti))
        .filter(refresh_tokens::session_id.eq(session_id))
        .filter(refresh_tokens::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Ends every refresh token of session `session_id` (its key was cycled:
/// tokens naming the old key must not outlive it). Returns how many.
pub fn delete_for_session(conn: &mut DbConnection, session_id: i64) -> Result<usize, DbError> {
    delete_for_sessions(conn, &[session_id])
}

/// Ends every refresh token of the given sessions. Returns how many.
pub fn delete_for_sessions(conn: &mut DbConnection, session_ids: &[i64]) -> Result<usize, DbError> {
    if session_ids.is_empty() {
        return Ok(0);
    }
    Ok(
        diesel::delete(
            refresh_tokens::table.filter(refresh_tokens::session_id.eq_any(session_ids)),
        )
        .execute(conn)?,
    )
}

/// Deletes the refresh tokens that expired at or before `now`.
pub fn delete_expired(conn: &mut DbConnection, now: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.le(now)))
            .execute(conn)?,
    )
}
