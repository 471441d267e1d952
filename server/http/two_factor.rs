//! Handlers of the `Authentication: 2FA` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn mfa_authenticate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<MfaAuthenticateHeaders>,
    _body: JsonBody<types::MfaAuthenticateInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn mfa_reauthenticate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<MfaReauthenticateHeaders>,
    _body: JsonBody<types::MfaAuthenticateInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn mfa_trust(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::BrowserClient>,
    _headers: HeaderParams<MfaTrustHeaders>,
    _body: JsonBody<types::MfaTrustInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}
