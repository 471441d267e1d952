//! Handlers of the `Authentication: Providers` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn provider_redirect_start(
    call: Call<'_>,
    _headers: HeaderParams<ProviderRedirectStartHeaders>,
    _body: FormBody<types::ProviderRedirectInput>,
) -> Handled<Redirect> {
    not_built(call).await
}

pub async fn provider_token_authenticate(
    call: Call<'_>,
    _headers: HeaderParams<ProviderTokenAuthenticateHeaders>,
    _body: JsonBody<types::ProviderTokenInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}

pub async fn provider_signup_view(
    call: Call<'_>,
    _headers: HeaderParams<ProviderSignupViewHeaders>,
) -> Handled<Reply<types::ProviderSignupInfoResponse>> {
    not_built(call).await
}

pub async fn provider_signup_complete(
    call: Call<'_>,
    _headers: HeaderParams<ProviderSignupCompleteHeaders>,
    _body: JsonBody<types::ProviderSignupInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    not_built(call).await
}
