//! Handlers of the `Tokens` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn token_refresh(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::AppClient>,
    _body: JsonBody<types::RefreshTokenInput>,
) -> Result<Reply<types::RefreshTokenResponse>, ApiError> {
    not_built(rqctx, client).await
}
