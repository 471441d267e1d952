//! Handlers of the `Tokens` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use serde_json::json;

use crate::http::{AuthOutcome, Call, Handled};

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
    .map(|(access_token, refresh_token)| {
        let mut data = json!({ "access_token": access_token });
        if let Some(refresh_token) = refresh_token {
            data["refresh_token"] = json!(refresh_token);
        }
        AuthOutcome::Data(data)
    });
    Ok(call.finish_auth(result).await)
}

/// `GET tokens/jwks` (app, JWT with RS256): the public key set resource
/// servers verify access tokens with. Routed only in that configuration.
pub async fn token_jwks(call: Call<'_>) -> Handled<Reply<types::JwksResponse>> {
    let keys = call.ctx.jwt.as_ref().and_then(|keys| keys.jwks());
    let result = match keys {
        Some(set) => serde_json::from_value(set)
            .map_err(|e| crate::app::Error::Internal(format!("JWKS does not fit its schema: {e}"))),
        None => Err(crate::app::Error::NotFound),
    };
    Ok(call.finish(result).await)
}
