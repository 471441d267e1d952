//! Handlers of the `Authentication: Login By Code` operations.

use allauth_api::api::{LoginCodeConfirmHeaders, LoginCodeRequestHeaders, LoginCodeResendHeaders};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::account::login_by_code;
use crate::http::{invalid_input, AuthOutcome, Call, Handled};

/// `POST auth/code/request`: mails a code; 401 with `login_by_code` pending
/// (known address or not), or 200 when already logged in.
pub async fn login_code_request(
    call: Call<'_>,
    _headers: HeaderParams<LoginCodeRequestHeaders>,
    body: JsonBody<types::RequestLoginCodeInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let (mut call, input) = call.input(body).await?;
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let email = input.email.map(String::from);
    let phone = input.phone.map(String::from);
    let result = login_by_code::request(&env, &mut call.session, email, phone).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

/// `POST auth/code/confirm`: logs in with the mailed code.
pub async fn login_code_confirm(
    mut call: Call<'_>,
    _headers: HeaderParams<LoginCodeConfirmHeaders>,
    body: JsonBody<types::ConfirmLoginCodeInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let code = body
        .into_inner()
        .map(|input| String::from(input.code))
        .map_err(invalid_input);
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = login_by_code::confirm(&env, &mut call.session, code).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

/// `POST auth/code/resend`: a new code for the pending login.
pub async fn login_code_resend(
    mut call: Call<'_>,
    _headers: HeaderParams<LoginCodeResendHeaders>,
) -> Handled<Reply<types::StatusOkResponse>> {
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = login_by_code::resend(&env, &mut call.session).await;
    Ok(call.finish_auth(result.map(|()| AuthOutcome::Ok)).await)
}
