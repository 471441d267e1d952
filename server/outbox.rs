//! The one delivery loop of the outboxes (mail, SMS): a table of rows
//! written inside the transactions of the changes they report, and a
//! background sender that delivers them ([`Outbox`] says how, for each
//! kind).
//!
//! Every poll interval, or at once after [`Waker::wake`], the sender takes
//! the due rows, claims each one (pushing its next attempt out by a lease,
//! so that several server instances on one database never send the same
//! row at the same time), sends it and records the outcome:
//!
//! * sent: `sent_at` set;
//! * failed: `attempts` + 1, `last_error` set, next attempt after
//!   `retry_backoff_secs · 2^(attempts before this one)`, at least
//!   [`MIN_RETRY_DELAY`] and at most [`MAX_RETRY_DELAY`];
//! * failed for the `retry_max_attempts`-th time, or refused for good
//!   ([`Failure::permanent`]): given up, logged at error level, the row
//!   kept with its `last_error` and `next_attempt_at` = [`GIVEN_UP`] (set it
//!   back to a past time to try again).
//!
//! Delivery is at least once: a sender stopped between sending and
//! recording (crash, database outage) leaves the row to be sent again once
//! the lease ends. A down backend or database never fails a request
//! (requests only insert rows) and never loses a row; the sender retries.
//!
//! Rows sent more than [`SENT_RETENTION`] ago are deleted (their bodies
//! hold codes and links), checked every [`PURGE_INTERVAL`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::db::{now_millis, Db, DbConnection, DbError};

/// How often an outbox is polled when nobody wakes its sender.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Rows taken per query; more are fetched at once when a batch was full.
pub const BATCH_SIZE: i64 = 50;
/// Floor of the retry delay, so that `retry_backoff_secs = 0` cannot spin.
pub const MIN_RETRY_DELAY: Duration = Duration::from_millis(250);
/// Ceiling of the retry delay: an outage of hours is retried at least hourly.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// `next_attempt_at` of a row the sender gave up on: never due.
pub const GIVEN_UP: i64 = i64::MAX;
/// How long sent rows are kept.
pub const SENT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often sent rows past [`SENT_RETENTION`] are deleted.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);
/// Longest `last_error` stored, in characters.
const MAX_ERROR_CHARS: usize = 1000;

/// Wakes a sender when a row was queued. Cheap to clone; share one between
/// the request handlers and the sender.
#[derive(Debug, Clone, Default)]
pub struct Waker {
    notify: Arc<Notify>,
}

impl Waker {
    pub fn new() -> Waker {
        Waker::default()
    }

    /// Asks the sender to poll now. Call it after the transaction that queued
    /// the row has committed (before, the sender might not see it yet; it
    /// would then find it at its next poll). A wake while the sender is busy
    /// is remembered, not lost.
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

/// One failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stored as `last_error` and logged: never a code, a body or a full
    /// phone number.
    pub message: String,
    /// Retrying cannot help (an invalid recipient, a refusal for good).
    pub permanent: bool,
}

/// How one kind of outbox is stored and delivered.
pub trait Outbox: Sync {
    type Row: Send + 'static;
    /// What the logs call a row (`mail`, `sms`).
    const NAME: &'static str;

    /// `retry_backoff_secs` and `retry_max_attempts` of its settings.
    fn backoff_secs(&self) -> u64;
    fn max_attempts(&self) -> u32;
    /// How long one attempt may take in all.
    fn attempt_limit(&self) -> Duration;

    fn id(row: &Self::Row) -> i64;
    fn attempts(row: &Self::Row) -> i32;
    /// Extra words for the log lines about `row` (its kind, a masked
    /// number), or nothing.
    fn describe(row: &Self::Row) -> String;

    fn due(conn: &mut DbConnection, now: i64, limit: i64) -> Result<Vec<Self::Row>, DbError>;
    fn claim(conn: &mut DbConnection, id: i64, now: i64, lease_until: i64)
        -> Result<bool, DbError>;
    fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Self::Row>, DbError>;
    fn mark_sent(conn: &mut DbConnection, id: i64, at: i64) -> Result<bool, DbError>;
    fn mark_failed(
        conn: &mut DbConnection,
        id: i64,
        next: i64,
        error: &str,
    ) -> Result<bool, DbError>;
    fn purge_sent(conn: &mut DbConnection, before: i64) -> Result<usize, DbError>;

