//! Handlers of the `Authentication: Password Reset` operations.

use allauth_api::api::{
    PasswordResetConfirmHeaders, PasswordResetRequestHeaders, PasswordResetViewHeaders,
};
use allauth_api::runtime::{ApiError, ClientParam, HeaderParams, JsonBody, Reply};
use allauth_api::types;
use dropshot::RequestContext;

use crate::app::password_reset::{self, Requested, ResetInput};
use crate::http::{invalid_input, reply, AuthOutcome, ServerContext};

/// `POST auth/password/request`: mails a reset link (200) or a code (401
/// with `password_reset_by_code` pending), the same for unknown addresses.
pub async fn password_reset_request(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PasswordResetRequestHeaders>,
    body: JsonBody<types::RequestPasswordResetInput>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    let input = read_input!(call, body);
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
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PasswordResetViewHeaders>,
) -> Result<Reply<types::PasswordResetInfoResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    // A missing header is an empty key ("required"), as in allauth.
    let key = rqctx
        .request
        .headers()
        .get("x-password-reset-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
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
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PasswordResetConfirmHeaders>,
    body: JsonBody<types::ResetPasswordInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
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
