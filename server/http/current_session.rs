//! Handlers of the `Authentication: Current Session` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn session_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SessionViewHeaders>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn session_logout(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SessionLogoutHeaders>,
) -> Result<Reply<types::AuthenticationResponse, 401u16>, ApiError> {
    not_built(rqctx, client).await
}
