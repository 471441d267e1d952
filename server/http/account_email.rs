//! Handlers of the `Account: Email` operations. As in allauth, an anonymous
//! caller gets the session's 401 (a POST: 409, there being no verification
//! stage that allows changing the address), and every method but GET counts
//! `manage_email` for the user before its input is looked at.

use allauth_api::api::{
    EmailAddHeaders, EmailListHeaders, EmailMarkPrimaryHeaders, EmailRemoveHeaders,
    EmailVerificationRequestHeaders,
};
use allauth_api::runtime::{HeaderParams, JsonBody, Reply};
use allauth_api::types;

use crate::app::account::accounts::Deps;
use crate::app::account::emails::{self, Managed};
use crate::app::sessions::session::UserView;
use crate::app::Error;
use crate::http::{AuthOutcome, Call, Handled};

/// The logged-in user, or what to answer instead.
async fn admit(
    call: &Call<'_>,
    env: &Deps<'_>,
    method: http::Method,
) -> Result<UserView, Result<AuthOutcome, Error>> {
    let Some(user) = call.session.user.clone() else {
        return Err(if method == http::Method::POST {
            Err(Error::Conflict)
        } else {
            Ok(AuthOutcome::Session)
        });
    };
    if method != http::Method::GET {
        emails::consume_manage_email(env, user.id)
            .await
            .map_err(Err)?;
    }
    Ok(user)
}

fn outcome(managed: Result<Managed, Error>) -> Result<AuthOutcome, Error> {
    managed.map(|m| match m {
        Managed::List(list) => AuthOutcome::Emails(list),
        Managed::ReauthenticationRequired(flows) => AuthOutcome::ReauthenticationRequired(flows),
    })
}

/// `GET account/email`: the user's addresses.
pub async fn email_list(
    call: Call<'_>,
    _headers: HeaderParams<EmailListHeaders>,
) -> Handled<Reply<types::EmailAddressesResponse>> {
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let user = match admit(&call, &env, http::Method::GET).await {
        Ok(user) => user,
        Err(answer) => return Ok(call.finish_auth(answer).await),
    };
    let result = emails::list(&env, &call.session, user.id).await;
    Ok(call.finish_auth(result.map(AuthOutcome::Emails)).await)
}

/// `PUT account/email`: mails a new verification for one address; 403 when
/// nothing could be sent.
pub async fn email_verification_request(
    call: Call<'_>,
    _headers: HeaderParams<EmailVerificationRequestHeaders>,
    body: JsonBody<types::EmailAddressInput>,
) -> Handled<Reply<types::StatusOkResponse>> {
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let user = match admit(&call, &env, http::Method::PUT).await {
        Ok(user) => user,
        Err(answer) => return Ok(call.finish_auth(answer).await),
    };
    let (mut call, input) = call.input(body).await?;
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = emails::request_verification(&env, &mut call.session, &user, &input.email).await;
    let result = match result {
        Ok(true) => Ok(AuthOutcome::Ok),
        Ok(false) => Err(Error::Forbidden),
        Err(error) => Err(error),
    };
    Ok(call.finish_auth(result).await)
}

/// `POST account/email`: adds an address and mails its verification.
pub async fn email_add(
    call: Call<'_>,
    _headers: HeaderParams<EmailAddHeaders>,
    body: JsonBody<types::EmailAddressInput>,
) -> Handled<Reply<types::EmailAddressesResponse>> {
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let user = match admit(&call, &env, http::Method::POST).await {
        Ok(user) => user,
        Err(answer) => return Ok(call.finish_auth(answer).await),
    };
    let (mut call, input) = call.input(body).await?;
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = emails::add(&env, &mut call.session, &user, &input.email).await;
    Ok(call.finish_auth(outcome(result)).await)
}

/// `DELETE account/email`: removes an address.
pub async fn email_remove(
    call: Call<'_>,
    _headers: HeaderParams<EmailRemoveHeaders>,
    body: JsonBody<types::EmailAddressInput>,
) -> Handled<Reply<types::EmailAddressesResponse>> {
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let user = match admit(&call, &env, http::Method::DELETE).await {
        Ok(user) => user,
        Err(answer) => return Ok(call.finish_auth(answer).await),
    };
    let (mut call, input) = call.input(body).await?;
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = emails::remove(&env, &mut call.session, &user, &input.email).await;
    Ok(call.finish_auth(outcome(result)).await)
}

/// `PATCH account/email`: makes a verified address primary.
pub async fn email_mark_primary(
    call: Call<'_>,
    _headers: HeaderParams<EmailMarkPrimaryHeaders>,
    body: JsonBody<types::MarkPrimaryEmailInput>,
) -> Handled<Reply<types::EmailAddressesResponse>> {
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let user = match admit(&call, &env, http::Method::PATCH).await {
        Ok(user) => user,
        Err(answer) => return Ok(call.finish_auth(answer).await),
    };
    let (mut call, input) = call.input(body).await?;
    let env = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result =
        emails::mark_primary(&env, &mut call.session, &user, &input.email, input.primary).await;
    Ok(call.finish_auth(outcome(result)).await)
}
