//! A small fake of Sign in with Apple for the social-login tests, on a
//! free loopback port: a discovery document, the key set (the OIDC test
//! key's public half), and a token endpoint that checks the client secret
//! as Apple does — a JWT signed ES256 with the app's key (`kid` the key id,
//! `iss` the team id, `sub` the service id, `aud` Apple) — and answers with
//! an ID token for the identity the test chose. Apple's authorization page
//! and its cross-site `form_post` are played by the test itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::oidc::{sign_id_token, OIDC_KID};

/// The app: service id, key id, team id, and the private key (PKCS#8).
pub const APPLE_CLIENT_ID: &str = "org.example.service";
pub const APPLE_KEY_ID: &str = "KEY123ABCD";
pub const APPLE_TEAM_ID: &str = "TEAM456XYZ";
pub const APPLE_PRIVATE_KEY: &str = include_str!("../fixtures/apple-test-key.p8");
const APPLE_PUBLIC_KEY: &str = include_str!("../fixtures/apple-test-key.public.pem");
const SIGNING_JWK: &str = include_str!("../fixtures/oidc-signing-key.jwk.json");

#[derive(Default)]
struct State {
    /// code → the identity's claims.
    codes: HashMap<String, Value>,
    /// Token requests refused, with why.
    refused: Vec<String>,
}

pub struct FakeApple {
    base: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeApple {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApple {
    pub async fn start() -> FakeApple {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Apple port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::default()));
        let (shared, issuer) = (state.clone(), base.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, issuer) = (shared.clone(), issuer.clone());
                let service = hyper::service::service_fn(move |request| {
                    let (state, issuer) = (state.clone(), issuer.clone());
                    async move {
                        Ok::<_, std::convert::Infallible>(handle(&state, &issuer, request).await)
                    }
                });
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        FakeApple { base, state, task }
    }

    /// The issuer, which the app's `settings.server_url` names.
    pub fn base(&self) -> String {
        self.base.clone()
    }

    /// A code that the token endpoint exchanges for an ID token with
    /// `sub`, `email` and `email_verified` (a string, as Apple sends it).
    pub fn issue_code(&self, sub: &str, email: &str) -> String {
        let code = format!(
            "code-{sub}-{}",
            self.state.lock().expect("state").codes.len()
        );
        self.state.lock().expect("state").codes.insert(
            code.clone(),
            json!({"sub": sub, "email": email, "email_verified": "true"}),
        );
        code
    }

    /// Why token requests were refused, oldest first.
    pub fn refused(&self) -> Vec<String> {
        self.state.lock().expect("state").refused.clone()
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("header"));
    response
}

fn public_jwk() -> Value {
    let full: Value = serde_json::from_str(SIGNING_JWK).expect("JWK");
    json!({"kty": "RSA", "kid": OIDC_KID, "use": "sig", "alg": "RS256", "n": full["n"], "e": full["e"]})
}

/// Apple's check of the client secret JWT.
fn check_client_secret(secret: &str) -> Result<(), String> {
    let header = jsonwebtoken::decode_header(secret).map_err(|e| e.to_string())?;
    if header.alg != jsonwebtoken::Algorithm::ES256 || header.kid.as_deref() != Some(APPLE_KEY_ID) {
        return Err(format!("header {header:?}"));
    }
    let key = jsonwebtoken::DecodingKey::from_ec_pem(APPLE_PUBLIC_KEY.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://appleid.apple.com"]);
    validation.set_issuer(&[APPLE_TEAM_ID]);
    let data =
        jsonwebtoken::decode::<Value>(secret, &key, &validation).map_err(|e| e.to_string())?;
    if data.claims["sub"] != APPLE_CLIENT_ID {
        return Err(format!("sub {}", data.claims["sub"]));
    }
    Ok(())
}

async fn handle(
    state: &Mutex<State>,
    issuer: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match path.as_str() {
        "/.well-known/openid-configuration" => answer(
            StatusCode::OK,
            json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/auth/authorize"),
                "token_endpoint": format!("{issuer}/auth/token"),
                "jwks_uri": format!("{issuer}/auth/keys"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }),
        ),
        "/auth/keys" => answer(StatusCode::OK, json!({"keys": [public_jwk()]})),
        "/auth/token" => {
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            let refuse = |why: String| {
                state.lock().expect("state").refused.push(why);
                answer(StatusCode::BAD_REQUEST, json!({"error": "invalid_client"}))
            };
            if form.get("client_id").map(String::as_str) != Some(APPLE_CLIENT_ID) {
                return refuse(format!("client_id {:?}", form.get("client_id")));
            }
            if let Err(why) = check_client_secret(form.get("client_secret").map_or("", |s| s)) {
                return refuse(format!("client_secret: {why}"));
            }
            let claims = form
                .get("code")
                .and_then(|c| state.lock().expect("state").codes.remove(c));
            let Some(mut claims) = claims else {
                return answer(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
            };
            let now = super::now_secs() as i64;
            claims["iss"] = json!(issuer);
            claims["aud"] = json!(APPLE_CLIENT_ID);
            claims["iat"] = json!(now);
            claims["exp"] = json!(now + 600);
            answer(
                StatusCode::OK,
                json!({
                    "access_token": "apple-access-token",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "refresh_token": "apple-refresh-token",
                    "id_token": sign_id_token(&claims),
                }),
            )
        }
        _ => answer(StatusCode::NOT_FOUND, json!({"error": "not_found"})),
    }
}
