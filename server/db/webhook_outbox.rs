//! The `webhook_outbox` table: account events waiting for delivery to a
//! webhook endpoint. Written inside the transaction of the change that
//! caused the event; taken by the deliverer with a conditional UPDATE (the
//! lease), so that one instance delivers a row at a time.

use diesel::prelude::*;

use super::schema::webhook_outbox;
use super::{DbConnection, DbError};

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = webhook_outbox)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub endpoint: String,
    pub body: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = webhook_outbox)]
pub struct NewDelivery<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub endpoint: &'a str,
    pub body: &'a str,
    pub created_at: i64,
    pub next_attempt_at: i64,
}

pub fn insert(conn: &mut DbConnection, new: &NewDelivery<'_>) -> Result<(), DbError> {
    diesel::insert_into(webhook_outbox::table)
        .values(new)
        .execute(conn)?;
    Ok(())
}

/// Undelivered rows due at `now`, oldest first.
pub fn due(conn: &mut DbConnection, now: i64, limit: i64) -> Result<Vec<Delivery>, DbError> {
    Ok(webhook_outbox::table
        .filter(webhook_outbox::delivered_at.is_null())
        .filter(webhook_outbox::next_attempt_at.le(now))
        .order(webhook_outbox::id.asc())
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)?)
}

/// Takes a due row by pushing its next attempt to `lease_until`: true for
/// exactly one of several concurrent callers.
pub fn claim(
    conn: &mut DbConnection,
    id: i64,
    now: i64,
    lease_until: i64,
) -> Result<bool, DbError> {
    let n = diesel::update(
        webhook_outbox::table
            .find(id)
            .filter(webhook_outbox::delivered_at.is_null())
            .filter(webhook_outbox::next_attempt_at.le(now)),
    )
    .set(webhook_outbox::next_attempt_at.eq(lease_until))
    .execute(conn)?;
    Ok(n > 0)
}

/// The row with `id`.
pub fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Delivery>, DbError> {
    Ok(webhook_outbox::table
        .find(id)
        .select(Delivery::as_select())
        .first(conn)
        .optional()?)
}

pub fn mark_delivered(conn: &mut DbConnection, id: i64, at: i64) -> Result<bool, DbError> {
    let n = diesel::update(webhook_outbox::table.find(id))
        .set((
            webhook_outbox::delivered_at.eq(at),
            webhook_outbox::attempts.eq(webhook_outbox::attempts + 1),
            webhook_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// A failed attempt: counted, with the error, due again at `next`.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    next: i64,
    error: &str,
) -> Result<bool, DbError> {
    let n = diesel::update(webhook_outbox::table.find(id))
        .set((
            webhook_outbox::next_attempt_at.eq(next),
            webhook_outbox::attempts.eq(webhook_outbox::attempts + 1),
            webhook_outbox::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// Every row, oldest first (tests, the admin command).
pub fn all(conn: &mut DbConnection) -> Result<Vec<Delivery>, DbError> {
    Ok(webhook_outbox::table
        .order(webhook_outbox::id.asc())
        .select(Delivery::as_select())
        .load(conn)?)
}
