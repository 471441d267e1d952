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

outbox_queries!(
    table: webhook_outbox,
    row: Delivery,
    sent: delivered_at,
    due_order: webhook_outbox::id.asc()
);

/// Every row, oldest first (tests, the admin command).
pub fn all(conn: &mut DbConnection) -> Result<Vec<Delivery>, DbError> {
    Ok(webhook_outbox::table
        .order(webhook_outbox::id.asc())
        .select(Delivery::as_select())
        .load(conn)?)
}
