//! Handlers of the `Account: 2FA` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn authenticator_list(
    call: Call<'_>,
    _headers: HeaderParams<AuthenticatorListHeaders>,
) -> Handled<Reply<types::AuthenticatorsResponse>> {
    not_built(call).await
}

pub async fn totp_view(
    call: Call<'_>,
    _headers: HeaderParams<TotpViewHeaders>,
) -> Handled<Reply<types::TotpAuthenticatorResponse>> {
    not_built(call).await
}

pub async fn totp_activate(
    call: Call<'_>,
    _headers: HeaderParams<TotpActivateHeaders>,
    _body: JsonBody<types::ActivateTotpInput>,
) -> Handled<Reply<types::TotpAuthenticatorResponse>> {
    not_built(call).await
}

pub async fn totp_deactivate(
    call: Call<'_>,
    _headers: HeaderParams<TotpDeactivateHeaders>,
) -> Handled<Reply<types::StatusOkResponse>> {
    not_built(call).await
}

pub async fn recovery_codes_view(
    call: Call<'_>,
    _headers: HeaderParams<RecoveryCodesViewHeaders>,
) -> Handled<Reply<types::RecoveryCodesResponse>> {
    not_built(call).await
}

pub async fn recovery_codes_regenerate(
    call: Call<'_>,
    _headers: HeaderParams<RecoveryCodesRegenerateHeaders>,
) -> Handled<Reply<types::RecoveryCodesResponse>> {
    not_built(call).await
}
