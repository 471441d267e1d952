//! Handlers of the `Sessions` operations (allauth's user sessions).

use allauth_api::api::{UserSessionDeleteHeaders, UserSessionListHeaders};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::sessions::usersessions;
use crate::http::{AuthOutcome, Call, Handled};

/// `GET auth/sessions`: the user's sessions; 401 when not logged in.
pub async fn user_session_list(
    call: Call<'_>,
    _headers: HeaderParams<UserSessionListHeaders>,
) -> Handled<Reply<types::SessionsResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let track = call.config.usersessions.track_activity;
    let result = usersessions::list(
        &call.ctx.db,
        user.id,
        call.session.row_id,
        call.now_ms,
        track,
    )
    .await;
    Ok(call.finish_auth(result.map(AuthOutcome::Sessions)).await)
}

/// `DELETE auth/sessions`: ends the given sessions; the remaining list, or
/// the anonymous 401 when the current session was among them.
pub async fn user_session_delete(
    call: Call<'_>,
    _headers: HeaderParams<UserSessionDeleteHeaders>,
    body: JsonBody<types::EndSessionsInput>,
) -> Handled<Reply<types::SessionsResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let (mut call, input) = call.input(body).await?;
    let current = call.session.row_id;
    match usersessions::end(&call.ctx.db, user.id, input.sessions, current, call.now_ms).await {
        Err(error) => Ok(call.finish_auth(Err(error)).await),
        Ok(true) => {
            // The current row is already gone; forget it and log out.
            call.session.row_id = None;
            call.session.logout();
            Ok(call.finish_auth(Ok(AuthOutcome::Session)).await)
        }
        Ok(false) => {
            let track = call.config.usersessions.track_activity;
            let result =
                usersessions::list(&call.ctx.db, user.id, current, call.now_ms, track).await;
            Ok(call.finish_auth(result.map(AuthOutcome::Sessions)).await)
        }
    }
}
