//! Handlers of the `Sessions` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn user_session_list(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<UserSessionListHeaders>,
) -> Result<Reply<types::SessionsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn user_session_delete(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<UserSessionDeleteHeaders>,
    _body: JsonBody<types::EndSessionsInput>,
) -> Result<Reply<types::SessionsResponse>, ApiError> {
    not_built(rqctx, client).await
}
