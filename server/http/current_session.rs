//! Handlers of the `Authentication: Current Session` operations.

use allauth_api::api::{SessionLogoutHeaders, SessionViewHeaders};
use allauth_api::runtime::{HeaderParams, Reply};
use allauth_api::types;

use crate::http::{AuthOutcome, Call, Handled};

/// `GET auth/session`: 200 with the user, or 401 with what may come next.
pub async fn session_view(
    call: Call<'_>,
    _headers: HeaderParams<SessionViewHeaders>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    Ok(call.finish_auth(Ok(AuthOutcome::Session)).await)
}

/// `DELETE auth/session`: logs out; always the anonymous 401, as allauth.
pub async fn session_logout(
    mut call: Call<'_>,
    _headers: HeaderParams<SessionLogoutHeaders>,
) -> Handled<Reply<types::AuthenticationResponse, 401u16>> {
    if let Some(user_id) = call.session.user.as_ref().map(|u| u.id) {
        let (config, now) = (call.ctx.config.clone(), call.now_ms);
        let event = crate::webhooks::Event::new("user.logged_out", user_id, serde_json::json!({}));
        let emitted = call
            .ctx
            .db
            .transaction(move |conn| crate::webhooks::emit(conn, &config, event, now))
            .await;
        if let Err(error) = emitted {
            return Ok(call.finish_auth(Err(error.into())).await);
        }
    }
    call.session.logout();
    Ok(call.finish_auth(Ok(AuthOutcome::Session)).await)
}
