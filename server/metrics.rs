//! Prometheus metrics (the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`), served at `GET /metrics` on
//! `server.metrics_bind` only, never on the public bind.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `allauth_http_requests_total` | counter | `operation`, `status` |
//! | `allauth_http_request_duration_seconds` | histogram | `operation` |
//! | `allauth_password_hashes_waiting` | gauge | |
//! | `allauth_password_hash_wait_seconds` | histogram | |
//! | `allauth_password_hash_seconds` | histogram | |
//! | `allauth_rate_limit_refusals_total` | counter | `action` |
//! | `allauth_logins_total` | counter | `method` |
//! | `allauth_mail_sent_total`, `allauth_mail_failures_total` | counter | |
//! | `allauth_sms_sent_total`, `allauth_sms_failures_total` | counter | |
//! | `allauth_webhook_attempts_total` | counter | `outcome` |
//! | `allauth_mail_outbox_pending` | gauge | |
//! | `allauth_mail_outbox_oldest_seconds` | gauge | |
//! | `allauth_sms_outbox_pending` | gauge | |
//! | `allauth_sessions` | gauge | `state` (`authenticated`, `anonymous`) |
//!
//! The outbox and session gauges are read from the database when scraped
//! (one indexed count each), so every instance reports the shared truth.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use dropshot::{
    endpoint, ApiDescription, Body, ConfigDropshot, HttpError, HttpServer, RequestContext,
    ServerBuilder,
};
use http::{Response, StatusCode};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::Db;

/// Latency buckets (seconds), from a session check to a slow hash.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often recorded histogram samples are folded into their buckets when
/// nobody scrapes (the recorder keeps every sample until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use (one per process: the
/// `metrics` facade is global). `None` if another recorder was installed.
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("seconds".into()), &BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            let upkeep = handle.clone();
            let started = std::thread::Builder::new()
                .name("allauth-metrics".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(error) = started {
                tracing::warn!(%error, "metrics: no upkeep thread; histograms grow until scraped");
            }
            Some(handle)
        })
        .as_ref()
}

/// Whether anything records: only with a metrics listener. Without one
/// there is no recorder, the `metrics` calls do nothing, and a request
/// costs no bookkeeping.
fn recording() -> bool {
    matches!(HANDLE.get(), Some(Some(_)))
}

/// The metrics of one operation, registered once (registering builds and
/// hashes the labels).
struct OperationMetrics {
    duration: metrics::Histogram,
    by_status: Vec<(u16, metrics::Counter)>,
}

static OPERATIONS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, OperationMetrics>>,
> = std::sync::LazyLock::new(Default::default);

/// One answered API call.
pub fn request(operation: &str, status: StatusCode, took: Duration) {
    if !recording() {
        return;
    }
    let status = status.as_u16();
    let Ok(mut operations) = OPERATIONS.lock() else {
        return;
    };
    if !operations.contains_key(operation) {
        let duration = histogram!("allauth_http_request_duration_seconds", "operation" => operation.to_owned());
        operations.insert(
            operation.to_owned(),
            OperationMetrics {
                duration,
                by_status: Vec::new(),
            },
        );
    }
    let Some(metrics) = operations.get_mut(operation) else {
        return;
    };
    metrics.duration.record(took.as_secs_f64());
    if let Some((_, counter)) = metrics.by_status.iter().find(|(s, _)| *s == status) {
        counter.increment(1);
        return;
    }
    let counter = counter!("allauth_http_requests_total", "operation" => operation.to_owned(), "status" => status.to_string());
    counter.increment(1);
    metrics.by_status.push((status, counter));
}

/// A hash waits for a permit of the hashing pool (`+1`), or got one (`-1`).
pub fn hash_waiting(delta: f64) {
    gauge!("allauth_password_hashes_waiting").increment(delta);
}

/// How long a hash waited for its permit, and how long it ran.
pub fn hash_done(waited: Duration, ran: Duration) {
    histogram!("allauth_password_hash_wait_seconds").record(waited.as_secs_f64());
    histogram!("allauth_password_hash_seconds").record(ran.as_secs_f64());
}

pub fn rate_limit_refused(action: &str) {
    counter!("allauth_rate_limit_refusals_total", "action" => action.to_owned()).increment(1);
}

/// A completed login, by how it began (`password`, `code`, `socialaccount`,
/// `mfa` for a passkey, `password_reset`).
pub fn login(method: &'static str) {
    counter!("allauth_logins_total", "method" => method).increment(1);
}

/// A webhook delivery attempt, by outcome.
pub fn webhook(delivered: bool) {
    let outcome = if delivered { "delivered" } else { "failed" };
    counter!("allauth_webhook_attempts_total", "outcome" => outcome).increment(1);
}

pub fn mail_sent() {
    counter!("allauth_mail_sent_total").increment(1);
}

pub fn mail_failed() {
    counter!("allauth_mail_failures_total").increment(1);
}

pub fn sms_sent() {
    counter!("allauth_sms_sent_total").increment(1);
}

pub fn sms_failed() {
    counter!("allauth_sms_failures_total").increment(1);
}

/// The exposition text, with the database gauges read now.
pub async fn render(db: &Db) -> String {
    let now = crate::db::now_millis();
    let given_up = crate::email::sender::GIVEN_UP;
    match db
        .run(move |conn| crate::db::mail_outbox::pending_stats(conn, given_up))
        .await
    {
        Ok((pending, oldest_created)) => {
            gauge!("allauth_mail_outbox_pending").set(pending as f64);
            let age = oldest_created.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
            gauge!("allauth_mail_outbox_oldest_seconds").set(age);
        }
        Err(error) => tracing::warn!(%error, "metrics: reading the mail outbox failed"),
    }
    let sms_given_up = crate::sms::sender::GIVEN_UP;
    match db
        .run(move |conn| crate::db::sms_outbox::pending(conn, sms_given_up))
        .await
    {
        Ok(pending) => gauge!("allauth_sms_outbox_pending").set(pending as f64),
        Err(error) => tracing::warn!(%error, "metrics: reading the sms outbox failed"),
    }
    match db
        .run(move |conn| crate::db::sessions::live_counts(conn, now))
        .await
    {
        Ok((all, authenticated)) => {
            gauge!("allauth_sessions", "state" => "authenticated").set(authenticated as f64);
            gauge!("allauth_sessions", "state" => "anonymous").set((all - authenticated) as f64);
        }
        Err(error) => tracing::warn!(%error, "metrics: counting sessions failed"),
    }
    match handle() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// What the metrics listener works with.
pub struct MetricsContext {
    db: Db,
}

#[endpoint { method = GET, path = "/metrics" }]
async fn metrics_endpoint(
    rqctx: RequestContext<MetricsContext>,
) -> Result<Response<Body>, HttpError> {
    let text = render(&rqctx.context().db).await;
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// Starts recording and the metrics listener on `bind`.
pub fn serve(bind: SocketAddr, db: Db) -> Result<HttpServer<MetricsContext>, String> {
    let _ = handle();
    let mut api = ApiDescription::new();
    api.register(metrics_endpoint).map_err(|e| e.to_string())?;
    let config = ConfigDropshot {
        bind_address: bind,
        ..Default::default()
    };
    ServerBuilder::new(
        api,
        MetricsContext { db },
        crate::logging::dropshot_logger(),
    )
    .config(config)
    .start()
    .map_err(|e| e.to_string())
}
