//! Handlers of the `Authentication: Providers` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn provider_redirect_start(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::BrowserClient>,
    _headers: HeaderParams<ProviderRedirectStartHeaders>,
    _body: FormBody<types::ProviderRedirectInput>,
) -> Result<Redirect, ApiError> {
    not_built(rqctx, client).await
}

pub async fn provider_token_authenticate(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<ProviderTokenAuthenticateHeaders>,
    _body: JsonBody<types::ProviderTokenInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn provider_signup_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<ProviderSignupViewHeaders>,
) -> Result<Reply<types::ProviderSignupInfoResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn provider_signup_complete(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<ProviderSignupCompleteHeaders>,
    _body: JsonBody<types::ProviderSignupInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}
