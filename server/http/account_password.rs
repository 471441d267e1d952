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
    let needs_current = call
        .session
        .user
        .as_ref()
        .is_some_and(|u| u.has_usable_password);
    let input = match body.read_form() {
        Ok(input) => Ok(ChangeInput {
            current_password: input.current_password.map(String::from),
            new_password: input.new_password.into(),
        }),
        // Every field's error at once, in field order: the current
        // password is required too when the user has one.
        Err((errors, raw)) => {
            let current = raw
                .as_ref()
                .and_then(|raw| raw.get("current_password"))
                .and_then(|v| v.as_str())
                .is_some_and(|v| !v.is_empty());
            let mut fields = errors;
            let named = fields
                .iter()
                .any(|e| e.param.as_deref() == Some("current_password"));
            if needs_current && !current && !named {
                fields.insert(
                    0,
                    allauth_api::runtime::ErrorItem::new(
                        "required",
                        Some("current_password"),
                        "This field is required.",
                    ),
                );
            }
            Err(invalid_input(fields))
        }
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = password_change::change(&deps, &mut call.session, input).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}
