//! Handlers of the `Authentication: WebAuthn: Login` operations: a
//! credential as second factor, to reauthenticate, and a passkey login.

use allauth_api::api::{
    WebauthnAuthenticateHeaders, WebauthnAuthenticateOptionsHeaders, WebauthnLoginHeaders,
    WebauthnLoginOptionsHeaders, WebauthnReauthenticateHeaders,
    WebauthnReauthenticateOptionsHeaders,
};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::mfa::authenticate;
use crate::app::Error;
use crate::http::{invalid_input, AuthOutcome, Call, Handled};

/// `GET auth/webauthn/authenticate`: options for the pending login's
/// credentials; 401 (`is_authenticated: null`) without that stage.
pub async fn webauthn_authenticate_options(
    mut call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticateOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnRequestOptionsResponse>> {
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = authenticate::webauthn_authenticate_options(&deps, &mut call.session).await;
    let outcome = result.map(|options| match options {
        Some(options) => AuthOutcome::RequestOptions(options),
        None => AuthOutcome::NoStage,
    });
    Ok(call.finish_auth(outcome).await)
}

/// `POST auth/webauthn/authenticate`: the second factor by WebAuthn.
pub async fn webauthn_authenticate(
    mut call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticateHeaders>,
    body: JsonBody<types::WebAuthnAssertionInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let credential = body
        .into_inner()
        .map(|input| serde_json::Value::Object(input.credential.0))
        .map_err(invalid_input);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = authenticate::webauthn_authenticate(&deps, &mut call.session, credential).await;
    Ok(call.finish_auth(result.map(AuthOutcome::staged)).await)
}

/// `GET auth/webauthn/reauthenticate`: options for the user's credentials.
pub async fn webauthn_reauthenticate_options(
    mut call: Call<'_>,
    _headers: HeaderParams<WebauthnReauthenticateOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnRequestOptionsResponse>> {
    let Some(user_id) = call.session.user.as_ref().map(|u| u.id) else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        authenticate::webauthn_reauthenticate_options(&deps, &mut call.session, user_id).await;
    Ok(call
        .finish_auth(result.map(AuthOutcome::RequestOptions))
        .await)
}

/// `POST auth/webauthn/reauthenticate`.
pub async fn webauthn_reauthenticate(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnReauthenticateHeaders>,
    body: JsonBody<types::WebAuthnAssertionInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let Some(user_id) = call.session.user.as_ref().map(|u| u.id) else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let credential = serde_json::Value::Object(input.credential.0);
    let result =
        authenticate::webauthn_reauthenticate(&deps, &mut call.session, user_id, credential).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

/// `GET auth/webauthn/login`: options for a passkey login (an app client
/// without a session gets one, to send the credential with).
pub async fn webauthn_login_options(
    mut call: Call<'_>,
    _headers: HeaderParams<WebauthnLoginOptionsHeaders>,
) -> Handled<Reply<types::WebAuthnRequestOptionsResponse>> {
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = authenticate::webauthn_login_options(&deps, &mut call.session).await;
    Ok(call
        .finish_auth(result.map(AuthOutcome::RequestOptions))
        .await)
}

/// `POST auth/webauthn/login`: signs in with a passkey.
pub async fn webauthn_login(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnLoginHeaders>,
    body: JsonBody<types::WebAuthnAssertionInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let call = call.limit("webauthn_login").await?;
    let (mut call, input) = call.input(body).await?;
    if call.session.is_authenticated() {
        return Ok(call.finish_auth(Err(Error::Conflict)).await);
    }
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let credential = serde_json::Value::Object(input.credential.0);
    let result = authenticate::webauthn_login(&deps, &mut call.session, credential).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}
