//! A method a path lacks (`PUT auth/login`, `POST config`): admitted like
//! any call, so that a browser's unsafe request without its CSRF token gets
//! the CSRF 403 and a gone app token the 410, then answered as allauth's
//! view answers it. allauth's views that take one input for every method
//! check that input first — the login required, the view's rate limit, the
//! body's fields — and refuse the method only when it passes; the others
//! refuse it at once. Either refusal is 405 with `Allow`.

use allauth_api::api::{OperationId, OPERATIONS};
use allauth_api::runtime::{ApiError, ClientParam, ErrorItem};
use dropshot::{Body, RequestContext};
use http::{Method, Response};

use crate::app::routes;
use crate::http::{invalid_input, AuthOutcome, Call, Early, ServerContext};

/// Answers `rqctx`, a method the path of `operation_id` lacks; `body` is
/// the request body read as that operation's (when it has one).
pub async fn other_method<S>(
    rqctx: RequestContext<ServerContext>,
    client: &ClientParam<S>,
    operation_id: OperationId,
    body: Option<Result<(), Vec<ErrorItem>>>,
) -> Result<Response<Body>, ApiError> {
    let call = match Call::start_as::<S, Early>(&rqctx, client, Some(operation_id)).await {
        Ok(call) => call,
        Err(early) => return Ok(early.into_response()),
    };
    let early = match refuse(call, rqctx.request.method(), operation_id, body).await {
        Ok(early) | Err(early) => early,
    };
    Ok(early.into_response())
}

async fn refuse(
    call: Call<'_>,
    method: &Method,
    operation_id: OperationId,
    body: Option<Result<(), Vec<ErrorItem>>>,
) -> Result<Early, Early> {
    let path = OPERATIONS
        .iter()
        .find(|op| op.id == operation_id)
        .map(|op| op.path)
        .unwrap_or_default();
    let allow = crate::http::cors::allowed_methods(path);
    let Some(body) = body.filter(|_| *method != Method::GET) else {
        return Ok(call.method_not_allowed(&allow));
    };
    let Some(input) = routes::single_input_view(operation_id) else {
        return Ok(call.method_not_allowed(&allow));
    };
    if input.login_required && !call.session.is_authenticated() {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    }
    let call = match input.rate_limit {
        Some(action) => call.limit(action).await?,
        None => call,
    };
    match body {
        Err(errors) => Ok(call.finish_auth(Err(invalid_input(errors))).await),
        Ok(()) => Ok(call.method_not_allowed(&allow)),
    }
}
