//! Handlers of the `Account: Providers` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::app::social::flows::{self, AccountView, Failure};
use crate::app::Error;
use crate::http::{reply, AuthOutcome, Call, Handled};

fn accounts_response(accounts: &[AccountView]) -> Result<types::ProviderAccountsResponse, Error> {
    reply::status(200).map(|status| types::ProviderAccountsResponse {
        data: accounts.iter().map(reply::provider_account).collect(),
        status,
    })
}

/// `GET account/providers`.
pub async fn provider_account_list(
    call: Call<'_>,
    _headers: HeaderParams<ProviderAccountListHeaders>,
) -> Handled<Reply<types::ProviderAccountsResponse>> {
    let Some(user_id) = call.session.user.as_ref().map(|u| u.id) else {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    };
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = flows::list(&deps, user_id).await;
    let result = result.and_then(|accounts| accounts_response(&accounts));
    Ok(call.finish(result).await)
}

/// `DELETE account/providers`.
pub async fn provider_account_disconnect(
    call: Call<'_>,
    _headers: HeaderParams<ProviderAccountDisconnectHeaders>,
    body: JsonBody<types::DisconnectProviderAccountInput>,
) -> Handled<Reply<types::ProviderAccountsResponse>> {
    if !call.session.is_authenticated() {
        return Ok(call.finish_auth(Ok(AuthOutcome::Session)).await);
    }
    let (call, input) = call.input(body).await?;
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    let result = flows::disconnect(&deps, &call.session, &input.provider.0, &input.account.0).await;
    match result {
        Ok(accounts) => {
            let response = accounts_response(&accounts);
            Ok(call.finish(response).await)
        }
        Err(Failure::Reauthenticate(flows)) => Ok(call
            .finish_auth(Ok(AuthOutcome::ReauthenticationRequired(flows)))
            .await),
        Err(Failure::Error(error)) => Ok(call.finish(Err(error)).await),
        Err(_) => Ok(call.finish(Err(Error::Forbidden)).await),
    }
}
