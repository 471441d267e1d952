//! Handlers of the `Authentication: WebAuthn: Signup` operations: an
//! account made with a passkey instead of a password.

use allauth_api::api::{
    WebauthnSignupCompleteHeaders, WebauthnSignupOptionsHeaders, WebauthnSignupStartHeaders,
};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::account::signup::{self, SignupRequest};
use crate::app::mfa::manage;
use crate::app::Error;
use crate::http::{AuthOutcome, Call, Handled};

/// `POST auth/webauthn/signup`: the signup form without a password; the
/// login then waits for the address (`verify_email`) and the passkey
/// (`mfa_signup_webauthn`).
pub async fn webauthn_signup_start(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnSignupStartHeaders>,
    body: JsonBody<types::PasskeySignupInput>,
) -> Handled<Reply<types::AuthenticationResponse, 401u16>> {
    let call = call.limit("signup").await?;
    let (mut call, input) = call.input(body).await?;
    let request = SignupRequest {
        email: input.email.map(|e| e.0),
        username: input.username.map(|u| u.0),
        phone: input.phone.map(|p| p.0),
        password: None,
        passkey: true,
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = signup::signup_create(&deps, &mut call.session, request).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

/// `GET auth/webauthn/signup`: creation options for the new account's
/// passkey; 409 without that stage.
pub async fn webauthn_signup_options(
    mut call: Call<'_>,
    _headers: HeaderParams<WebauthnSignupOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnCreationOptionsResponse>> {
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::passkey_signup_options(&deps, &mut call.session).await;
    let outcome = result.and_then(|options| {
        options
            .map(AuthOutcome::CreationOptions)
            .ok_or(Error::Conflict)
    });
    Ok(call.finish_auth(outcome).await)
}

/// `PUT auth/webauthn/signup`: the passkey; the signup's login completes.
pub async fn webauthn_signup_complete(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnSignupCompleteHeaders>,
    body: JsonBody<types::CompletePasskeySignupInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let credential = serde_json::Value::Object(input.credential.0);
    let result =
        manage::passkey_signup_complete(&deps, &mut call.session, input.name, credential).await;
    let outcome = result.and_then(|done| {
        if done {
            Ok(AuthOutcome::Session)
        } else {
            Err(Error::Conflict)
        }
    });
    Ok(call.finish_auth(outcome).await)
}
