//! Handlers of the `Authentication: Password Reset` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn password_reset_request(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PasswordResetRequestHeaders>,
    _body: JsonBody<types::RequestPasswordResetInput>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn password_reset_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PasswordResetViewHeaders>,
) -> Result<Reply<types::PasswordResetInfoResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn password_reset_confirm(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PasswordResetConfirmHeaders>,
    _body: JsonBody<types::ResetPasswordInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}
