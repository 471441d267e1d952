//! Handlers of the `Authentication: Password Reset` operations.

use allauth_api::api::{
    PasswordResetConfirmHeaders, PasswordResetRequestHeaders, PasswordResetViewHeaders,
};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::account::password_reset::{self, Requested, ResetInput};
use crate::http::{invalid_input, reply, AuthOutcome, Call, Handled};

/// `POST auth/password/request`: mails a reset link (200) or a code (401
/// with `password_reset_by_code` pending), the same for unknown addresses.
pub async fn password_reset_request(
    call: Call<'_>,
    _headers: HeaderParams<PasswordResetRequestHeaders>,
    body: JsonBody<types::RequestPasswordResetInput>,
) -> Handled<Reply<types::StatusOkResponse>> {
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = password_reset::request(&deps, &mut call.session, &input.email).await;
    let outcome = result.map(|requested| match requested {
        Requested::Link => AuthOutcome::Ok,
        Requested::Code => AuthOutcome::Session,
    });
    Ok(call.finish_auth(outcome).await)
}

/// `GET auth/password/reset`: whose password the key (or code) resets.
pub async fn password_reset_view(
    mut call: Call<'_>,
    headers: HeaderParams<PasswordResetViewHeaders>,
) -> Handled<Reply<types::PasswordResetInfoResponse>> {
    // A missing header is an empty key ("required"), as in allauth.
    let key = headers
        .into_inner()
        .map(|h| h.x_password_reset_key)
        .unwrap_or_default();
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = password_reset::view(&deps, &mut call.session, &key).await;
    let body = result.and_then(|user| {
        Ok(types::PasswordResetInfoResponse {
            data: types::PasswordResetInfo {
                user: reply::user(&user),
            },
            status: reply::status(200)?,
        })
    });
    Ok(match body {
        Ok(body) => call.finish(Ok(body)).await,
        Err(error) => call.finish_auth(Err(error)).await,
    })
}

/// `POST auth/password/reset`: sets the new password; 200 logged in with
/// `login_on_password_reset`, else 401.
pub async fn password_reset_confirm(
    mut call: Call<'_>,
    _headers: HeaderParams<PasswordResetConfirmHeaders>,
    body: JsonBody<types::ResetPasswordInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let input = body
        .into_inner()
        .map(|input| ResetInput {
            key: input.key,
            password: input.password.into(),
        })
        .map_err(invalid_input);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = password_reset::confirm(&deps, &mut call.session, input).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}
