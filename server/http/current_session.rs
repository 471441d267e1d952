//! Handlers of the `Authentication: Current Session` operations.

use allauth_api::api::{SessionLogoutHeaders, SessionViewHeaders};
use allauth_api::runtime::{ApiError, ClientParam, HeaderParams, Reply};
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{AuthOutcome, Call, ServerContext};

/// `GET auth/session`: 200 with the user, or 401 with what may come next.
pub async fn session_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SessionViewHeaders>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    let call = match Call::start(&rqctx, &client).await {
        Ok(call) => call,
        Err(reply) => return Ok(reply),
    };
    Ok(call.finish_auth(Ok(AuthOutcome::Session)).await)
}

/// `DELETE auth/session`: logs out; always the anonymous 401, as allauth.
pub async fn session_logout(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SessionLogoutHeaders>,
) -> Result<Reply<types::AuthenticationResponse, 401u16>, ApiError> {
    let mut call = match Call::start(&rqctx, &client).await {
        Ok(call) => call,
        Err(reply) => return Ok(reply),
    };
    call.session.logout();
    Ok(call.finish_auth(Ok(AuthOutcome::Session)).await)
}
