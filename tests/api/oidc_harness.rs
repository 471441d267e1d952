//! The OpenID provider the social login tests log in through
//! (`tests/oidc/provider.mjs`, panva's oidc-provider), checked on its own:
//! the browser's way through login and consent, cancelling at consent, the
//! code exchange and its ID token's claims, and the test-signed tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::harness::{
    claims_of, now_secs, sign_id_token, sign_with_foreign_key, OidcClient, OidcProvider,
    ProviderBrowser, OIDC_KID,
};

const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

fn client() -> OidcClient {
    OidcClient::new("harness-client", "harness-secret", REDIRECT_URI)
}

/// An authorization URL as a relying party builds it from discovery.
async fn authorization_url(idp: &OidcProvider, client: &OidcClient, state: &str) -> String {
    let discovery = idp.discovery().await;
    assert_eq!(discovery["issuer"], idp.issuer());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(
        b"a-code-verifier-of-at-least-43-characters-long",
    ));
    let mut url =
        reqwest::Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("redirect_uri", &client.redirect_uris[0])
        .append_pair("state", state)
        .append_pair("nonce", "nonce-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `token`'s claims, verified against the provider's published keys.
async fn verified_claims(
    idp: &OidcProvider,
    token: &str,
    audience: &str,
) -> jsonwebtoken::errors::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.kid.as_deref(), Some(OIDC_KID));
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(idp.jwks().await).unwrap();
    let jwk = jwks.find(OIDC_KID).expect("the signing key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[idp.issuer()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
}

#[tokio::test]
async fn login_and_consent_redirect_back_with_a_code() {
    let client = client();
    let idp = OidcProvider::start(std::slice::from_ref(&client)).await;
    assert!(
        idp.issuer().starts_with("http://127.0.0.1:"),
        "{}",
        idp.issuer()
    );
    assert_eq!(
        idp.discovery_url(),
        format!("{}/.well-known/openid-configuration", idp.issuer())
    );

    let url = authorization_url(&idp, &client, "state-1").await;
    let location = idp.authorize(&url, "alice@example.test").await;
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?")),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("state-1"));
    assert!(
        query_param(&location, "code").is_some_and(|c| !c.is_empty()),
        "{location}"
    );
    assert_eq!(query_param(&location, "iss").as_deref(), Some(idp.issuer()));

    // Cancelling at consent.
    let url = authorization_url(&idp, &client, "state-2").await;
    let location = idp.deny(&url, "alice@example.test").await;
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?")),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("state-2"));
    assert_eq!(query_param(&location, "code"), None);

    // A browser already logged in (and having consented) goes straight back.
    let mut browser = ProviderBrowser::new();
    let url = authorization_url(&idp, &client, "state-3").await;
    let first = idp
        .authorize_in(&mut browser, &url, "bob@example.test")
        .await;
    let url = authorization_url(&idp, &client, "state-4").await;
    let again = idp.authorize_in(&mut browser, &url, "ignored").await;
    assert!(query_param(&first, "code").is_some(), "{first}");
    assert_eq!(query_param(&again, "state").as_deref(), Some("state-4"));
    assert!(query_param(&again, "code").is_some(), "{again}");
}

#[tokio::test]
async fn the_code_exchange_gives_an_id_token_with_the_login_claims() {
    let client = client();
    let idp = OidcProvider::start(std::slice::from_ref(&client)).await;

    let tokens = idp
        .tokens(&client, "alice@example.test", Some("nonce-42"))
        .await;
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{tokens}"
    );
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let claims = verified_claims(&idp, id_token, &client.client_id)
        .await
        .unwrap();
    assert_eq!(claims["sub"], "alice@example.test");
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["aud"], client.client_id.as_str());
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["nonce"], "nonce-42");
    assert_eq!(claims["given_name"], "Given-alice");
    assert_eq!(claims["family_name"], "Family");
    assert_eq!(claims["preferred_username"], "alice");
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp > now_secs() as i64 + 300, "ID token lifetime: {claims}");

    // The userinfo endpoint answers the access token with the same claims.
    let userinfo = idp.discovery().await["userinfo_endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let response = reqwest::Client::new()
        .get(userinfo)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["email"], "alice@example.test");

    // Without an '@', no email claim at all; "unverified…" is not verified.
    let tokens = idp.tokens(&client, "bob", None).await;
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["preferred_username"], "bob");
    assert!(claims.get("email").is_none(), "{claims}");
    assert!(claims.get("email_verified").is_none(), "{claims}");
    assert!(claims.get("nonce").is_none(), "{claims}");

    let tokens = idp
        .tokens(&client, "unverified-carol@example.test", None)
        .await;
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["email"], "unverified-carol@example.test");
    assert_eq!(claims["email_verified"], false);
}

#[tokio::test]
async fn test_signed_tokens_verify_only_with_the_provider_key() {
    let client = client();
    let idp = OidcProvider::start(std::slice::from_ref(&client)).await;
    let now = now_secs() as i64;
    let claims = json!({
        "iss": idp.issuer(),
        "aud": client.client_id,
        "sub": "mallory@example.test",
        "iat": now,
        "exp": now + 600,
    });

    let genuine = sign_id_token(&claims);
    let verified = verified_claims(&idp, &genuine, &client.client_id)
        .await
        .unwrap();
    assert_eq!(verified["sub"], "mallory@example.test");

    let forged = sign_with_foreign_key(&claims);
    assert_eq!(
        jsonwebtoken::decode_header(&forged).unwrap().kid.as_deref(),
        Some(OIDC_KID)
    );
    let error = verified_claims(&idp, &forged, &client.client_id)
        .await
        .unwrap_err();
    assert_eq!(
        *error.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );

    let expired = sign_id_token(&json!({
        "iss": idp.issuer(), "aud": client.client_id, "sub": "x", "iat": now - 7200, "exp": now - 3600,
    }));
    let error = verified_claims(&idp, &expired, &client.client_id)
        .await
        .unwrap_err();
    assert_eq!(
        *error.kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
}

#[tokio::test]
async fn clients_can_be_added_once_the_provider_runs() {
    let idp = OidcProvider::start(&[]).await;
    let mut late = OidcClient::new("late-client", "late-secret", "http://127.0.0.1:9/first");
    idp.add_client(&late).await;
    let location = idp
        .authorize(
            &authorization_url(&idp, &late, "s").await,
            "dora@example.test",
        )
        .await;
    assert!(
        location.starts_with("http://127.0.0.1:9/first?"),
        "{location}"
    );

    // Added again with another redirect URI, which is the one that now counts.
    late.redirect_uris = vec!["http://127.0.0.1:9/second".to_string()];
    idp.add_client(&late).await;
    let tokens = idp.tokens(&late, "dora@example.test", None).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["aud"],
        "late-client"
    );
}
