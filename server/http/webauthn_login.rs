//! Handlers of the `Authentication: WebAuthn: Login` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn webauthn_authenticate_options(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnAuthenticateOptionsHeaders>,
) -> Result<Reply<types::WebAuthnRequestOptionsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_authenticate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnAuthenticateHeaders>,
    _body: JsonBody<types::WebAuthnAssertionInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_reauthenticate_options(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnReauthenticateOptionsHeaders>,
) -> Result<Reply<types::WebAuthnRequestOptionsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_reauthenticate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnReauthenticateHeaders>,
    _body: JsonBody<types::WebAuthnAssertionInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_login_options(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnLoginOptionsHeaders>,
) -> Result<Reply<types::WebAuthnRequestOptionsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_login(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnLoginHeaders>,
    _body: JsonBody<types::WebAuthnAssertionInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}
