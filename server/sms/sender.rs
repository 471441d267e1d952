//! The background SMS sender: `sms_outbox` delivered through the configured
//! [`Transport`] by the shared outbox loop (`crate::outbox`: claims with a
//! lease, at-least-once delivery, exponential back-off, give-up, purge of
//! sent rows, whose bodies hold codes).
//!
//! Logs name a row by its id and kind, and its number masked; never the body.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::{Config, SmsConfig};
use crate::db::sms_outbox::{self, Sms};
use crate::db::{Db, DbConnection, DbError};
use crate::outbox::{self, Failure, Outbox};

use super::messages::mask_number;
use super::transport::{Transport, TransportError};

pub use crate::outbox::{Pass, GIVEN_UP};

/// Wakes the SMS sender after a message was queued (see [`outbox::Waker`]).
pub type Texter = outbox::Waker;

/// `sms_outbox` and its transport.
struct SmsOutbox<'a> {
    config: &'a SmsConfig,
    transport: &'a Transport,
}

impl Outbox for SmsOutbox<'_> {
    type Row = Sms;
    const NAME: &'static str = "sms";

    fn backoff_secs(&self) -> u64 {
        self.config.retry_backoff_secs
    }

    fn max_attempts(&self) -> u32 {
        self.config.retry_max_attempts
    }

    fn attempt_limit(&self) -> Duration {
        // One HTTP request, bounded by `timeout_secs` in the client; a little
        // more here so that the client's own error is the one reported.
        Duration::from_secs(self.config.timeout_secs.max(1)).saturating_add(Duration::from_secs(5))
    }

    fn id(row: &Sms) -> i64 {
        row.id
    }

    fn attempts(row: &Sms) -> i32 {
        row.attempts
    }

    fn describe(row: &Sms) -> String {
        format!(" ({} to {})", row.kind, mask_number(&row.to_number))
    }

    crate::outbox::table_queries!(sms_outbox);

    fn purge_sent(conn: &mut DbConnection, before: i64) -> Result<usize, DbError> {
        sms_outbox::purge_sent(conn, before)
    }

    async fn send(&self, row: &Sms) -> Result<(), Failure> {
        self.transport.send(row).await.map_err(|e| Failure {
            permanent: e.is_permanent(),
            message: e.to_string(),
        })
    }

    fn count(sent: bool) {
        if sent {
            crate::metrics::sms_sent();
        } else {
            crate::metrics::sms_failed();
        }
    }
}

/// Starts the sender. It runs until `shutdown` completes, finishing the
/// message it is sending first. Fails only when the configuration cannot
/// give a transport (the HTTP client cannot be built, a backend lacks a
/// setting).
pub fn spawn_sender(
    db: Db,
    config: Arc<Config>,
    texter: Texter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, TransportError> {
    let transport = Transport::from_config(&config.sms)?;
    tracing::info!(transport = ?transport, "sms sender started");
    Ok(tokio::spawn(async move {
        let sms = SmsOutbox {
            config: &config.sms,
            transport: &transport,
        };
        outbox::run(db, &sms, texter, shutdown).await;
    }))
}

/// Delivers every message due now once (all batches), without waiting for
/// anything else. For tools and tests; the sender task does the same in a loop.
pub async fn deliver_due(
    db: &Db,
    config: &SmsConfig,
    transport: &Transport,
) -> Result<Pass, DbError> {
    outbox::deliver_due(db, &SmsOutbox { config, transport }).await
}
