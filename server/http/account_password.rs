//! Handlers of the `Account: Password` operations.

use allauth_api::api::PasswordChangeHeaders;
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::account::password_change::{self, ChangeInput};
use crate::http::{invalid_input, AuthOutcome, Call, Handled};

/// `POST account/password/change`: 200 with the session (under a new key),
/// 401 when not logged in or when `logout_on_password_change` ended it.
pub async fn password_change(
    mut call: Call<'_>,
    _headers: HeaderParams<PasswordChangeHeaders>,
    body: JsonBody<types::ChangePasswordInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let input = body
        .into_inner()
        .map(|input| ChangeInput {
            current_password: input.current_password.map(String::from),
            new_password: input.new_password.into(),
        })
        .map_err(invalid_input);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = password_change::change(&deps, &mut call.session, input).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}
