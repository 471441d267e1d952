//! Handlers of the `Account: Providers` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn provider_account_list(
    call: Call<'_>,
    _headers: HeaderParams<ProviderAccountListHeaders>,
) -> Handled<Reply<types::ProviderAccountsResponse>> {
    not_built(call).await
}

pub async fn provider_account_disconnect(
    call: Call<'_>,
    _headers: HeaderParams<ProviderAccountDisconnectHeaders>,
    _body: JsonBody<types::DisconnectProviderAccountInput>,
) -> Handled<Reply<types::ProviderAccountsResponse>> {
    not_built(call).await
}
