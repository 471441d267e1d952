//! Handlers of the `Authentication: Providers` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::app::social::flows::{self, Failure, SignupForm};
use crate::app::social::{redirect, Process};
use crate::app::{self, Error};
use crate::http::{reply, AuthOutcome, Call, Handled};

fn process(p: types::Process) -> Process {
    match p {
        types::Process::Login => Process::Login,
        types::Process::Connect => Process::Connect,
    }
}

/// A provider login's failure as the API answers it.
fn outcome(result: Result<(), Failure>) -> Result<AuthOutcome, Error> {
    match result {
        Ok(()) => Ok(AuthOutcome::Session),
        Err(Failure::Error(error)) => Err(error),
        Err(Failure::Code(code)) => Err(Error::Invalid(vec![app::FieldError::new(
            code,
            None,
            "The third-party account is already connected to a different account.",
        )])),
        Err(Failure::SignupClosed | Failure::PermissionDenied) => Err(Error::Forbidden),
        Err(Failure::Reauthenticate(flows)) => Ok(AuthOutcome::ReauthenticationRequired(flows)),
    }
}

/// `POST auth/provider/redirect` (browser, a plain form post): to the
/// provider, or to the frontend's error page.
pub async fn provider_redirect_start(
    mut call: Call<'_>,
    _headers: HeaderParams<ProviderRedirectStartHeaders>,
    body: FormBody<types::ProviderRedirectInput>,
) -> Handled<Redirect> {
    if !call.csrf_passes(body.field("csrfmiddlewaretoken")) {
        return Ok(call.finish_redirect(Err(Error::CsrfFailed)).await);
    }
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let location = match body.into_inner() {
        Err(_) => redirect::error_location(&deps, None, "unknown", Process::Login),
        Ok(input) => {
            let origin = call.own_origin();
            match redirect::start(
                &deps,
                &mut call.session,
                &origin,
                &input.provider.0,
                &input.callback_url,
                process(input.process),
            )
            .await
            {
                Ok(location) | Err(location) => location,
            }
        }
    };
    Ok(call.finish_redirect(Ok(location)).await)
}

/// `POST auth/provider/token`.
pub async fn provider_token_authenticate(
    call: Call<'_>,
    _headers: HeaderParams<ProviderTokenAuthenticateHeaders>,
    body: JsonBody<types::ProviderTokenInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    // allauth reads `token` as any value: one that is no object is an
    // `invalid_token`, not a type error.
    let (mut call, input) = match body.read_form() {
        Ok(input) => (call, input),
        Err((errors, _)) => {
            let crate::app::Error::Invalid(mut fields) = crate::http::invalid_input(errors) else {
                unreachable!("invalid_input is Invalid")
            };
            for field in &mut fields {
                if field.param.as_deref() == Some("token") && field.code != "required" {
                    field.code = "invalid_token";
                    field.message = "The token is not valid.".into();
                }
            }
            return Ok(call.finish_auth(Err(Error::Invalid(fields))).await);
        }
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let token = serde_json::to_value(&input.token)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let result = redirect::token_login(
        &deps,
        &mut call.session,
        &input.provider.0,
        process(input.process),
        &token,
    )
    .await;
    Ok(call.finish_auth(outcome(result)).await)
}

/// `GET auth/provider/signup`: the pending provider signup (409 without).
pub async fn provider_signup_view(
    call: Call<'_>,
    _headers: HeaderParams<ProviderSignupViewHeaders>,
) -> Handled<Reply<types::ProviderSignupInfoResponse>> {
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = match flows::pending_signup(&deps, &call.session) {
        None => Err(Error::Conflict),
        Some(_) if !call.config.account.signup_open => Err(Error::Forbidden),
        Some(login) => {
            let info = flows::signup_info(login);
            reply::status(200).map(|status| types::ProviderSignupInfoResponse {
                data: reply::provider_signup_info(call.config, &info),
                status,
            })
        }
    };
    Ok(call.finish(result).await)
}

/// `POST auth/provider/signup`: the missing details; the account is made.
pub async fn provider_signup_complete(
    call: Call<'_>,
    _headers: HeaderParams<ProviderSignupCompleteHeaders>,
    body: JsonBody<types::ProviderSignupInput>,
) -> Handled<Reply<types::AuthenticatedResponse>> {
    {
        let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
        if flows::pending_signup(&deps, &call.session).is_none() {
            return Ok(call.finish_auth(Err(Error::Conflict)).await);
        }
        if !call.config.account.signup_open {
            return Ok(call.finish_auth(Err(Error::Forbidden)).await);
        }
    }
    let (mut call, input) = call.input(body).await?;
    let form = SignupForm {
        email: input.email.map(|e| e.0),
        username: input.username.map(|u| u.0),
        phone: input.phone.map(|p| p.0),
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = flows::signup_complete(&deps, &mut call.session, form).await;
    let result = match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::Error(Error::Conflict)),
        Err(failure) => Err(failure),
    };
    Ok(call.finish_auth(outcome(result)).await)
}
