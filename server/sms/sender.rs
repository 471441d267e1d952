//! The background SMS sender: polls `sms_outbox`, delivers due messages, retries failures with exponential back-off.
//!
//! The same loop as the mail sender (`crate::email::sender`): every
//! [`POLL_INTERVAL`], or at once after [`Texter::wake`], it takes the due
//! rows, [claims](sms_outbox::claim) each one (pushing its next attempt out
//! by a lease, so that several server instances on one database never send
//! the same row at the same time), sends it and records the outcome:
//!
//! * sent: `sent_at` set;
//! * failed: `attempts` + 1, `last_error` set, next attempt after
//!   `retry_backoff_secs · 2^(attempts before this one)`, at least
//!   [`MIN_RETRY_DELAY`] and at most [`MAX_RETRY_DELAY`];
//! * failed for the `retry_max_attempts`-th time, or refused for good (not
//!   an E.164 number, a 4xx from Twilio): given up, logged at error level,
//!   the row kept with its `last_error` and `next_attempt_at` = [`GIVEN_UP`].
//!
//! Delivery is at least once: a sender stopped between sending and
//! recording leaves the row to be sent again once the lease ends. Rows sent
//! more than [`SENT_RETENTION`] ago are deleted (their bodies hold codes).
//!
//! Logs name a row by its id and kind, and its number masked; never the body.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::{Config, SmsConfig};
use crate::db::sms_outbox::{self, Sms};
use crate::db::{now_millis, Db, DbError};

use super::messages::mask_number;
use super::transport::{SendError, Transport, TransportError};

/// How often the outbox is polled when nobody wakes the sender.
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

/// Wakes the sender when a message was queued. Cheap to clone; share one between
/// the request handlers and [`spawn_sender`].
#[derive(Debug, Clone, Default)]
pub struct Texter {
    notify: Arc<Notify>,
}

impl Texter {
    pub fn new() -> Texter {
        Texter::default()
    }

