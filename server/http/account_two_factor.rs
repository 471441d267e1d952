//! Handlers of the `Account: 2FA` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn authenticator_list(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<AuthenticatorListHeaders>,
) -> Result<Reply<types::AuthenticatorsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn totp_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<TotpViewHeaders>,
) -> Result<Reply<types::TotpAuthenticatorResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn totp_activate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<TotpActivateHeaders>,
    _body: JsonBody<types::ActivateTotpInput>,
) -> Result<Reply<types::TotpAuthenticatorResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn totp_deactivate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<TotpDeactivateHeaders>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn recovery_codes_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<RecoveryCodesViewHeaders>,
) -> Result<Reply<types::RecoveryCodesResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn recovery_codes_regenerate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<RecoveryCodesRegenerateHeaders>,
) -> Result<Reply<types::RecoveryCodesResponse>, ApiError> {
    not_built(rqctx, client).await
}
