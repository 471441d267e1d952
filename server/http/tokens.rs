//! Handlers of the `Tokens` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;

use crate::http::{reply, AuthOutcome, Call, Handled};

/// `POST tokens/refresh` (app): a new access token, and with rotation a new
/// refresh token; an unusable refresh token is allauth's bare 400.
pub async fn token_refresh(
    call: Call<'_>,
    body: JsonBody<types::RefreshTokenInput>,
) -> Handled<Reply<types::RefreshTokenResponse>> {
    let (call, input) = call.input(body).await?;
    let ctx = call.ctx;
    let result = crate::app::sessions::jwt::refresh(
        ctx.jwt.as_deref(),
        call.config,
        &ctx.db,
        &input.refresh_token,
        call.now_ms,
    )
    .await
    .map(|(access_token, refresh_token)| AuthOutcome::Refreshed {
        access_token,
        refresh_token,
    });
    Ok(call.finish_auth(result).await)
}

/// `GET tokens/jwks` (app, JWT with RS256): the public key set resource
/// servers verify access tokens with. Routed only in that configuration.
pub async fn token_jwks(call: Call<'_>) -> Handled<Reply<types::JwksResponse>> {
    let key = call.ctx.jwt.as_ref().and_then(|keys| keys.jwks());
    let result = key.map(reply::jwks).ok_or(crate::app::Error::NotFound);
    Ok(call.finish(result).await)
}
