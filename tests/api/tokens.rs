//! The JWT token strategy: tokens in `meta` at login, `Authorization:
//! Bearer` on the API, `tokens/refresh` with and without rotation, stateful
//! validation, every refusal, and single use under concurrency.

use allauth_api::types;
use allauth_server::config::{Config, JwtAlgorithm, Secret, TokenStrategy};
use allauth_server::db::{sessions, users};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};

use crate::harness::{
    claims_of, on_each_backend, raw, session_id_of, simultaneous_refreshes, user, TestServer,
};

const PASSWORD: &str = "c0rrect-h0rse-battery";
const RSA_PKCS8: &str = include_str!("fixtures/jwt-test-key.pkcs8.pem");
const RSA_PKCS1: &str = include_str!("fixtures/jwt-test-key.pkcs1.pem");
const RSA_PUBLIC: &str = include_str!("fixtures/jwt-test-key.public.pem");
const HS_KEY: &str = "a-test-only-hs256-key";

fn jwt_rs256(config: &mut Config) {
    config.headless.token_strategy = TokenStrategy::Jwt;
    config.headless.jwt_algorithm = JwtAlgorithm::RS256;
    config.headless.jwt_private_key = Some(Secret::new(RSA_PKCS8));
}

fn jwt_hs256(config: &mut Config) {
    config.headless.token_strategy = TokenStrategy::Jwt;
    config.headless.jwt_algorithm = JwtAlgorithm::HS256;
    config.headless.jwt_private_key = Some(Secret::new(HS_KEY));
}

/// A user with a password and a verified `<username>@example.com`.
async fn make_user(server: &TestServer, username: &str) -> i64 {
    let email = format!("{username}@example.com");
    user(server, username, &email, true, Some(PASSWORD)).await
}

