//! Talking to providers: the authorization URL and the code exchange
//! (`oauth2`), OpenID Connect discovery and ID-token verification
//! (`jsonwebtoken` with the provider's JWKS), and reading profiles. Discovery
//! documents and key sets are cached; an ID token signed with a key id the
//! cached set lacks fetches the set again (at most once a minute per
//! provider, so that made-up key ids cannot make us hammer the provider).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, ResponseType, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use super::providers::{Engine, Provider};

/// How long a discovery document is trusted.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long a key set is used before it is fetched again anyway.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches of one key set.
const JWKS_REFETCH_AFTER: Duration = Duration::from_secs(60);

/// Something went wrong with the provider; the text is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError(pub String);

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail(what: impl std::fmt::Display) -> RemoteError {
    RemoteError(what.to_string())
}

fn http_client(timeout_secs: u64) -> Result<reqwest::Client, RemoteError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        // A provider's answer is followed nowhere (no redirect-based SSRF).
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("allauth-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fail(format!("provider HTTP client: {e}")))
}

/// The token endpoint's answer, with OpenID Connect's `id_token`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl oauth2::ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What the token endpoint gave.
#[derive(Debug, Clone)]
pub struct Granted {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<Duration>,
    pub id_token: Option<String>,
}

/// A redirect to the provider: its URL and what the callback needs.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub url: String,
    pub pkce_verifier: Option<String>,
    pub nonce: Option<String>,
}

