//! Handlers of the `Account: Password` operations.

use allauth_api::api::PasswordChangeHeaders;
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::account::accounts;
use crate::app::account::password_change::{self, ChangeInput};
use crate::http::{AuthOutcome, Call, Handled};

/// The fields of a password change, in the order their errors are reported.
const CHANGE_FIELDS: [&str; 2] = ["current_password", "new_password"];

/// `POST account/password/change`: 200 with the session (under a new key),
/// 401 when not logged in or when `logout_on_password_change` ended it.
pub async fn password_change(
    call: Call<'_>,
    _headers: HeaderParams<PasswordChangeHeaders>,
    body: JsonBody<types::ChangePasswordInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    // allauth checks the login first (401), then the view's rate limit.
    if !call.session.is_authenticated() {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    }
    let call = call.limit("change_password").await?;
    let needs_current = call
        .session
        .user
        .as_ref()
        .is_some_and(|u| u.has_usable_password);
    let (mut call, input) = call
        .form(body, &CHANGE_FIELDS, |raw| {
            let given = raw
                .get("current_password")
                .and_then(|v| v.as_str())
                .is_some_and(|v| !v.trim().is_empty());
            if needs_current && !given {
                vec![accounts::required("current_password")]
            } else {
                Vec::new()
            }
        })
        .await?;
    let input = ChangeInput {
        current_password: input.current_password.map(String::from),
        new_password: input.new_password.into(),
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = password_change::change(&deps, &mut call.session, input).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}
