//! Handlers of the `Authentication: Login By Code` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn login_code_request(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<LoginCodeRequestHeaders>,
    _body: JsonBody<types::RequestLoginCodeInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn login_code_confirm(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<LoginCodeConfirmHeaders>,
    _body: JsonBody<types::ConfirmLoginCodeInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn login_code_resend(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<LoginCodeResendHeaders>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}
