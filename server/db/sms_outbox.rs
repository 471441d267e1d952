//! The `sms_outbox` table: text messages waiting to be sent, retried with back-off until sent.
//!
//! The same life as a `mail_outbox` row: a sender polls [`due`], [`claim`]s
//! each row (so that another instance polling at the same time skips it),
//! sends it, then calls [`mark_sent`] or [`mark_failed`] with the next
//! attempt time.

use diesel::prelude::*;

use super::schema::sms_outbox;
use super::{DbConnection, DbError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = sms_outbox)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Sms {
    pub id: i64,
    /// E.164 (`+` and digits).
    pub to_number: String,
    /// The text; holds codes: never logged.
    pub body: String,
    /// A short stable name of the message (`verification_code`…), for logs.
    pub kind: String,
    /// Unix epoch milliseconds, like every timestamp here.
    pub created_at: i64,
    pub next_attempt_at: i64,
    /// Finished attempts, failed or not.
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = sms_outbox)]
pub struct NewSms {
    pub to_number: String,
    pub body: String,
    pub kind: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
}

impl NewSms {
    /// A message to send as soon as possible from `now` (unix epoch milliseconds).
    pub fn new(now: i64, to_number: &str, body: &str, kind: &str) -> NewSms {
        NewSms {
            to_number: to_number.to_owned(),
            body: body.to_owned(),
            kind: kind.to_owned(),
            created_at: now,
            next_attempt_at: now,
        }
    }
}

pub fn enqueue(conn: &mut DbConnection, new: &NewSms) -> Result<Sms, DbError> {
    Ok(diesel::insert_into(sms_outbox::table)
        .values(new)
        // MultiConnection cannot render `as_returning()`; the plain column tuple works.
        .returning(<Sms as Selectable<diesel::pg::Pg>>::construct_selection())
        .get_result::<Sms>(conn)?)
}

outbox_queries!(
    table: sms_outbox,
    row: Sms,
    sent: sent_at,
    due_order: (sms_outbox::next_attempt_at.asc(), sms_outbox::id.asc())
);

/// Every row, oldest first (for tools and tests).
pub fn all(conn: &mut DbConnection) -> Result<Vec<Sms>, DbError> {
    Ok(sms_outbox::table
        .order(sms_outbox::id.asc())
        .select(Sms::as_select())
        .load(conn)?)
}

/// How many messages wait to be sent (unsent, not given up:
/// `next_attempt_at` before `given_up_at`).
pub fn pending(conn: &mut DbConnection, given_up_at: i64) -> Result<i64, DbError> {
    Ok(sms_outbox::table
        .filter(sms_outbox::sent_at.is_null())
        .filter(sms_outbox::next_attempt_at.lt(given_up_at))
        .count()
        .get_result(conn)?)
}

/// Deletes messages sent before `before`. Returns how many.
pub fn purge_sent(conn: &mut DbConnection, before: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(sms_outbox::table.filter(sms_outbox::sent_at.lt(before))).execute(conn)?)
}
