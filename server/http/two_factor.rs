//! Handlers of the `Authentication: 2FA` operations.

use allauth_api::api::{MfaAuthenticateHeaders, MfaReauthenticateHeaders, MfaTrustHeaders};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::mfa::authenticate;
use crate::http::{invalid_input, AuthOutcome, Call, Handled};

/// `POST auth/2fa/authenticate`: the second factor of the pending login;
/// 200 signed in, 401 with the next stage, or 401 (`is_authenticated:
/// null`) when no `mfa_authenticate` stage is pending.
pub async fn mfa_authenticate(
    mut call: Call<'_>,
    _headers: HeaderParams<MfaAuthenticateHeaders>,
    body: JsonBody<types::MfaAuthenticateInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let code = body
        .into_inner()
        .map(|input| String::from(input.code))
        .map_err(invalid_input);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = authenticate::authenticate(&deps, &mut call.session, code).await;
    Ok(call.finish_auth(result.map(AuthOutcome::staged)).await)
}

/// `POST auth/2fa/reauthenticate`: a code again, recorded as a
/// reauthentication; 401 for anonymous callers.
pub async fn mfa_reauthenticate(
    call: Call<'_>,
    _headers: HeaderParams<MfaReauthenticateHeaders>,
    body: JsonBody<types::MfaAuthenticateInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    if !call.session.is_authenticated() {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    }
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = authenticate::reauthenticate(&deps, &mut call.session, input.code.0).await;
    Ok(call
        .finish_auth(result.map(|()| AuthOutcome::Session))
        .await)
}

/// `POST auth/2fa/trust` (browser): ends the `mfa_trust` stage, setting
/// the trust cookie when asked to.
pub async fn mfa_trust(
    call: Call<'_>,
    _headers: HeaderParams<MfaTrustHeaders>,
    body: JsonBody<types::MfaTrustInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let trust = input.trust.unwrap_or(false);
    let result = authenticate::trust_browser(&deps, &mut call.session, trust).await;
    Ok(call.finish_auth(result.map(AuthOutcome::staged)).await)
}
