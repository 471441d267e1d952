//! Handlers of the `Account: Email` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn email_list(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailListHeaders>,
) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn email_verification_request(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailVerificationRequestHeaders>,
    _body: JsonBody<types::EmailAddressInput>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn email_add(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailAddHeaders>,
    _body: JsonBody<types::EmailAddressInput>,
) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn email_remove(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailRemoveHeaders>,
    _body: JsonBody<types::EmailAddressInput>,
) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn email_mark_primary(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailMarkPrimaryHeaders>,
    _body: JsonBody<types::MarkPrimaryEmailInput>,
) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
    not_built(rqctx, client).await
}