    /// Asks the sender to poll now. Call it after the transaction that queued
    /// the message has committed (before, the sender might not see the row yet; it
    /// would then find it at its next poll). A wake while the sender is busy
    /// is remembered, not lost.
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

/// How long a delivery attempt may take in all, and how long a claimed row is
/// left alone by other senders (longer than the attempt, so it cannot be
/// claimed again while still being sent).
fn attempt_limits(config: &SmsConfig) -> (Duration, Duration) {
    // One HTTP request, bounded by `timeout_secs` in the client; a little
    // more here so that the client's own error is the one reported.
    let attempt =
        Duration::from_secs(config.timeout_secs.max(1)).saturating_add(Duration::from_secs(5));
    let lease = attempt.saturating_add(Duration::from_secs(60));
    (attempt, lease)
}

/// The delay before the next attempt after a failure, given the number of
/// attempts made before the one that failed.
pub fn retry_delay(config: &SmsConfig, previous_attempts: u32) -> Duration {
    let factor = 1u64
        .checked_shl(previous_attempts.min(40))
        .unwrap_or(u64::MAX);
    Duration::from_secs(config.retry_backoff_secs.saturating_mul(factor))
        .clamp(MIN_RETRY_DELAY, MAX_RETRY_DELAY)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub failed: usize,
    pub given_up: usize,
}

/// Starts the sender. It runs until `shutdown` completes, finishing the message
/// it is sending first. Fails only when the configuration cannot give a
/// transport (the HTTP client cannot be built, a backend lacks a setting).
pub fn spawn_sender(
    db: Db,
    config: Arc<Config>,
    texter: Texter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, TransportError> {
    let transport = Transport::from_config(&config.sms)?;
    tracing::info!(transport = ?transport, "sms sender started");
    Ok(tokio::spawn(run(db, config, transport, texter, shutdown)))
}

async fn run(
    db: Db,
    config: Arc<Config>,
    transport: Transport,
    texter: Texter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    let mut last_purge: Option<Instant> = None;
    loop {
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_INTERVAL) {
            purge(&db).await;
            last_purge = Some(Instant::now());
        }
        loop {
            match deliver_batch(&db, &config.sms, &transport, shutdown.as_mut()).await {
                Ok((_, BatchEnd::Full)) => continue,
                Ok((_, BatchEnd::Done)) => break,
                Ok((_, BatchEnd::Shutdown)) => {
                    tracing::info!("sms sender stopped");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sms sender: outbox not readable, retrying later");
                    break;
                }
            }
        }
        tokio::select! {
            biased;
            () = &mut shutdown => {
                tracing::info!("sms sender stopped");
                return;
            }
            () = texter.notify.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

async fn purge(db: &Db) {
    let before = now_millis().saturating_sub(millis(SENT_RETENTION));
    match db
        .run(move |conn| sms_outbox::purge_sent(conn, before))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::debug!(deleted = n, "sent sms purged"),
        Err(e) => tracing::warn!(error = %e, "sms sender: could not purge sent sms"),
    }
}

enum BatchEnd {
    /// The batch was full: there may be more due now.
    Full,
    Done,
    Shutdown,
}

/// Delivers every message due now once (all batches), without waiting for
/// anything else. For tools and tests; the sender task does the same in a loop.
pub async fn deliver_due(
    db: &Db,
    config: &SmsConfig,
    transport: &Transport,
) -> Result<Pass, DbError> {
    let mut total = Pass::default();
    let never = std::future::pending::<()>();
    tokio::pin!(never);
    loop {
        let (pass, end) = deliver_batch(db, config, transport, never.as_mut()).await?;
        total.sent += pass.sent;
        total.failed += pass.failed;
        total.given_up += pass.given_up;
        if !matches!(end, BatchEnd::Full) {
            return Ok(total);
        }
    }
}

async fn deliver_batch<S: Future<Output = ()>>(
    db: &Db,
    config: &SmsConfig,
    transport: &Transport,
    mut shutdown: std::pin::Pin<&mut S>,
) -> Result<(Pass, BatchEnd), DbError> {
    let now = now_millis();
    let due = db
        .run(move |conn| sms_outbox::due(conn, now, BATCH_SIZE))
        .await?;
    let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= BATCH_SIZE;
    let mut pass = Pass::default();
    for sms in due {
        let stop = tokio::select! {
            biased;
            () = shutdown.as_mut() => true,
            () = std::future::ready(()) => false,
        };
        if stop {
            return Ok((pass, BatchEnd::Shutdown));
        }
        match deliver_one(db, config, transport, sms).await? {
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

async fn deliver_one(
    db: &Db,
    config: &SmsConfig,
    transport: &Transport,
    sms: Sms,
) -> Result<Outcome, DbError> {
    let (attempt_limit, lease) = attempt_limits(config);
    let now = now_millis();
    let lease_until = now.saturating_add(millis(lease));
    let id = sms.id;
    // Re-read after claiming: another instance may have attempted it since
    // the `due` query, and `attempts` decides when to give up.
    let claimed = db
        .run(move |conn| {
            if sms_outbox::claim(conn, id, now, lease_until)? {
                sms_outbox::by_id(conn, id)
            } else {
                Ok(None)
            }
        })
        .await?;
    let Some(sms) = claimed else {
        return Ok(Outcome::NotClaimed);
    };
    let result = match tokio::time::timeout(attempt_limit, transport.send(&sms)).await {
        Ok(result) => result,
        Err(_) => Err(SendError::Delivery(format!(
            "no answer within {} s",
            attempt_limit.as_secs()
        ))),
    };
    match result {
        Ok(()) => {
            record_sent(db, id).await?;
            tracing::info!(
                sms_id = id,
                kind = %sms.kind,
                to = %mask_number(&sms.to_number),
                attempt = sms.attempts + 1,
                "sms sent"
            );
            crate::metrics::sms_sent();
            Ok(Outcome::Sent)
        }
        Err(error) => {
            crate::metrics::sms_failed();
            let attempts = sms.attempts.saturating_add(1);
            let max = i32::try_from(config.retry_max_attempts).unwrap_or(i32::MAX);
            let message: String = error.to_string().chars().take(MAX_ERROR_CHARS).collect();
            if error.is_permanent() || attempts >= max {
                db.run(move |conn| sms_outbox::mark_failed(conn, id, GIVEN_UP, &message))
                    .await?;
                tracing::error!(
                    sms_id = id,
                    kind = %sms.kind,
                    to = %mask_number(&sms.to_number),
                    attempts,
                    error = %error,
                    "sms not sent; giving up (reset its next_attempt_at to retry)"
                );
                Ok(Outcome::GivenUp)
            } else {
                let delay = retry_delay(config, u32::try_from(sms.attempts).unwrap_or(0));
                let next = now_millis().saturating_add(millis(delay));
                db.run(move |conn| sms_outbox::mark_failed(conn, id, next, &message))
                    .await?;
                tracing::warn!(
                    sms_id = id,
                    kind = %sms.kind,
                    to = %mask_number(&sms.to_number),
                    attempts,
                    retry_in_ms = millis(delay),
                    error = %error,
                    "sms not sent; will retry"
                );
                Ok(Outcome::Failed)
            }
        }
    }
}

/// Records a successful send, retrying briefly: a message sent but not marked
/// would be sent again when its lease ends.
async fn record_sent(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tries = 0;
    loop {
        let at = now_millis();
        match db
            .run(move |conn| sms_outbox::mark_sent(conn, id, at))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if tries < 3 => {
                tries += 1;
                tracing::warn!(sms_id = id, error = %e, "sms sent but not yet recorded; retrying");
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
        let config = SmsConfig {
            retry_backoff_secs: 30,
            ..SmsConfig::default()
        };
        assert_eq!(retry_delay(&config, 0), Duration::from_secs(30));
        assert_eq!(retry_delay(&config, 1), Duration::from_secs(60));
        assert_eq!(retry_delay(&config, 3), Duration::from_secs(240));
        assert_eq!(retry_delay(&config, 10), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(&config, u32::MAX), MAX_RETRY_DELAY);
        let zero = SmsConfig {
            retry_backoff_secs: 0,
            ..SmsConfig::default()
        };
        assert_eq!(retry_delay(&zero, 5), MIN_RETRY_DELAY);
    }

    #[test]
    fn the_lease_outlasts_an_attempt() {
        let (attempt, lease) = attempt_limits(&SmsConfig::default());
        assert!(lease > attempt);
    }

    #[tokio::test]
    async fn a_wake_before_waiting_is_not_lost() {
        let texter = Texter::new();
        texter.wake();
        tokio::time::timeout(Duration::from_secs(1), texter.notify.notified())
            .await
            .unwrap();
    }
}