/// The HTTP client and caches shared by every request.
pub struct Remote {
    /// Built on a thread of its own from start when providers are
    /// configured (loading the system's root certificates takes about
    /// 20 ms, which start-up does not wait for), else by the first request
    /// that needs it.
    http: Arc<OnceLock<reqwest::Client>>,
    timeout_secs: u64,
    discovery: Mutex<HashMap<String, (Arc<Value>, Instant)>>,
    jwks: Mutex<HashMap<String, (Arc<JwkSet>, Instant)>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

impl Remote {
    /// With `early`, the client is built now on a thread of its own;
    /// without, by the first request that needs it (no provider configured:
    /// none should, and a server that talks to no provider does not keep
    /// TLS roots and HTTP client code in memory).
    pub fn new(timeout_secs: u64, early: bool) -> Remote {
        let http = Arc::new(OnceLock::new());
        if early {
            let early = http.clone();
            let built = std::thread::Builder::new()
                .name("allauth-http-client".into())
                .spawn(move || {
                    if let Ok(client) = http_client(timeout_secs) {
                        let _ = early.set(client);
                    }
                });
            if let Err(error) = built {
                tracing::warn!(%error, "provider HTTP client: no thread to build it early");
            }
        }
        Remote {
            http,
            timeout_secs,
            discovery: Mutex::new(HashMap::new()),
            jwks: Mutex::new(HashMap::new()),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, RemoteError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = http_client(self.timeout_secs)?;
        Ok(self.http.get_or_init(|| client))
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, RemoteError> {
        let mut request = self
            .http()?
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| fail(format!("GET {url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("GET {url}: {status}")));
        }
        response
            .json::<Value>()
            .await
            .map_err(|e| fail(format!("GET {url}: {e}")))
    }

    /// The provider's discovery document (cached).
    pub async fn discovery(&self, url: &str) -> Result<Arc<Value>, RemoteError> {
        {
            let cache = self.discovery.lock().await;
            if let Some((doc, at)) = cache.get(url) {
                if at.elapsed() < DISCOVERY_TTL {
                    return Ok(doc.clone());
                }
            }
        }
        let doc = Arc::new(self.get_json(url, None).await?);
        for key in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
        ] {
            if !doc.get(key).is_some_and(Value::is_string) {
                return Err(fail(format!("{url}: no {key}")));
            }
        }
        self.discovery
            .lock()
            .await
            .insert(url.to_string(), (doc.clone(), Instant::now()));
        Ok(doc)
    }

    /// The endpoints of `provider`: (authorize, token, profile or userinfo).
    async fn endpoints(
        &self,
        provider: &Provider,
    ) -> Result<(String, String, Option<String>), RemoteError> {
        match &provider.engine {
            Engine::Oidc { discovery_url } | Engine::Apple { discovery_url } => {
                let doc = self.discovery(discovery_url).await?;
                let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
                Ok((
                    text("authorization_endpoint").unwrap_or_default(),
                    text("token_endpoint").unwrap_or_default(),
                    text("userinfo_endpoint"),
                ))
            }
            Engine::OAuth2(spec) => Ok((
                spec.authorize_url.clone(),
                spec.access_token_url.clone(),
                Some(spec.profile_url.clone()),
            )),
            Engine::Dummy => Err(fail("the dummy provider has no endpoints")),
        }
    }

    async fn client(
        &self,
        provider: &Provider,
        redirect_uri: &str,
    ) -> Result<OAuthClient, RemoteError> {
        let app = provider.app.as_ref().ok_or_else(|| fail("no app"))?;
        let (authorize, token, _) = self.endpoints(provider).await?;
        let basic = match provider.basic_auth() {
            Some(basic) => basic,
            None => match &provider.engine {
                Engine::Apple { .. } => false,
                // allauth: Basic only where the provider does not take the
                // secret in the body.
                Engine::Oidc { discovery_url } => {
                    let doc = self.discovery(discovery_url).await?;
                    let methods: Vec<&str> = doc
                        .get("token_endpoint_auth_methods_supported")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    !methods.contains(&"client_secret_post")
                        && methods.contains(&"client_secret_basic")
                }
                _ => false,
            },
        };
        let secret = match &provider.engine {
            Engine::Apple { .. } => apple_client_secret(provider)?,
            _ => app.secret().to_string(),
        };
        let client_id = provider.api_client_id().unwrap_or_default().to_string();
        Ok(oauth2::Client::new(ClientId::new(client_id))
            .set_client_secret(ClientSecret::new(secret))
            .set_auth_uri(AuthUrl::new(authorize).map_err(fail)?)
            .set_token_uri(TokenUrl::new(token).map_err(fail)?)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(fail)?)
            .set_auth_type(if basic {
                AuthType::BasicAuth
            } else {
                AuthType::RequestBody
            }))
    }

    /// The provider's authorization URL for a redirect with `state`.
    pub async fn authorization(
        &self,
        provider: &Provider,
        redirect_uri: &str,
        state: &str,
        scope: &[String],
    ) -> Result<Authorization, RemoteError> {
        let client = self.client(provider, redirect_uri).await?;
        let state_value = state.to_string();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state_value.clone()))
            .add_scopes(scope.iter().map(|s| Scope::new(s.clone())));
        let mut pkce_verifier = None;
        if provider.pkce() {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            pkce_verifier = Some(verifier.secret().clone());
        }
        if matches!(provider.engine, Engine::Apple { .. }) {
            // Apple posts the answer back (`form_post`) with an ID token.
            request = request
                .set_response_type(&ResponseType::new("code id_token".into()))
                .add_extra_param("response_mode", "form_post");
        }
        let mut nonce = None;
        if matches!(provider.engine, Engine::Oidc { .. }) {
            let value = crate::app::security::codes::new_token();
            request = request.add_extra_param("nonce", value.clone());
            nonce = Some(value);
        }
        for (name, value) in provider.auth_params() {
            request = request.add_extra_param(name, value);
        }
        let (url, _) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            pkce_verifier,
            nonce,
        })
    }

    /// Exchanges the callback's `code` for tokens.
    pub async fn exchange(
        &self,
        provider: &Provider,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: Option<&str>,
    ) -> Result<Granted, RemoteError> {
        let client = self.client(provider, redirect_uri).await?;
        let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(verifier) = pkce_verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()));
        }
        let http = self.http()?.clone();
        let send = move |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move { send(&http, request).await }
        };
        let tokens = request
            .request_async(&send)
            .await
            .map_err(|e| fail(format!("token endpoint: {e}")))?;
        Ok(Granted {
            access_token: tokens.access_token().secret().clone(),
            refresh_token: tokens.refresh_token().map(|t| t.secret().clone()),
            expires_in: tokens.expires_in(),
            id_token: tokens.extra_fields().id_token.clone(),
        })
    }

    /// An OpenID Connect provider's userinfo for `access_token`.
    pub async fn userinfo(
        &self,
        provider: &Provider,
        access_token: &str,
    ) -> Result<Value, RemoteError> {
        let (_, _, userinfo) = self.endpoints(provider).await?;
        let url = userinfo.ok_or_else(|| fail("no userinfo_endpoint"))?;
        self.get_json(&url, Some(access_token)).await
    }

    /// A plain OAuth2 provider's profile, and its address list when it
    /// has one and `query_email` asks for it.
    pub async fn profile(
        &self,
        provider: &Provider,
        access_token: &str,
        query_email: bool,
    ) -> Result<(Value, Option<Value>), RemoteError> {
        let Engine::OAuth2(spec) = &provider.engine else {
            return Err(fail("not a plain OAuth2 provider"));
        };
        let profile = self.get_json(&spec.profile_url, Some(access_token)).await?;
        let emails = match (&spec.emails_url, query_email) {
            (Some(url), true) => Some(self.get_json(url, Some(access_token)).await?),
            _ => None,
        };
        Ok((profile, emails))
    }

    async fn key_set(&self, uri: &str, refresh: bool) -> Result<Arc<JwkSet>, RemoteError> {
        {
            let cache = self.jwks.lock().await;
            if let Some((set, at)) = cache.get(uri) {
                let stale = at.elapsed() >= JWKS_TTL;
                let may_refetch = at.elapsed() >= JWKS_REFETCH_AFTER;
                if !(stale || refresh && may_refetch) {
                    return Ok(set.clone());
                }
            }
        }
        let value = self.get_json(uri, None).await?;
        let set: JwkSet = serde_json::from_value(value).map_err(|e| fail(format!("{uri}: {e}")))?;
        let set = Arc::new(set);
        self.jwks
            .lock()
            .await
            .insert(uri.to_string(), (set.clone(), Instant::now()));
        Ok(set)
    }

    /// Verifies an ID token of `provider`: signature by one of its keys,
    /// issuer, audience among `audiences`, expiry, and `nonce` when one was
    /// sent. Its claims.
    pub async fn verify_id_token(
        &self,
        provider: &Provider,
        token: &str,
        audiences: &[String],
        nonce: Option<&str>,
    ) -> Result<Value, RemoteError> {
        let Some(discovery_url) = provider.engine.discovery_url() else {
            return Err(fail("not an OpenID Connect provider"));
        };
        let doc = self.discovery(discovery_url).await?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let header = jsonwebtoken::decode_header(token).map_err(fail)?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(fail("symmetric ID token algorithms are not accepted"));
        }
        let mut set = self.key_set(jwks_uri, false).await?;
        let pick = |set: &JwkSet| match &header.kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let jwk = match pick(&set) {
            Some(jwk) => jwk,
            None => {
                set = self.key_set(jwks_uri, true).await?;
                pick(&set).ok_or_else(|| fail("no key of the provider has this key id"))?
            }
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(fail)?;
        let mut validation = Validation::new(header.alg);
        let mut issuers = vec![issuer.to_string()];
        if issuer == "https://accounts.google.com" {
            // Google signs with either form.
            issuers.push("accounts.google.com".into());
        }
        validation.set_issuer(&issuers);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(fail)?;
        if let Some(expected) = nonce {
            let given = data
                .claims
                .get("nonce")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !crate::app::security::secrets::constant_time_eq(
                given.as_bytes(),
                expected.as_bytes(),
            ) {
                return Err(fail("the ID token's nonce is not ours"));
            }
        }
        Ok(data.claims)
    }
}

/// Apple's client secret (allauth's `generate_client_secret`): a JWT
/// signed ES256 with the app's private key (`settings.certificate_key`),
/// key id the app's `secret`, issued by the team (`key`) for the service
/// id, valid an hour.
fn apple_client_secret(provider: &Provider) -> Result<String, RemoteError> {
    let app = provider.app.as_ref().ok_or_else(|| fail("no app"))?;
    let pem = app
        .settings
        .certificate_key
        .as_ref()
        .map(|k| k.expose().to_string())
        .ok_or_else(|| fail("Apple app without certificate_key"))?;
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).map_err(fail)?;
    let now = crate::app::now_ms().div_euclid(1000);
    let claims = serde_json::json!({
        "iss": app.key,
        "aud": "https://appleid.apple.com",
        "sub": provider.api_client_id().unwrap_or_default(),
        "iat": now,
        "exp": now + 3600,
    });
    let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
    header.kid = Some(app.secret().to_string());
    jsonwebtoken::encode(&header, &claims, &key).map_err(fail)
}

/// One request of the `oauth2` crate through reqwest.
async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let mut builder = http::Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        headers.extend(response.headers().clone());
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).unwrap_or_default())
}
