//! Handlers of the `Account: 2FA` operations. An anonymous caller gets the
//! session's 401 (allauth's `AuthenticatedAPIView`).

use allauth_api::api::{
    AuthenticatorListHeaders, RecoveryCodesRegenerateHeaders, RecoveryCodesViewHeaders,
    TotpActivateHeaders, TotpDeactivateHeaders, TotpViewHeaders,
};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::mfa::manage::{self, TotpState};
use crate::http::{AuthOutcome, Call, Handled};

/// `GET account/authenticators`.
pub async fn authenticator_list(
    call: Call<'_>,
    _headers: HeaderParams<AuthenticatorListHeaders>,
) -> Handled<Reply<types::AuthenticatorsResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::list(&deps, user.id).await;
    Ok(call
        .finish_auth(result.map(AuthOutcome::Authenticators))
        .await)
}

/// `GET account/authenticators/totp`: 200 when active, else 404 with a
/// secret to set up (409 `unverified_email` when none may be added).
pub async fn totp_view(
    mut call: Call<'_>,
    _headers: HeaderParams<TotpViewHeaders>,
) -> Handled<Reply<types::TotpAuthenticatorResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::totp_view(&deps, &mut call.session, &user).await;
    let outcome = result.map(|state| match state {
        TotpState::Active(view) => AuthOutcome::Authenticator(view),
        TotpState::Offer { secret, url } => AuthOutcome::TotpOffer { secret, url },
    });
    Ok(call.finish_auth(outcome).await)
}

/// `POST account/authenticators/totp`.
pub async fn totp_activate(
    call: Call<'_>,
    _headers: HeaderParams<TotpActivateHeaders>,
    body: JsonBody<types::ActivateTotpInput>,
) -> Handled<Reply<types::TotpAuthenticatorResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let (mut call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::totp_activate(&deps, &mut call.session, &user, &input.code.0).await;
    Ok(call
        .finish_auth(result.map(|m| AuthOutcome::managed(m, AuthOutcome::Authenticator)))
        .await)
}

/// `DELETE account/authenticators/totp`.
pub async fn totp_deactivate(
    mut call: Call<'_>,
    _headers: HeaderParams<TotpDeactivateHeaders>,
) -> Handled<Reply<types::StatusOkResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::totp_deactivate(&deps, &mut call.session, &user).await;
    Ok(call
        .finish_auth(result.map(|m| AuthOutcome::managed(m, |()| AuthOutcome::Ok)))
        .await)
}

/// `GET account/authenticators/recovery-codes`: 404 when there are none.
pub async fn recovery_codes_view(
    call: Call<'_>,
    _headers: HeaderParams<RecoveryCodesViewHeaders>,
) -> Handled<Reply<types::RecoveryCodesResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::recovery_codes_view(&deps, &call.session, &user).await;
    let answer = result.map(|m| {
        AuthOutcome::managed(m, |view| match view {
            Some(view) => AuthOutcome::Authenticator(view),
            None => AuthOutcome::Missing,
        })
    });
    Ok(call.finish_auth(answer).await)
}

/// `POST account/authenticators/recovery-codes`.
pub async fn recovery_codes_regenerate(
    call: Call<'_>,
    _headers: HeaderParams<RecoveryCodesRegenerateHeaders>,
) -> Handled<Reply<types::RecoveryCodesResponse>> {
    let Some(user) = call.session.user.clone() else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = manage::recovery_codes_regenerate(&deps, &call.session, &user).await;
    Ok(call
        .finish_auth(result.map(|m| AuthOutcome::managed(m, AuthOutcome::Authenticator)))
        .await)
}