/// Logs `username` in as an app client; returns the login's `meta`.
async fn login(server: &TestServer, username: &str) -> Value {
    let response = raw()
        .post(server.url("/_allauth/app/v1/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["meta"].clone()
}

async fn get_session(server: &TestServer, authorization: &str) -> (u16, Value) {
    let response = raw()
        .get(server.url("/_allauth/app/v1/auth/session"))
        .header("Authorization", authorization)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn refresh(server: &TestServer, token: &str) -> (u16, Value) {
    let response = raw()
        .post(server.url("/_allauth/app/v1/tokens/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn assert_anonymous_401(status: u16, body: &Value) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["status"], 401);
    assert_eq!(body["meta"], json!({"is_authenticated": false}));
    assert!(body["data"]["flows"].is_array());
}

#[tokio::test]
async fn login_hands_out_tokens_and_bearer_authenticates() {
    for (name, configure) in [
        ("rs256", jwt_rs256 as fn(&mut Config)),
        ("hs256", jwt_hs256 as fn(&mut Config)),
    ] {
        on_each_backend(configure, |server| async move {
            let user_id = make_user(&server, "alice").await;
            let meta = login(&server, "alice").await;
            assert_eq!(meta["is_authenticated"], true);
            assert!(meta["session_token"].is_string(), "{name}: {meta}");
            let access = meta["access_token"].as_str().expect("access token");
            let refresh_token = meta["refresh_token"].as_str().expect("refresh token");

            let claims = claims_of(access);
            assert_eq!(claims["sub"], user_id.to_string());
            assert_eq!(claims["token_use"], "access");
            let exp = claims["exp"].as_i64().expect("exp");
            let iat = claims["iat"].as_i64().expect("iat");
            assert_eq!(exp - iat, 300);
            assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 36));
            let sid = claims["sid"].as_str().expect("sid").to_string();
            assert_ne!(sid, meta["session_token"].as_str().expect("token"));
            let refresh_claims = claims_of(refresh_token);
            assert_eq!(refresh_claims["token_use"], "refresh");
            assert_eq!(
                refresh_claims["exp"].as_i64().expect("exp")
                    - refresh_claims["iat"].as_i64().expect("iat"),
                86400
            );
            let header = jsonwebtoken::decode_header(access).expect("header");
            match name {
                "rs256" => {
                    assert_eq!(header.alg, Algorithm::RS256);
                    assert!(header.kid.is_some());
                }
                _ => {
                    assert_eq!(header.alg, Algorithm::HS256);
                    assert!(header.kid.is_none());
                }
            }

            // The access token authenticates the API (scheme case-insensitive).
            for scheme in ["Bearer", "bearer"] {
                let (status, body) = get_session(&server, &format!("{scheme} {access}")).await;
                assert_eq!(status, 200, "{name}: {body}");
                assert_eq!(body["data"]["user"]["id"], user_id);
                // Already authenticated: no new tokens.
                assert_eq!(body["meta"], json!({"is_authenticated": true}));
            }
            // Another scheme is ignored: anonymous.
            let (status, body) = get_session(&server, &format!("Token {access}")).await;
            assert_anonymous_401(status, &body);
            // The sid is not a session token.
            let response = raw()
                .get(server.url("/_allauth/app/v1/auth/session"))
                .header("X-Session-Token", &sid)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 410);
            server
        })
        .await;
    }
}

/// Tokens this server's key signs, with claims of the test's choosing.
fn forge(claims: &Value, algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("encode")
}

#[tokio::test]
async fn refusals() {
    on_each_backend(jwt_rs256, |server| async move {
        make_user(&server, "alice").await;
        let meta = login(&server, "alice").await;
        let access = meta["access_token"].as_str().expect("access").to_string();
        let refresh_token = meta["refresh_token"].as_str().expect("refresh").to_string();
        let claims = claims_of(&access);
        let rsa = EncodingKey::from_rsa_pem(RSA_PKCS1.as_bytes()).expect("key");
        let now = allauth_server::db::now_millis() / 1000;

        // Sanity: a forged token with good claims and our key is accepted.
        let good = forge(&claims, Algorithm::RS256, &rsa);
        assert_eq!(get_session(&server, &format!("Bearer {good}")).await.0, 200);

        let mut expired = claims.clone();
        expired["iat"] = json!(now - 600);
        expired["exp"] = json!(now - 1);
        let mut as_refresh = claims.clone();
        as_refresh["token_use"] = json!("refresh");
        let mut no_use = claims.clone();
        no_use["token_use"] = json!(null);
        let mut numeric_sub = claims.clone();
        numeric_sub["sub"] = json!(1);
        // The sid names the session under its current key: the row id alone,
        // or with another key's tag, names nothing.
        let row_id = claims["sid"]
            .as_str()
            .expect("sid")
            .split('.')
            .next()
            .expect("id");
        let mut bare_sid = claims.clone();
        bare_sid["sid"] = json!(row_id);
        let mut other_key_sid = claims.clone();
        other_key_sid["sid"] = json!(format!("{row_id}.AAAAAAAAAAAAAAAAAAAAAA"));
        let payload = access.split('.').nth(1).expect("payload");
        let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        // HS256 signed with the public modulus (RS256/HS256 confusion) and
        // with the server secret.
        let confused = forge(
            &claims,
            Algorithm::HS256,
            &EncodingKey::from_secret(RSA_PKCS8.as_bytes()),
        );
        let mut bad_signature = access.clone();
        bad_signature.pop();
        bad_signature.push(if access.ends_with('A') { 'B' } else { 'A' });
        let other_key = forge(
            &claims,
            Algorithm::HS256,
            &EncodingKey::from_secret(b"somebody-else"),
        );
        for (what, token) in [
            ("expired", forge(&expired, Algorithm::RS256, &rsa)),
            ("refresh as access", refresh_token.clone()),
            (
                "token_use refresh",
                forge(&as_refresh, Algorithm::RS256, &rsa),
            ),
            ("no token_use", forge(&no_use, Algorithm::RS256, &rsa)),
            ("numeric sub", forge(&numeric_sub, Algorithm::RS256, &rsa)),
            ("sid without key", forge(&bare_sid, Algorithm::RS256, &rsa)),
            ("alg none", alg_none),
            ("hs256 confusion", confused),
            ("bad signature", bad_signature),
            ("other key", other_key),
            ("garbage", "not-a-jwt".to_string()),
        ] {
            let (status, body) = get_session(&server, &format!("Bearer {token}")).await;
            assert_eq!(status, 401, "{what}: {body}");
            assert_anonymous_401(status, &body);

            // And none of them refreshes (but the real refresh token).
            if token == refresh_token {
                continue;
            }
            let (status, body) = refresh(&server, &token).await;
            assert_eq!((status, &body), (400, &json!({"status": 400})), "{what}");
        }
        // A well-formed sid of a key the session no longer has is a session
        // that is gone: 410 (stateless validation, as allauth), and no refresh.
        let other_key = forge(&other_key_sid, Algorithm::RS256, &rsa);
        let (status, body) = get_session(&server, &format!("Bearer {other_key}")).await;
        assert_eq!(status, 410, "{body}");
        let mut other_key_refresh = claims_of(&refresh_token);
        other_key_refresh["sid"] = other_key_sid["sid"].clone();
        let (status, body) =
            refresh(&server, &forge(&other_key_refresh, Algorithm::RS256, &rsa)).await;
        assert_eq!((status, body), (400, json!({"status": 400})));
        // An access token is not a refresh token; an expired refresh token neither.
        let (status, body) = refresh(&server, &access).await;
        assert_eq!((status, body), (400, json!({"status": 400})));
        let mut old_refresh = claims_of(&refresh_token);
        old_refresh["exp"] = json!(now - 1);
        let (status, body) = refresh(&server, &forge(&old_refresh, Algorithm::RS256, &rsa)).await;
        assert_eq!((status, body), (400, json!({"status": 400})));
        // A missing or empty field is the usual required error.
        for input in [json!({}), json!({"refresh_token": ""})] {
            let response = raw()
                .post(server.url("/_allauth/app/v1/tokens/refresh"))
                .json(&input)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 400);
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["errors"][0]["code"], "required", "{input}: {body}");
            assert_eq!(body["errors"][0]["param"], "refresh_token");
        }
        // Browser clients have no tokens/refresh.
        let response = raw()
            .post(server.url("/_allauth/browser/v1/tokens/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
        server
    })
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_logout_ends_refresh_tokens() {
    on_each_backend(jwt_hs256, |server| async move {
        make_user(&server, "alice").await;
        let meta = login(&server, "alice").await;
        let first = meta["refresh_token"].as_str().expect("refresh").to_string();
        let refreshed = server
            .client()
            .token_refresh(
                types::AppClient::App,
                &types::RefreshTokenInput {
                    refresh_token: types::RefreshToken(first.clone()),
                },
            )
            .await
            .expect("200")
            .into_inner();
        let second = refreshed.data.refresh_token.expect("rotated").0;
        let access = refreshed.data.access_token.0;
        assert_eq!(claims_of(&access)["token_use"], "access");
        assert_eq!(
            claims_of(&access)["sid"],
            claims_of(&first)["sid"],
            "same session"
        );
        // The used one is refused, the new one works once.
        assert_eq!(
            refresh(&server, &first).await,
            (400, json!({"status": 400}))
        );
        let (status, body) = refresh(&server, &second).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], 200);
        assert!(body.get("meta").is_none());
        let third = body["data"]["refresh_token"].as_str().expect("rotated");
        let access = body["data"]["access_token"].as_str().expect("access");
        assert_eq!(
            get_session(&server, &format!("Bearer {access}")).await.0,
            200
        );

        // Logout through the access token ends the session: its refresh
        // tokens go, and (stateless) the access token answers 410.
        let response = raw()
            .delete(server.url("/_allauth/app/v1/auth/session"))
            .header("Authorization", format!("Bearer {access}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
        assert_eq!(refresh(&server, third).await, (400, json!({"status": 400})));
        let (status, body) = get_session(&server, &format!("Bearer {access}")).await;
        assert_eq!(status, 410, "{body}");
        assert_eq!(body["meta"], json!({"is_authenticated": null}));
        server
    })
    .await;
}

#[tokio::test]
async fn refresh_without_rotation_and_stateful_validation() {
    let configure = |config: &mut Config| {
        jwt_rs256(config);
        config.headless.jwt_rotate_refresh_token = false;
        config.headless.jwt_stateful_validation_enabled = true;
    };
    on_each_backend(configure, |server| async move {
        make_user(&server, "alice").await;
        let meta = login(&server, "alice").await;
        let token = meta["refresh_token"].as_str().expect("refresh").to_string();
        let session_token = meta["session_token"].as_str().expect("session").to_string();
        for _ in 0..2 {
            let (status, body) = refresh(&server, &token).await;
            assert_eq!(status, 200, "{body}");
            assert!(body["data"].get("refresh_token").is_none(), "{body}");
        }
        let access = meta["access_token"].as_str().expect("access");
        // Logout (by session token) ends the session: with stateful
        // validation the access token is refused at once (anonymous 401).
        let response = raw()
            .delete(server.url("/_allauth/app/v1/auth/session"))
            .header("X-Session-Token", &session_token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
        let (status, body) = get_session(&server, &format!("Bearer {access}")).await;
        assert_anonymous_401(status, &body);
        assert_eq!(
            refresh(&server, &token).await,
            (400, json!({"status": 400}))
        );
        server
    })
    .await;
}

/// A password change cycles the session key (Django's
/// `update_session_auth_hash`); the JWTs issued under the old key die with
/// it, as in allauth: the access token is a 410 (stateless) or anonymous
/// (stateful), the refresh tokens are refused. The client gets the new
/// session token in `meta`, and no new JWTs (same user).
#[tokio::test]
async fn password_change_ends_the_tokens() {
    for stateful in [false, true] {
        let configure = move |config: &mut Config| {
            jwt_rs256(config);
            config.headless.jwt_stateful_validation_enabled = stateful;
        };
        on_each_backend(configure, |server| async move {
            make_user(&server, "alice").await;
            let meta = login(&server, "alice").await;
            let access = meta["access_token"].as_str().expect("access").to_string();
            let refresh_token = meta["refresh_token"].as_str().expect("refresh").to_string();
            let bearer = format!("Bearer {access}");
            let response = raw()
                .post(server.url("/_allauth/app/v1/account/password/change"))
                .header("Authorization", &bearer)
                .json(
                    &json!({"current_password": PASSWORD, "new_password": "an0ther-s3cret-phrase"}),
                )
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            assert_eq!(status, 200, "{body}");
            let new_session_token = body["meta"]["session_token"]
                .as_str()
                .expect("the cycled key is handed out")
                .to_string();
            assert!(body["meta"].get("access_token").is_none(), "{body}");

            let (status, body) = get_session(&server, &bearer).await;
            if stateful {
                assert_anonymous_401(status, &body);
            } else {
                assert_eq!(status, 410, "{body}");
            }
            assert_eq!(
                refresh(&server, &refresh_token).await,
                (400, json!({"status": 400}))
            );
            // The session itself lives on under its new key.
            let response = raw()
                .get(server.url("/_allauth/app/v1/auth/session"))
                .header("X-Session-Token", &new_session_token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            server
        })
        .await;
    }
}

/// An access token of a user made inactive names a live session without a
/// user: the anonymous 401 (not the 410 of a gone session), in both modes,
/// and no refresh.
#[tokio::test]
async fn inactive_users_tokens_are_anonymous() {
    for stateful in [false, true] {
        let configure = move |config: &mut Config| {
            jwt_hs256(config);
            config.headless.jwt_stateful_validation_enabled = stateful;
        };
        on_each_backend(configure, |server| async move {
            let user_id = make_user(&server, "alice").await;
            let meta = login(&server, "alice").await;
            let access = meta["access_token"].as_str().expect("access").to_string();
            let refresh_token = meta["refresh_token"].as_str().expect("refresh").to_string();
            let db = server.server.context().db.clone();
            db.run(move |conn| users::set_active(conn, user_id, false))
                .await
                .expect("deactivated");
            let (status, body) = get_session(&server, &format!("Bearer {access}")).await;
            assert_anonymous_401(status, &body);
            assert_eq!(
                refresh(&server, &refresh_token).await,
                (400, json!({"status": 400}))
            );
            server
        })
        .await;
    }
}

/// A refresh keeps the session alive: its expiry moves `cookie_age` on, as
/// allauth's session save on refresh does.
#[tokio::test]
async fn refresh_extends_the_session() {
    on_each_backend(jwt_hs256, |server| async move {
        make_user(&server, "alice").await;
        let meta = login(&server, "alice").await;
        let token = meta["refresh_token"].as_str().expect("refresh").to_string();
        let session_id = session_id_of(&token);
        let db = server.server.context().db.clone();
        let soon = allauth_server::db::now_millis() + 60_000;
        db.run(move |conn| sessions::extend(conn, session_id, soon))
            .await
            .expect("expiry moved");
        let (status, body) = refresh(&server, &token).await;
        assert_eq!(status, 200, "{body}");
        let age_ms =
            i64::try_from(server.server.context().config.session.cookie_age).expect("age") * 1000;
        let row = db
            .run(move |conn| sessions::by_id(conn, session_id))
            .await
            .expect("read")
            .expect("the session is there");
        let now = allauth_server::db::now_millis();
        assert!(
            row.expires_at > now + age_ms - 60_000,
            "expiry {} not moved on (now {now}, age {age_ms})",
            row.expires_at
        );
        server
    })
    .await;
}

#[tokio::test]
async fn session_strategy_refuses_refresh() {
    on_each_backend(
        |_| {},
        |server| async move {
            make_user(&server, "alice").await;
            let meta = login(&server, "alice").await;
            assert!(meta.get("access_token").is_none(), "{meta}");
            assert_eq!(refresh(&server, "x").await, (400, json!({"status": 400})));
            server
        },
    )
    .await;
}

/// 100 simultaneous refreshes of one refresh token: exactly one succeeds.
#[tokio::test]
async fn concurrent_refreshes_use_a_token_once() {
    on_each_backend(jwt_hs256, |server| async move {
        make_user(&server, "alice").await;
        let meta = login(&server, "alice").await;
        let token = meta["refresh_token"].as_str().expect("refresh").to_string();
        let statuses = simultaneous_refreshes(&[&server.base], &token, 100).await;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 99);
        server
    })
    .await;
}

/// Tokens signed with a PKCS#1 key verify with its public key read by
/// jsonwebtoken's own PEM reader (independent of the server's key handling).
#[tokio::test]
async fn rs256_tokens_verify_with_the_public_key() {
    let configure = |config: &mut Config| {
        jwt_rs256(config);
        config.headless.jwt_private_key = Some(Secret::new(RSA_PKCS1));
    };
    on_each_backend(configure, |server| async move {
        make_user(&server, "alice").await;
        let meta = login(&server, "alice").await;
        let access = meta["access_token"].as_str().expect("access");
        let key = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).expect("public key");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Value>(access, &key, &validation).expect("verifies");
        assert_eq!(data.claims["token_use"], "access");
        server
    })
    .await;
}

/// The published key set verifies an issued access token: the key is built
/// from the JWKS `n`/`e` alone, as a resource server would.
#[tokio::test]
async fn jwks_publishes_the_verifying_key() {
    on_each_backend(jwt_rs256, |server| async move {
        make_user(&server, "alice").await;
        let meta = login(&server, "alice").await;
        let access = meta["access_token"].as_str().expect("access");
        let set = server
            .client()
            .token_jwks(types::AppClient::App)
            .await
            .expect("200")
            .into_inner();
        assert_eq!(set.keys.len(), 1);
        let jwk = &set.keys[0];
        assert_eq!(
            (jwk.kty.as_str(), jwk.use_.as_str(), jwk.alg.as_str()),
            ("RSA", "sig", "RS256")
        );
        let header = jsonwebtoken::decode_header(access).expect("header");
        assert_eq!(
            header.kid.as_deref(),
            Some(jwk.kid.as_str()),
            "the token names the published key"
        );
        let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("key from n/e");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Value>(access, &key, &validation)
            .expect("verifies with the JWKS key");
        assert_eq!(data.claims["token_use"], "access");
        // The answer is a plain key set, not an envelope.
        let raw_set: Value = raw()
            .get(server.url("/_allauth/app/v1/tokens/jwks"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        assert!(raw_set.get("status").is_none(), "{raw_set}");
        // Not served to browsers.
        let response = raw()
            .get(server.url("/_allauth/browser/v1/tokens/jwks"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
        server
    })
    .await;
    // Not served with HS256 nor with session tokens.
    for configure in [jwt_hs256 as fn(&mut Config), |_: &mut Config| {}] {
        on_each_backend(configure, |server| async move {
            let response = raw()
                .get(server.url("/_allauth/app/v1/tokens/jwks"))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 404);
            server
        })
        .await;
    }
}
