//! Handlers of the `Account: Phone` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::app::account::phones::{self, Changer};
use crate::app::mfa::manage::Managed;
use crate::app::Error;
use crate::http::{AuthOutcome, Call, Handled};

/// `GET account/phone`: the signed-in user's number; 401 otherwise.
pub async fn phone_view(
    call: Call<'_>,
    _headers: HeaderParams<PhoneViewHeaders>,
) -> Handled<Reply<types::PhoneNumbersResponse>> {
    let Some(user_id) = call.session.user.as_ref().map(|u| u.id) else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = phones::view(&deps, user_id).await;
    Ok(call
        .finish_auth(result.map(AuthOutcome::PhoneNumbers))
        .await)
}

/// `POST account/phone`: a code to the new number (202). For the
/// signed-in user, or for a signup waiting in `verify_phone` (409 when
/// neither). `change_phone` is counted for that user before the input is
/// read, as in allauth.
pub async fn phone_change(
    call: Call<'_>,
    _headers: HeaderParams<PhoneChangeHeaders>,
    body: JsonBody<types::ChangePhoneInput>,
) -> Handled<Reply<types::PhoneNumberChangeResponse, 202u16>> {
    let changer = {
        let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
        phones::changer(&deps, &call.session).await
    };
    let changer = match changer {
        Ok(Some(changer)) => changer,
        Ok(None) => return Ok(call.finish_auth(Err(Error::Conflict)).await),
        Err(error) => return Ok(call.finish_auth(Err(error)).await),
    };
    let user_id = match changer {
        Changer::SignedIn(id) | Changer::Stage(id) => id,
    };
    let limited = {
        let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
        deps.consume_or_429("change_phone", Some(user_id), None)
            .await
    };
    if let Err(error) = limited {
        return Ok(call.finish_auth(Err(error)).await);
    }
    let (mut call, input) = call.input(body).await?;
    let user = call.session.user.clone();
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let phone = String::from(input.phone);
    let result = phones::change(
        &deps,
        &mut call.session,
        user.as_ref(),
        changer,
        Some(&phone),
    )
    .await;
    let outcome = result.map(|managed| match managed {
        Managed::Done(phone) => AuthOutcome::PhoneChanging(phone),
        Managed::ReauthenticationRequired(flows) => AuthOutcome::ReauthenticationRequired(flows),
    });
    Ok(call.finish_auth(outcome).await)
}
