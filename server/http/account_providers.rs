//! Handlers of the `Account: Providers` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn provider_account_list(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<ProviderAccountListHeaders>,
) -> Result<Reply<types::ProviderAccountsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn provider_account_disconnect(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<ProviderAccountDisconnectHeaders>,
    _body: JsonBody<types::DisconnectProviderAccountInput>,
) -> Result<Reply<types::ProviderAccountsResponse>, ApiError> {
    not_built(rqctx, client).await
}
