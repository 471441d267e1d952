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

pub fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Mail>, DbError> {
    Ok(mail_outbox::table
        .find(id)
        .select(Mail::as_select())
        .first(conn)
        .optional()?)
}

/// Unsent mail whose next attempt is at or before `now`, earliest first, at most `limit`.
pub fn due(conn: &mut DbConnection, now: i64, limit: i64) -> Result<Vec<Mail>, DbError> {
    Ok(mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .filter(mail_outbox::next_attempt_at.le(now))
        .order((mail_outbox::next_attempt_at.asc(), mail_outbox::id.asc()))
        .limit(limit)
        .select(Mail::as_select())
        .load(conn)?)
}

/// Takes a due mail for sending by pushing its next attempt to `lease_until`:
/// true for exactly one of several concurrent callers; false when it was sent,
/// claimed by someone else or not due at `now`. A sender that dies leaves the
/// mail to be picked up again after the lease.
pub fn claim(
    conn: &mut DbConnection,
    id: i64,
    now: i64,
    lease_until: i64,
) -> Result<bool, DbError> {
    let n = diesel::update(
        mail_outbox::table
            .find(id)
            .filter(mail_outbox::sent_at.is_null())
            .filter(mail_outbox::next_attempt_at.le(now)),
    )
    .set(mail_outbox::next_attempt_at.eq(lease_until))
    .execute(conn)?;
    Ok(n > 0)
}

/// Records a successful send at `at`.
pub fn mark_sent(conn: &mut DbConnection, id: i64, at: i64) -> Result<bool, DbError> {
    let n = diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::sent_at.eq(Some(at)),
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            mail_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// Records a failed attempt and when to try again.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<bool, DbError> {
    let n = diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::next_attempt_at.eq(next_attempt_at),
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            mail_outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

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
