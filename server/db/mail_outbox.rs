//! The `mail_outbox` table: mail waiting to be sent, retried with back-off until sent.
//!
//! A sender polls [`due`], [`claim`]s each row (so that another instance
//! polling at the same time skips it), sends it, then calls [`mark_sent`] or
//! [`mark_failed`] with the next attempt time.

use diesel::prelude::*;

use super::schema::mail_outbox;
use super::{DbConnection, DbError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = mail_outbox)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Mail {
    pub id: i64,
    /// Unix epoch milliseconds, like every timestamp here.
    pub created_at: i64,
    pub to_addr: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// Finished attempts, failed or not.
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct NewMail {
    pub created_at: i64,
    pub to_addr: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub next_attempt_at: i64,
}

impl NewMail {
    /// A mail to send as soon as possible from `now` (unix epoch milliseconds).
    pub fn new(
        now: i64,
        to_addr: &str,
        subject: &str,
        body_text: &str,
        body_html: Option<&str>,
    ) -> NewMail {
        NewMail {
            created_at: now,
            to_addr: to_addr.to_owned(),
            subject: subject.to_owned(),
            body_text: body_text.to_owned(),
            body_html: body_html.map(str::to_owned),
            next_attempt_at: now,
        }
    }
}

pub fn enqueue(conn: &mut DbConnection, new: &NewMail) -> Result<Mail, DbError> {
    Ok(diesel::insert_into(mail_outbox::table)
        .values(new)
        // MultiConnection cannot render `as_returning()`; the plain column tuple works.
        .returning(<Mail as Selectable<diesel::pg::Pg>>::construct_selection())
        .get_result::<Mail>(conn)?)
}

outbox_queries!(
    table: mail_outbox,
    row: Mail,
    sent: sent_at,
    due_order: (mail_outbox::next_attempt_at.asc(), mail_outbox::id.asc())
);

/// How many unsent mails were due before `before` and still wait: a sender
/// that works takes a due mail within seconds (a failure pushes its next
/// attempt forward; a given-up mail is due never), so these are stuck.
pub fn overdue(conn: &mut DbConnection, before: i64) -> Result<i64, DbError> {
    Ok(mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .filter(mail_outbox::next_attempt_at.lt(before))
        .count()
        .get_result(conn)?)
}

/// Mail waiting to be sent (unsent, not given up: `next_attempt_at` before
/// `given_up_at`): how many, and when the oldest was queued.
pub fn pending_stats(
    conn: &mut DbConnection,
    given_up_at: i64,
) -> Result<(i64, Option<i64>), DbError> {
    let waiting = mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .filter(mail_outbox::next_attempt_at.lt(given_up_at));
    let count = waiting.count().get_result(conn)?;
    let oldest = waiting
        .select(diesel::dsl::min(mail_outbox::created_at))
        .first::<Option<i64>>(conn)?;
    Ok((count, oldest))
}

/// Counts for `allauth-server outbox status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Unsent and not given up.
    pub waiting: i64,
    /// Of those, due before the `overdue_before` asked for.
    pub overdue: i64,
    pub given_up: i64,
    /// Sent, not purged yet.
    pub sent: i64,
}

pub fn status(
    conn: &mut DbConnection,
    given_up_at: i64,
    overdue_before: i64,
) -> Result<OutboxStatus, DbError> {
    let unsent = mail_outbox::table.filter(mail_outbox::sent_at.is_null());
    Ok(OutboxStatus {
        waiting: unsent
            .filter(mail_outbox::next_attempt_at.lt(given_up_at))
            .count()
            .get_result(conn)?,
        overdue: overdue(conn, overdue_before)?,
        given_up: unsent
            .filter(mail_outbox::next_attempt_at.eq(given_up_at))
            .count()
            .get_result(conn)?,
        sent: mail_outbox::table
            .filter(mail_outbox::sent_at.is_not_null())
            .count()
            .get_result(conn)?,
    })
}

/// Makes given-up mail (all, or the one with `id`) due at `now`, with its
/// attempts counted from zero again. Returns how many.
pub fn retry_given_up(
    conn: &mut DbConnection,
    id: Option<i64>,
    now: i64,
    given_up_at: i64,
) -> Result<usize, DbError> {
    let given_up = mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .filter(mail_outbox::next_attempt_at.eq(given_up_at));
    let changes = (
        mail_outbox::next_attempt_at.eq(now),
        mail_outbox::attempts.eq(0),
    );
    Ok(match id {
        Some(id) => diesel::update(given_up.filter(mail_outbox::id.eq(id)))
            .set(changes)
            .execute(conn)?,
        None => diesel::update(given_up).set(changes).execute(conn)?,
    })
}

/// Deletes mail sent before `before`. Returns how many.
pub fn purge_sent(conn: &mut DbConnection, before: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(mail_outbox::table.filter(mail_outbox::sent_at.lt(before))).execute(conn)?)
}
