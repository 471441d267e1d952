//! Handlers of the `Authentication: WebAuthn: Signup` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn webauthn_signup_options(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnSignupOptionsHeaders>,
) -> Result<Reply<types::WebAuthnCreationOptionsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_signup_complete(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnSignupCompleteHeaders>,
    _body: JsonBody<types::CompletePasskeySignupInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_signup_start(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnSignupStartHeaders>,
    _body: JsonBody<types::PasskeySignupInput>,
) -> Result<Reply<types::AuthenticationResponse, 401u16>, ApiError> {
    not_built(rqctx, client).await
}
