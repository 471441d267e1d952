//! Handlers of the `Account: WebAuthn` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn webauthn_authenticator_options(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorOptionsHeaders>,
    _query: QueryParams<WebauthnAuthenticatorOptionsQuery>,
) -> Handled<Reply<types::WebAuthnCreationOptionsResponse>> {
    not_built(call).await
}

pub async fn webauthn_authenticator_rename(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorRenameHeaders>,
    _body: JsonBody<types::RenameWebAuthnAuthenticatorInput>,
) -> Handled<Reply<types::WebAuthnAuthenticatorResponse>> {
    not_built(call).await
}

pub async fn webauthn_authenticator_add(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorAddHeaders>,
    _body: JsonBody<types::AddWebAuthnAuthenticatorInput>,
) -> Handled<Reply<types::AddWebAuthnAuthenticatorResponse>> {
    not_built(call).await
}

pub async fn webauthn_authenticator_delete(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorDeleteHeaders>,
    _body: JsonBody<types::DeleteWebAuthnAuthenticatorsInput>,
) -> Handled<Reply<types::StatusOkResponse>> {
    not_built(call).await
}
