//! Signed account-event webhooks (see `docs/webhooks.md`).
//!
//! A flow that changes an account calls [`emit`] inside the transaction of
//! the change: one `webhook_outbox` row per endpoint that wants the event,
//! so an event exists exactly when its change committed. The deliverer
//! ([`spawn_deliverer`]) POSTs each row, at least once: a row is claimed
//! with a lease (several instances never send it at the same time), a 2xx
//! answer marks it delivered, anything else is retried with exponential
//! backoff until `webhooks.retry_max_attempts`, then given up (kept, with
//! its last error).
//!
//! The request: `POST url` with the JSON body
//! `{"id", "type", "created", "data"}` and the headers
//! `Webhook-Id` (the event id, for deduplication), `Webhook-Timestamp`
//! (unix seconds of this attempt) and `Webhook-Signature`:
//! `v1=` and the hex HMAC-SHA256, under the endpoint's secret, of
//! `"{timestamp}.{body}"`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::db::webhook_outbox::{self, Delivery, NewDelivery};
use crate::db::{now_millis, Db, DbConnection, DbError};
use crate::outbox::{self, Failure, Outbox};

pub use crate::outbox::GIVEN_UP;

/// An account event: its type (one of `config::EVENT_TYPES`) and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub user_id: i64,
    /// More about it (`email`, `provider`, `method`, …).
    pub data: Value,
}

impl Event {
    pub fn new(kind: &'static str, user_id: i64, data: Value) -> Event {
        Event {
            kind,
            user_id,
            data,
        }
    }

    /// The same event for `user_id`.
    pub fn with_user(mut self, user_id: i64) -> Event {
        self.user_id = user_id;
        self
    }
}

/// Whether any endpoint wants events of `kind` (else [`emit`] writes
/// nothing, and the change it goes with needs no transaction for it).
pub fn wanted(config: &Config, kind: &str) -> bool {
    config.webhooks.endpoints.iter().any(|e| e.wants(kind))
}

/// Queues `event` for every endpoint that wants it, on the connection of
/// the change's transaction.
pub fn emit(
    conn: &mut DbConnection,
    config: &Config,
    event: Event,
    now_ms: i64,
) -> Result<(), DbError> {
    let endpoints: Vec<&str> = config
        .webhooks
        .endpoints
        .iter()
        .filter(|e| e.wants(event.kind))
        .map(|e| e.url.as_str())
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut data = match event.data {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    data.insert("user_id".into(), json!(event.user_id));
    let body = json!({
        "id": id,
        "type": event.kind,
        "created": now_ms as f64 / 1000.0,
        "data": data,
    })
    .to_string();
    for endpoint in endpoints {
        webhook_outbox::insert(
            conn,
            &NewDelivery {
                event_id: &id,
                event_type: event.kind,
                endpoint,
                body: &body,
                created_at: now_ms,
                next_attempt_at: now_ms,
            },
        )?;
    }
    Ok(())
}

/// `v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| {
            <Hmac<Sha256> as KeyInit>::new_from_slice(b"").unwrap_or_else(|_| unreachable!())
        });
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!("v1={}", crate::app::security::secrets::hex(&bytes))
}

/// Wakes the deliverer after events were queued (see [`outbox::Waker`]).
pub type Dispatcher = outbox::Waker;

/// `webhook_outbox` and the HTTP client that POSTs it.
struct WebhookOutbox<'a> {
    config: &'a Config,
    http: &'a reqwest::Client,
}

impl Outbox for WebhookOutbox<'_> {
    type Row = Delivery;
    const NAME: &'static str = "webhook";

    fn backoff_secs(&self) -> u64 {
        self.config.webhooks.retry_backoff_secs
    }

    fn max_attempts(&self) -> u32 {
        self.config.webhooks.retry_max_attempts
    }

    fn attempt_limit(&self) -> Duration {
        // The client's own timeout answers first.
        Duration::from_secs(self.config.webhooks.timeout_secs)
            .saturating_add(Duration::from_secs(5))
    }

    fn id(row: &Delivery) -> i64 {
        row.id
    }

    fn attempts(row: &Delivery) -> i32 {
        row.attempts
    }

    fn describe(row: &Delivery) -> String {
        format!(" ({} {})", row.event_type, row.event_id)
    }

    crate::outbox::table_queries!(webhook_outbox);

    /// Delivered events are kept (with when and after how many attempts).
    fn purge_sent(_: &mut DbConnection, _: i64) -> Result<usize, DbError> {
        Ok(0)
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), Failure> {
        // The endpoint's current secret (an endpoint removed from the
        // configuration gets nothing more).
        let Some(endpoint) = self
            .config
            .webhooks
            .endpoints
            .iter()
            .find(|e| e.url == delivery.endpoint)
        else {
            return Err(Failure {
                message: "endpoint no longer configured".into(),
                permanent: true,
            });
        };
        let timestamp = now_millis().div_euclid(1000);
        let result = self
            .http
            .post(&delivery.endpoint)
            .header("Content-Type", "application/json")
            .header("Webhook-Id", &delivery.event_id)
            .header("Webhook-Timestamp", timestamp.to_string())
            .header(
                "Webhook-Signature",
                signature(endpoint.secret(), timestamp, &delivery.body),
            )
            .body(delivery.body.clone())
            .send()
            .await;
        let message = match result {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => format!("answered {}", response.status()),
            Err(e) => format!("not delivered: {e}"),
        };
        Err(Failure {
            message,
            permanent: false,
        })
    }

    fn count(delivered: bool) {
        crate::metrics::webhook(delivered);
    }
}

/// Starts the deliverer (when endpoints are configured); it stops when
/// `shutdown` completes, after the request it is making.
pub fn spawn_deliverer(
    db: Db,
    config: Arc<Config>,
    dispatcher: Dispatcher,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Option<JoinHandle<()>> {
    if config.webhooks.endpoints.is_empty() {
        return None;
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.webhooks.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("allauth-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .ok()?;
    Some(tokio::spawn(async move {
        let webhooks = WebhookOutbox {
            config: &config,
            http: &http,
        };
        outbox::run(db, &webhooks, dispatcher, shutdown).await;
    }))
}
