//! Handlers of the `Tokens` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;
use serde_json::json;

use crate::http::{invalid_input, AuthOutcome, Call, ServerContext};

/// `POST tokens/refresh` (app): a new access token, and with rotation a new
/// refresh token; an unusable refresh token is allauth's bare 400.
pub async fn token_refresh(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::AppClient>,
    body: JsonBody<types::RefreshTokenInput>,
) -> Result<Reply<types::RefreshTokenResponse>, ApiError> {
    let call = match Call::start(&rqctx, &client).await {
        Ok(call) => call,
        Err(reply) => return Ok(reply),
    };
    let input = match body.into_inner() {
        Ok(input) => input,
        Err(errors) => return Ok(call.finish_auth(Err(invalid_input(errors))).await),
    };
    let ctx = call.ctx;
    let result = crate::app::jwt::refresh(
        ctx.jwt.as_deref(),
        call.config,
        &ctx.db,
        &input.refresh_token,
        call.now_ms,
    )
    .await
    .map(|(access_token, refresh_token)| {
        let mut data = json!({ "access_token": access_token });
        if let Some(refresh_token) = refresh_token {
            data["refresh_token"] = json!(refresh_token);
        }
        AuthOutcome::Data(data)
    });
    Ok(call.finish_auth(result).await)
}
