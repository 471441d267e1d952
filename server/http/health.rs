//! `/_allauth/health/live` and `/_allauth/health/ready`, for load balancers
//! and orchestrators; outside the API document (see `docs/operations.md`).
//!
//! * `live`: 200 `{"status": "ok"}` while the process serves requests.
//! * `ready`: 200 `{"status": "ok", "checks": {…}}` when the database
//!   answers, its migrations are at this build's head, and no mail is stuck
//!   in the outbox (due more than `app::health::STUCK_AFTER_MS` ago and not taken: the
//!   sender is not running). Otherwise 503 with `"status": "unavailable"`
//!   and each check's finding. An SMTP outage does not make a server
//!   unready: failed mail waits for its next attempt, which is not overdue.

use allauth_api::runtime::{ApiError, SpecDocumentParam};
use dropshot::{Body, RequestContext};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::app::health;
use crate::http::{response_headers, ServerContext};

pub async fn live(
    rqctx: RequestContext<ServerContext>,
    segment: SpecDocumentParam,
) -> Result<Response<Body>, ApiError> {
    if segment.name != "health" {
        return Ok(answer(&rqctx, StatusCode::NOT_FOUND, not_found()));
    }
    Ok(answer(&rqctx, StatusCode::OK, json!({"status": "ok"})))
}

pub async fn ready(
    rqctx: RequestContext<ServerContext>,
    segment: SpecDocumentParam,
) -> Result<Response<Body>, ApiError> {
    if segment.name != "health" {
        return Ok(answer(&rqctx, StatusCode::NOT_FOUND, not_found()));
    }
    let mut checks = Map::new();
    let ok = match health::readiness(&rqctx.context().db, crate::app::now_ms()).await {
        Ok(found) => {
            let count = |n: i64, what: &str| {
                if n == 0 {
                    json!("ok")
                } else {
                    json!(format!("{n} {what}"))
                }
            };
            let pending = i64::try_from(found.pending_migrations).unwrap_or(i64::MAX);
            checks.insert("database".into(), json!("ok"));
            checks.insert("migrations".into(), count(pending, "not applied"));
            checks.insert("mail_outbox".into(), count(found.overdue_mail, "overdue"));
            found.is_ready()
        }
        Err(error) => {
            // The reason stays in the log: it may name hosts or users.
            tracing::warn!(%error, "readiness: database check failed");
            checks.insert("database".into(), json!("unreachable"));
            false
        }
    };
    let (status, word) = if ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    Ok(answer(
        &rqctx,
        status,
        json!({"status": word, "checks": Value::Object(checks)}),
    ))
}

fn not_found() -> Value {
    json!({"status": 404, "errors": [{"code": "not_found", "message": "There is nothing here."}]})
}

fn answer(
    rqctx: &RequestContext<ServerContext>,
    status: StatusCode,
    body: Value,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .extend(response_headers(rqctx.context(), rqctx.request.headers()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
