//! Handlers of the `Authentication: WebAuthn: Login` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn webauthn_authenticate_options(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticateOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnRequestOptionsResponse>> {
    not_built(call).await
}

pub async fn webauthn_authenticate(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticateHeaders>,
    _body: JsonBody<types::WebAuthnAssertionInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}

pub async fn webauthn_reauthenticate_options(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnReauthenticateOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnRequestOptionsResponse>> {
    not_built(call).await
}

pub async fn webauthn_reauthenticate(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnReauthenticateHeaders>,
    _body: JsonBody<types::WebAuthnAssertionInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}

pub async fn webauthn_login_options(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnLoginOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnRequestOptionsResponse>> {
    not_built(call).await
}

pub async fn webauthn_login(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnLoginHeaders>,
    _body: JsonBody<types::WebAuthnAssertionInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}
