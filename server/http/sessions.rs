//! Handlers of the `Sessions` operations (allauth's user sessions).

use allauth_api::api::{UserSessionDeleteHeaders, UserSessionListHeaders};
use allauth_api::runtime::{ErrorItem, HeaderParams, Input as _, JsonBody, Reply};
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
    let mut call = call;
    let input = match body.read() {
        Ok(input) => input,
        Err(errors) => return Ok(call.finish_auth(Err(session_list_errors(errors))).await),
    };
    let current = call.session.row_id;
    match usersessions::end(
        &call.ctx.db,
        call.config,
        user.id,
        input.sessions,
        current,
        call.now_ms,
    )
    .await
    {
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

/// The body's errors as Django's model multiple-choice field names them,
/// all with param `sessions`: `invalid_list` when it is not a list,
/// `invalid_pk_value` for an entry that is not a session id.
fn session_list_errors(errors: Vec<ErrorItem>) -> crate::app::Error {
    use crate::app::FieldError;
    let fields = errors
        .into_iter()
        .map(|e| match e.param.as_deref() {
            Some("sessions") if e.code != "required" => FieldError::new(
                "invalid_list",
                Some("sessions"),
                "Enter a list of session ids.",
            ),
            Some(p) if p.starts_with("sessions[") => FieldError::new(
                "invalid_pk_value",
                Some("sessions"),
                "A session id must be a whole number.",
            ),
            _ => crate::http::reply::field_error(e),
        })
        .collect();
    crate::app::Error::Invalid(fields)
}