    /// One delivery attempt.
    fn send(&self, row: &Self::Row) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Counts an attempt in the metrics.
    fn count(sent: bool);
}

/// The table queries of an [`Outbox`] impl: those that
/// `db::outbox_queries!` made in the table's module `$module`.
macro_rules! table_queries {
    ($module:ident) => {
        fn due(conn: &mut DbConnection, now: i64, limit: i64) -> Result<Vec<Self::Row>, DbError> {
            $module::due(conn, now, limit)
        }

        fn claim(
            conn: &mut DbConnection,
            id: i64,
            now: i64,
            lease_until: i64,
        ) -> Result<bool, DbError> {
            $module::claim(conn, id, now, lease_until)
        }

        fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Self::Row>, DbError> {
            $module::by_id(conn, id)
        }

        fn mark_sent(conn: &mut DbConnection, id: i64, at: i64) -> Result<bool, DbError> {
            $module::mark_sent(conn, id, at)
        }

        fn mark_failed(
            conn: &mut DbConnection,
            id: i64,
            next: i64,
            error: &str,
        ) -> Result<bool, DbError> {
            $module::mark_failed(conn, id, next, error)
        }
    };
}
pub(crate) use table_queries;

/// How long a delivery attempt may take in all, and how long a claimed row
/// is left alone by other senders (longer than the attempt, so it cannot be
/// claimed again while still being sent).
pub fn lease(attempt: Duration) -> Duration {
    attempt.saturating_add(Duration::from_secs(60))
}

/// The delay before the next attempt after a failure, given the number of
/// attempts made before the one that failed.
pub fn retry_delay(backoff_secs: u64, previous_attempts: u32) -> Duration {
    let factor = 1u64
        .checked_shl(previous_attempts.min(40))
        .unwrap_or(u64::MAX);
    Duration::from_secs(backoff_secs.saturating_mul(factor)).clamp(MIN_RETRY_DELAY, MAX_RETRY_DELAY)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What one pass over an outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub failed: usize,
    pub given_up: usize,
}

