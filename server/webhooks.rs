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
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::db::webhook_outbox::{self, Delivery, NewDelivery};
use crate::db::{now_millis, Db, DbConnection, DbError};

/// A given-up delivery's `next_attempt_at`.
pub const GIVEN_UP: i64 = i64::MAX;
/// Rows taken per pass.
const BATCH: i64 = 50;
/// How often the deliverer looks without being woken.
const POLL: Duration = Duration::from_secs(5);
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);

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

/// Wakes the deliverer after events were queued.
#[derive(Debug, Clone, Default)]
pub struct Dispatcher {
    notify: Arc<Notify>,
}

impl Dispatcher {
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

fn retry_delay(config: &Config, previous_attempts: i32) -> Duration {
    let factor = 1u64
        .checked_shl(u32::try_from(previous_attempts).unwrap_or(0).min(40))
        .unwrap_or(u64::MAX);
    Duration::from_secs(config.webhooks.retry_backoff_secs.saturating_mul(factor)).min(MAX_DELAY)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
        tokio::pin!(shutdown);
        loop {
            let pass = deliver_due(&db, &config, &http, shutdown.as_mut()).await;
            if let Err(error) = pass {
                tracing::warn!(%error, "webhook delivery pass failed");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = dispatcher.notify.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }))
}

/// Delivers what is due now; stops early at `shutdown`.
pub async fn deliver_due<S: Future<Output = ()>>(
    db: &Db,
    config: &Config,
    http: &reqwest::Client,
    mut shutdown: std::pin::Pin<&mut S>,
) -> Result<(), DbError> {
    loop {
        let now = now_millis();
        let due = db
            .run(move |conn| webhook_outbox::due(conn, now, BATCH))
            .await?;
        let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= BATCH;
        for delivery in due {
            let stop = tokio::select! {
                biased;
                () = shutdown.as_mut() => true,
                () = std::future::ready(()) => false,
            };
            if stop {
                return Ok(());
            }
            deliver_one(db, config, http, delivery).await?;
        }
        if !full {
            return Ok(());
        }
    }
}

async fn deliver_one(
    db: &Db,
    config: &Config,
    http: &reqwest::Client,
    delivery: Delivery,
) -> Result<(), DbError> {
    let now = now_millis();
    let lease_until = now.saturating_add(millis(Duration::from_secs(
        config.webhooks.timeout_secs + 60,
    )));
    let id = delivery.id;
    if !db
        .run(move |conn| webhook_outbox::claim(conn, id, now, lease_until))
        .await?
    {
        return Ok(());
    }
    // The endpoint's current secret (an endpoint removed from the
    // configuration gets nothing more).
    let Some(endpoint) = config
        .webhooks
        .endpoints
        .iter()
        .find(|e| e.url == delivery.endpoint)
    else {
        db.run(move |conn| {
            webhook_outbox::mark_failed(conn, id, GIVEN_UP, "endpoint no longer configured")
        })
        .await?;
        return Ok(());
    };
    let timestamp = now.div_euclid(1000);
    let result = http
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
    let error = match result {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("answered {}", response.status())),
        Err(e) => Some(format!("not delivered: {e}")),
    };
    match error {
        None => {
            let at = now_millis();
            db.run(move |conn| webhook_outbox::mark_delivered(conn, id, at))
                .await?;
            crate::metrics::webhook(true);
            tracing::info!(event_id = %delivery.event_id, event = %delivery.event_type, "webhook delivered");
        }
        Some(error) => {
            crate::metrics::webhook(false);
            let attempts = delivery.attempts.saturating_add(1);
            let give_up =
                u32::try_from(attempts).unwrap_or(u32::MAX) >= config.webhooks.retry_max_attempts;
            let next = if give_up {
                GIVEN_UP
            } else {
                now_millis().saturating_add(millis(retry_delay(config, delivery.attempts)))
            };
            let message: String = error.chars().take(500).collect();
            tracing::warn!(event_id = %delivery.event_id, attempts, give_up, error = %message, "webhook not delivered");
            db.run(move |conn| webhook_outbox::mark_failed(conn, id, next, &message))
                .await?;
        }
    }
    Ok(())
}
