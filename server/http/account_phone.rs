//! Handlers of the `Account: Phone` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn phone_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PhoneViewHeaders>,
) -> Result<Reply<types::PhoneNumbersResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn phone_change(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PhoneChangeHeaders>,
    _body: JsonBody<types::ChangePhoneInput>,
) -> Result<Reply<types::PhoneNumberChangeResponse, 202u16>, ApiError> {
    not_built(rqctx, client).await
}
