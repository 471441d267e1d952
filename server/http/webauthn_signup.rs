//! Handlers of the `Authentication: WebAuthn: Signup` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn webauthn_signup_options(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnSignupOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnCreationOptionsResponse>> {
    not_built(call).await
}

pub async fn webauthn_signup_complete(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnSignupCompleteHeaders>,
    _body: JsonBody<types::CompletePasskeySignupInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}

pub async fn webauthn_signup_start(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnSignupStartHeaders>,
    _body: JsonBody<types::PasskeySignupInput>,
) -> Handled<Reply<types::AuthenticationResponse, 401u16>> {
    not_built(call).await
}
