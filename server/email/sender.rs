//! The background mail sender: `mail_outbox` delivered through the
//! configured [`Transport`] by the shared outbox loop (`crate::outbox`:
//! claims with a lease, at-least-once delivery, exponential back-off,
//! give-up, purge of sent rows).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::{Config, EmailConfig};
use crate::db::mail_outbox::{self, Mail};
use crate::db::{Db, DbConnection, DbError};
use crate::outbox::{self, Failure, Outbox};

use super::transport::{Transport, TransportError};

pub use crate::outbox::{Pass, GIVEN_UP};

/// Wakes the mail sender after mail was queued (see [`outbox::Waker`]).
pub type Mailer = outbox::Waker;

/// `mail_outbox` and its transport.
struct MailOutbox<'a> {
    config: &'a EmailConfig,
    transport: &'a Transport,
}

impl Outbox for MailOutbox<'_> {
    type Row = Mail;
    const NAME: &'static str = "mail";

    fn backoff_secs(&self) -> u64 {
        self.config.retry_backoff_secs
    }

    fn max_attempts(&self) -> u32 {
        self.config.retry_max_attempts
    }

    fn attempt_limit(&self) -> Duration {
        // Connect, greeting, TLS, EHLO, AUTH, MAIL, RCPT, DATA, QUIT: a few
        // operations each bounded by `smtp_timeout`.
        Duration::from_secs(self.config.smtp_timeout.max(1)).saturating_mul(4)
    }

    fn id(row: &Mail) -> i64 {
        row.id
    }

    fn attempts(row: &Mail) -> i32 {
        row.attempts
    }

    fn describe(_: &Mail) -> String {
        String::new()
    }

    crate::outbox::table_queries!(mail_outbox);

    fn purge_sent(conn: &mut DbConnection, before: i64) -> Result<usize, DbError> {
        mail_outbox::purge_sent(conn, before)
    }

    async fn send(&self, row: &Mail) -> Result<(), Failure> {
        self.transport.send(row).await.map_err(|e| Failure {
            permanent: e.is_permanent(),
            message: e.to_string(),
        })
    }

    fn count(sent: bool) {
        if sent {
            crate::metrics::mail_sent();
        } else {
            crate::metrics::mail_failed();
        }
    }
}

/// Starts the sender. It runs until `shutdown` completes, finishing the mail
/// it is sending first. Fails only when the configuration cannot give a
/// transport (an invalid `email.from`, TLS parameters for `smtp_host`).
pub fn spawn_sender(
    db: Db,
    config: Arc<Config>,
    mailer: Mailer,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, TransportError> {
    let transport = Transport::from_config(&config.email)?;
    tracing::info!(transport = ?transport, "mail sender started");
    Ok(tokio::spawn(async move {
        let mail = MailOutbox {
            config: &config.email,
            transport: &transport,
        };
        outbox::run(db, &mail, mailer, shutdown).await;
    }))
}

/// Delivers every mail due now once (all batches), without waiting for
/// anything else. For tools and tests; the sender task does the same in a loop.
pub async fn deliver_due(
    db: &Db,
    config: &EmailConfig,
    transport: &Transport,
) -> Result<Pass, DbError> {
    outbox::deliver_due(db, &MailOutbox { config, transport }).await
}
