//! `/_allauth/health/live` and `/_allauth/health/ready`, for load balancers
//! and orchestrators; outside the API document (see `docs/operations.md`).
//!
//! * `live`: 200 `{"status": "ok"}` while the process serves requests.
//! * `ready`: 200 `{"status": "ok", "checks": {…}}` when the database
//!   answers, its migrations are at this build's head, and no mail is stuck
//!   in the outbox (due more than [`STUCK_AFTER_MS`] ago and not taken: the
//!   sender is not running). Otherwise 503 with `"status": "unavailable"`
//!   and each check's finding. An SMTP outage does not make a server
//!   unready: failed mail waits for its next attempt, which is not overdue.

use allauth_api::runtime::{ApiError, SpecDocumentParam};
use dropshot::{Body, RequestContext};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::db::{self, mail_outbox};
use crate::http::{response_headers, ServerContext};

/// How long a due mail may wait before the outbox counts as stuck.
pub const STUCK_AFTER_MS: i64 = 15 * 60 * 1000;

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
    let ctx = rqctx.context();
    let before = db::now_millis() - STUCK_AFTER_MS;
    let findings = ctx
        .db
        .run(move |conn| {
            let pending = db::pending_migrations(conn)?;
            let overdue = mail_outbox::overdue(conn, before)?;
            Ok((pending, overdue))
        })
        .await;
    let mut checks = Map::new();
    let ok = match findings {
        Ok((pending, overdue)) => {
            checks.insert("database".into(), json!("ok"));
            checks.insert(
                "migrations".into(),
                if pending == 0 {
                    json!("ok")
                } else {
                    json!(format!("{pending} not applied"))
                },
            );
            checks.insert(
                "mail_outbox".into(),
                if overdue == 0 {
                    json!("ok")
                } else {
                    json!(format!("{overdue} overdue"))
                },
            );
            pending == 0 && overdue == 0
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
