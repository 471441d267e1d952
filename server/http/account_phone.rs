//! Handlers of the `Account: Phone` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{not_built, Call, Handled};

pub async fn phone_view(
    call: Call<'_>,
    _headers: HeaderParams<PhoneViewHeaders>,
) -> Handled<Reply<types::PhoneNumbersResponse>> {
    not_built(call).await
}

pub async fn phone_change(
    call: Call<'_>,
    _headers: HeaderParams<PhoneChangeHeaders>,
    _body: JsonBody<types::ChangePhoneInput>,
) -> Handled<Reply<types::PhoneNumberChangeResponse, 202u16>> {
    not_built(call).await
}
