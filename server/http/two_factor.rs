//! Handlers of the `Authentication: 2FA` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn mfa_authenticate(
    call: Call<'_>,
    _headers: HeaderParams<MfaAuthenticateHeaders>,
    _body: JsonBody<types::MfaAuthenticateInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}

pub async fn mfa_reauthenticate(
    call: Call<'_>,
    _headers: HeaderParams<MfaReauthenticateHeaders>,
    _body: JsonBody<types::MfaAuthenticateInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}

pub async fn mfa_trust(
    call: Call<'_>,
    _headers: HeaderParams<MfaTrustHeaders>,
    _body: JsonBody<types::MfaTrustInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}