/// The sender: runs until `shutdown` completes, finishing the row it is
/// sending first.
pub async fn run<O: Outbox>(
    db: Db,
    outbox: &O,
    waker: Waker,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let mut last_purge: Option<Instant> = None;
    loop {
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_INTERVAL) {
            purge::<O>(&db).await;
            last_purge = Some(Instant::now());
        }
        loop {
            match deliver_batch(&db, outbox, shutdown.as_mut()).await {
                Ok((_, BatchEnd::Full)) => continue,
                Ok((_, BatchEnd::Done)) => break,
                Ok((_, BatchEnd::Shutdown)) => {
                    tracing::info!("{} sender stopped", O::NAME);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{} sender: outbox not readable, retrying later", O::NAME);
                    break;
                }
            }
        }
        tokio::select! {
            biased;
            () = &mut shutdown => {
                tracing::info!("{} sender stopped", O::NAME);
                return;
            }
            () = waker.notify.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

async fn purge<O: Outbox>(db: &Db) {
    let before = now_millis().saturating_sub(millis(SENT_RETENTION));
    match db.run(move |conn| O::purge_sent(conn, before)).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(deleted = n, "sent {} purged", O::NAME),
        Err(e) => tracing::warn!(error = %e, "{} sender: could not purge sent rows", O::NAME),
    }
}

enum BatchEnd {
    /// The batch was full: there may be more due now.
    Full,
    Done,
    Shutdown,
}

/// Delivers every row due now once (all batches), without waiting for
/// anything else. For tools and tests; the sender does the same in a loop.
pub async fn deliver_due<O: Outbox>(db: &Db, outbox: &O) -> Result<Pass, DbError> {
    let mut total = Pass::default();
    let never = std::future::pending::<()>();
    tokio::pin!(never);
    loop {
        let (pass, end) = deliver_batch(db, outbox, never.as_mut()).await?;
        total.sent += pass.sent;
        total.failed += pass.failed;
        total.given_up += pass.given_up;
        if !matches!(end, BatchEnd::Full) {
            return Ok(total);
        }
    }
}

async fn deliver_batch<O: Outbox, S: Future<Output = ()>>(
    db: &Db,
    outbox: &O,
    mut shutdown: std::pin::Pin<&mut S>,
) -> Result<(Pass, BatchEnd), DbError> {
    let now = now_millis();
    let due = db.run(move |conn| O::due(conn, now, BATCH_SIZE)).await?;
    let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= BATCH_SIZE;
    let mut pass = Pass::default();
    for row in due {
        let stop = tokio::select! {
            biased;
            () = shutdown.as_mut() => true,
            () = std::future::ready(()) => false,
        };
        if stop {
            return Ok((pass, BatchEnd::Shutdown));
        }
        match deliver_one(db, outbox, O::id(&row)).await? {
            Outcome::NotClaimed => {}
            Outcome::Sent => pass.sent += 1,
            Outcome::Failed => pass.failed += 1,
            Outcome::GivenUp => pass.given_up += 1,
        }
    }
    Ok((pass, if full { BatchEnd::Full } else { BatchEnd::Done }))
}

enum Outcome {
    NotClaimed,
    Sent,
    Failed,
    GivenUp,
}

async fn deliver_one<O: Outbox>(db: &Db, outbox: &O, id: i64) -> Result<Outcome, DbError> {
    let attempt_limit = outbox.attempt_limit();
    let now = now_millis();
    let lease_until = now.saturating_add(millis(lease(attempt_limit)));
    // Re-read after claiming: another instance may have attempted it since
    // the `due` query, and `attempts` decides when to give up.
    let claimed = db
        .run(move |conn| {
            if O::claim(conn, id, now, lease_until)? {
                O::by_id(conn, id)
            } else {
                Ok(None)
            }
        })
        .await?;
    let Some(row) = claimed else {
        return Ok(Outcome::NotClaimed);
    };
    let what = O::describe(&row);
    let result = match tokio::time::timeout(attempt_limit, outbox.send(&row)).await {
        Ok(result) => result,
        Err(_) => Err(Failure {
            message: format!("no answer within {} s", attempt_limit.as_secs()),
            permanent: false,
        }),
    };
    let previous = O::attempts(&row);
    match result {
        Ok(()) => {
            record_sent::<O>(db, id).await?;
            O::count(true);
            tracing::info!(id, attempt = previous + 1, "{} sent{what}", O::NAME);
            Ok(Outcome::Sent)
        }
        Err(failure) => {
            O::count(false);
            let attempts = previous.saturating_add(1);
            let max = i32::try_from(outbox.max_attempts()).unwrap_or(i32::MAX);
            let message: String = failure.message.chars().take(MAX_ERROR_CHARS).collect();
            if failure.permanent || attempts >= max {
                db.run(move |conn| O::mark_failed(conn, id, GIVEN_UP, &message))
                    .await?;
                tracing::error!(
                    id,
                    attempts,
                    error = %failure.message,
                    "{} not sent{what}; giving up (reset its next_attempt_at to retry)",
                    O::NAME
                );
                Ok(Outcome::GivenUp)
            } else {
                let delay =
                    retry_delay(outbox.backoff_secs(), u32::try_from(previous).unwrap_or(0));
                let next = now_millis().saturating_add(millis(delay));
                db.run(move |conn| O::mark_failed(conn, id, next, &message))
                    .await?;
                tracing::warn!(
                    id,
                    attempts,
                    retry_in_ms = millis(delay),
                    error = %failure.message,
                    "{} not sent{what}; will retry",
                    O::NAME
                );
                Ok(Outcome::Failed)
            }
        }
    }
}

/// Records a successful send, retrying briefly: a row sent but not marked
/// would be sent again when its lease ends.
async fn record_sent<O: Outbox>(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tries = 0;
    loop {
        let at = now_millis();
        match db.run(move |conn| O::mark_sent(conn, id, at)).await {
            Ok(_) => return Ok(()),
            Err(e) if tries < 3 => {
                tries += 1;
                tracing::warn!(id, error = %e, "{} sent but not yet recorded; retrying", O::NAME);
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        assert_eq!(retry_delay(30, 0), Duration::from_secs(30));
        assert_eq!(retry_delay(30, 1), Duration::from_secs(60));
        assert_eq!(retry_delay(30, 3), Duration::from_secs(240));
        assert_eq!(retry_delay(30, 10), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(30, u32::MAX), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(0, 5), MIN_RETRY_DELAY);
    }

    #[test]
    fn the_lease_outlasts_an_attempt() {
        let attempt = Duration::from_secs(40);
        assert!(lease(attempt) > attempt);
    }

    #[tokio::test]
    async fn a_wake_before_waiting_is_not_lost() {
        let waker = Waker::new();
        waker.wake();
        tokio::time::timeout(Duration::from_secs(1), waker.notify.notified())
            .await
            .unwrap();
    }
}
