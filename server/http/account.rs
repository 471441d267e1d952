//! Handlers of the `Authentication: Account` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::app::account::login::LoginRequest;
use crate::app::account::signup::SignupRequest;
use crate::http::{reply, AuthOutcome, Call, Handled};

/// The fields of a login, in the order their errors are reported.
const LOGIN_FIELDS: [&str; 4] = ["username", "email", "phone", "password"];

pub async fn login_password(
    call: Call<'_>,
    _headers: HeaderParams<LoginPasswordHeaders>,
    body: JsonBody<types::LoginInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let call = call.limit("login").await?;
    let config = call.config;
    let (mut call, input) = call
        .form(body, &LOGIN_FIELDS, |raw| {
            let text = |name: &str| raw.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            let request = LoginRequest {
                email: text("email"),
                username: text("username"),
                phone: text("phone"),
                password: text("password").unwrap_or_default(),
            };
            crate::app::account::login::field_errors(config, &request)
        })
        .await?;
    let request = LoginRequest {
        email: input.email.map(|e| e.0),
        username: input.username.map(|u| u.0),
        phone: input.phone.map(|p| p.0),
        password: input.password.0,
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        crate::app::account::login::login_password(&deps, &mut call.session, request).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

pub async fn signup_create(
    call: Call<'_>,
    _headers: HeaderParams<SignupCreateHeaders>,
    body: JsonBody<types::SignupInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let call = call.limit("signup").await?;
    let (mut call, input) = call.input(body).await?;
    let request = SignupRequest {
        email: input.email.map(|e| e.0),
        username: input.username.map(|u| u.0),
        phone: input.phone.map(|p| p.0),
        password: input.password.map(|p| p.0),
        passkey: false,
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        crate::app::account::signup::signup_create(&deps, &mut call.session, request).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

pub async fn email_verification_view(
    call: Call<'_>,
    headers: HeaderParams<EmailVerificationViewHeaders>,
) -> Handled<Reply<types::EmailVerificationInfoResponse>> {
    let mut call = call;
    // A missing header is an empty key: "required", and counted as a
    // wrong code, as in allauth.
    let key = headers
        .into_inner()
        .map(|h| h.x_email_verification_key)
        .unwrap_or_default();
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        crate::app::account::email_verification::view(&deps, &mut call.session, &key).await;
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
    call: Call<'_>,
    _headers: HeaderParams<EmailVerificationConfirmHeaders>,
    body: JsonBody<types::VerifyEmailInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let mut call = call;
    // A missing (or unusable) key is an empty one: `required`, and counted
    // as a wrong code, as allauth counts it.
    let key = match body.read() {
        Ok(input) => input.key,
        Err(errors) if errors.iter().any(|e| e.param.as_deref() == Some("key")) => String::new(),
        Err(errors) => {
            return Ok(call
                .finish_auth(Err(crate::http::invalid_input(errors)))
                .await)
        }
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        crate::app::account::email_verification::confirm(&deps, &mut call.session, &key).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

pub async fn email_verification_resend(
    mut call: Call<'_>,
    _headers: HeaderParams<EmailVerificationResendHeaders>,
) -> Handled<Reply<types::StatusOkResponse>> {
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::account::email_verification::resend(&deps, &mut call.session).await;
    Ok(call.finish_auth(result.map(|()| AuthOutcome::Ok)).await)
}

/// `POST auth/phone/verify`: the SMS code of the pending `verify_phone`
/// stage, or of the signed-in user's change of number.
pub async fn phone_verification_confirm(
    mut call: Call<'_>,
    _headers: HeaderParams<PhoneVerificationConfirmHeaders>,
    body: JsonBody<types::VerifyPhoneInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    // A missing code counts as a wrong one, as allauth counts it.
    let code = body
        .into_inner()
        .map(|input| String::from(input.code))
        .map_err(crate::http::invalid_input);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::account::phones::confirm(&deps, &mut call.session, code).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

/// `POST auth/phone/verify/resend`: a new SMS code for `verify_phone`.
pub async fn phone_verification_resend(
    mut call: Call<'_>,
    _headers: HeaderParams<PhoneVerificationResendHeaders>,
) -> Handled<Reply<types::StatusOkResponse>> {
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::account::phones::resend(&deps, &mut call.session).await;
    Ok(call.finish_auth(result.map(|()| AuthOutcome::Ok)).await)
}

pub async fn reauthenticate_password(
    call: Call<'_>,
    _headers: HeaderParams<ReauthenticatePasswordHeaders>,
    body: JsonBody<types::ReauthenticateInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    // allauth checks the login before anything else: 401 for anonymous callers.
    if !call.session.is_authenticated() {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    }
    let call = call.limit("reauthenticate").await?;
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = crate::app::account::login::reauthenticate_password(
        &deps,
        &mut call.session,
        input.password.0,
    )
    .await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}
