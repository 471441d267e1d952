//! Handlers of the `Account: WebAuthn` operations. An anonymous caller
//! gets the session's 401.

use allauth_api::api::{
    WebauthnAuthenticatorAddHeaders, WebauthnAuthenticatorDeleteHeaders,
    WebauthnAuthenticatorOptionsHeaders, WebauthnAuthenticatorOptionsQuery,
    WebauthnAuthenticatorRenameHeaders,
};
use allauth_api::runtime::{HeaderParams, JsonBody, QueryParams, Reply};
use allauth_api::types;

use crate::app::mfa::manage;
use crate::http::{AuthOutcome, Call, Handled};

/// `GET account/authenticators/webauthn`: creation options; `passwordless`
/// (present with any value, as allauth reads it) asks for a passkey.
pub async fn webauthn_authenticator_options(
    mut call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorOptionsHeaders>,
    query: QueryParams<WebauthnAuthenticatorOptionsQuery>,
) -> Handled<Reply<types::WebAuthnCreationOptionsResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    // A value that is not a boolean still says the parameter is there.
    let passwordless = query
        .into_inner()
        .map_or(true, |q| q.passwordless.is_some());
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::webauthn_options(&deps, &mut call.session, &user, passwordless).await;
    Ok(call
        .finish_auth(result.map(|m| AuthOutcome::managed(m, AuthOutcome::CreationOptions)))
        .await)
}

/// `PUT account/authenticators/webauthn`: renames a credential.
pub async fn webauthn_authenticator_rename(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorRenameHeaders>,
    body: JsonBody<types::RenameWebAuthnAuthenticatorInput>,
) -> Handled<Reply<types::WebAuthnAuthenticatorResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let (call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        manage::webauthn_rename(&deps, &call.session, &user, input.id.0, &input.name).await;
    Ok(call
        .finish_auth(result.map(|m| AuthOutcome::managed(m, AuthOutcome::Authenticator)))
        .await)
}

/// `POST account/authenticators/webauthn`: stores a new credential.
pub async fn webauthn_authenticator_add(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorAddHeaders>,
    body: JsonBody<types::AddWebAuthnAuthenticatorInput>,
) -> Handled<Reply<types::AddWebAuthnAuthenticatorResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let credential = serde_json::Value::Object(input.credential.0);
    let result =
        manage::webauthn_add(&deps, &mut call.session, &user, input.name, credential).await;
    Ok(call
        .finish_auth(result.map(|m| {
            AuthOutcome::managed(m, |(view, recovery_codes_generated)| {
                AuthOutcome::WebauthnAdded {
                    view,
                    recovery_codes_generated,
                }
            })
        }))
        .await)
}

/// `DELETE account/authenticators/webauthn`.
pub async fn webauthn_authenticator_delete(
    call: Call<'_>,
    _headers: HeaderParams<WebauthnAuthenticatorDeleteHeaders>,
    body: JsonBody<types::DeleteWebAuthnAuthenticatorsInput>,
) -> Handled<Reply<types::StatusOkResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let (call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let ids: Vec<i64> = input.authenticators.iter().map(|a| a.0).collect();
    let result = manage::webauthn_delete(&deps, &call.session, &user, &ids).await;
    Ok(call
        .finish_auth(result.map(|m| AuthOutcome::managed(m, |()| AuthOutcome::Ok)))
        .await)
}
