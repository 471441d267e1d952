//! Handlers of the `Authentication: Account` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::app::login::LoginRequest;
use crate::app::signup::SignupRequest;
use crate::http::{not_built, reply, AuthOutcome, ServerContext};

pub async fn login_password(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<LoginPasswordHeaders>,
    body: JsonBody<types::LoginInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    let input = read_input!(call, body);
    let request = LoginRequest {
        email: input.email.map(|e| e.0),
        username: input.username.map(|u| u.0),
        password: input.password.0,
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::login::login_password(&deps, &mut call.session, request).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

pub async fn signup_create(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SignupCreateHeaders>,
    body: JsonBody<types::SignupInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    let input = read_input!(call, body);
    let request = SignupRequest {
        email: input.email.map(|e| e.0),
        username: input.username.map(|u| u.0),
        password: input.password.map(|p| p.0),
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::signup::signup_create(&deps, &mut call.session, request).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

pub async fn email_verification_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    headers: HeaderParams<EmailVerificationViewHeaders>,
) -> Result<Reply<types::EmailVerificationInfoResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    // A missing header is an empty key: "required", and counted as a
    // wrong code, as in allauth.
    let key = headers
        .into_inner()
        .map(|h| h.x_email_verification_key)
        .unwrap_or_default();
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::email_verification::view(&deps, &mut call.session, &key).await;
    let body = result.and_then(|info| {
        Ok(types::EmailVerificationInfoResponse {
            data: types::EmailVerificationInfo {
                email: types::Email(info.email),
                user: reply::user(&info.user),
            },
            meta: types::EmailVerificationInfoMeta {
                is_authenticating: info.is_authenticating,
            },
            status: reply::status(200)?,
        })
    });
    Ok(match body {
        Ok(body) => call.finish(Ok(body)).await,
        Err(error) => call.finish_auth(Err(error)).await,
    })
}

pub async fn email_verification_confirm(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailVerificationConfirmHeaders>,
    body: JsonBody<types::VerifyEmailInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    let input = read_input!(call, body);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        crate::app::email_verification::confirm(&deps, &mut call.session, &input.key).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

pub async fn email_verification_resend(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailVerificationResendHeaders>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::email_verification::resend(&deps, &mut call.session).await;
    Ok(call.finish_auth(result.map(|()| AuthOutcome::Ok)).await)
}

pub async fn phone_verification_confirm(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PhoneVerificationConfirmHeaders>,
    _body: JsonBody<types::VerifyPhoneInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn phone_verification_resend(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PhoneVerificationResendHeaders>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn reauthenticate_password(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<ReauthenticatePasswordHeaders>,
    body: JsonBody<types::ReauthenticateInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    let mut call = start_call!(rqctx, client);
    // allauth checks the login before anything else: 401 for anonymous callers.
    if !call.session.is_authenticated() {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    }
    let input = read_input!(call, body);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        crate::app::login::reauthenticate_password(&deps, &mut call.session, input.password.0)
            .await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}
