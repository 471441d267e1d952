//! Handlers of the `Authentication: Current Session` operations.

use allauth_api::api::{SessionLogoutHeaders, SessionViewHeaders};
use allauth_api::runtime::{ApiError, ClientParam, HeaderParams, Reply};
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{AuthOutcome, ServerContext};

/// `GET auth/session`: 200 with the user, or 401 with what may come next.
pub async fn session_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SessionViewHeaders>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    let call = start_call!(rqctx, client);
    Ok(call.finish_auth(Ok(AuthOutcome::Session)).await)
}

/// `DELETE auth/session`: logs out; always the anonymous 401, as allauth.
pub async fn session_logout(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SessionLogoutHeaders>,
) -> Result<Reply<types::AuthenticationResponse, 401u16>, ApiError> {
    let mut call = start_call!(rqctx, client);
    call.session.logout();
    Ok(call.finish_auth(Ok(AuthOutcome::Session)).await)
}
