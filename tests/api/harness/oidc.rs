//! A real OpenID provider for the social login tests: panva's `oidc-provider`
//! (installed by `.ci/install` into `$TOOLS/node`), run by
//! `tests/oidc/provider.mjs` on a free loopback port, and driven here over
//! plain HTTP as a browser would: its development interactions are a login
//! form (any login name, any password) and a consent form.
//!
//! The login name is the account: `sub` is the login name; with an `@` in
//! it, `email` is the login name and `email_verified` is true unless it
//! starts with `unverified`; without one there is no email claim at all.
//! `given_name` is `Given-<local part>`, `family_name` `Family`, `name` both,
//! `preferred_username` the local part. The ID token carries the claims of
//! the granted scopes (`openid email profile`), signed RS256 with the fixture
//! key `tests/api/fixtures/oidc-signing-key.*` (kid [`OIDC_KID`]).
//!
//! ```ignore
//! let client = OidcClient::new("app", "secret", server.url("/accounts/oidc/test/login/callback/"));
//! let idp = OidcProvider::start(&[client.clone()]).await;
//! // The server under test discovers idp.discovery_url() and redirects the
//! // browser to its authorization URL; the user logs in and consents:
//! let callback = idp.authorize(&authorization_url, "alice@example.test").await;
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::distr::{Alphanumeric, SampleString as _};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The `kid` of the provider's signing key (and of [`sign_id_token`]'s and
/// [`sign_with_foreign_key`]'s tokens).
pub const OIDC_KID: &str = "oidc-test-key-1";

/// The provider's signing key, PKCS#8 PEM (its JWK is `oidc-signing-key.jwk.json`).
const SIGNING_KEY_PEM: &str = include_str!("../fixtures/oidc-signing-key.pkcs8.pem");
/// Another RSA key, which the provider does not publish.
const FOREIGN_KEY_PEM: &str = include_str!("../fixtures/jwt-test-key.pkcs8.pem");

/// How long the provider may take to print its `READY` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A client registered at the provider (confidential: `client_secret_basic`
/// or `client_secret_post`; PKCE allowed, not required).
#[derive(Clone, Debug)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

impl OidcClient {
    /// A client with one redirect URI.
    #[allow(dead_code)]
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: impl Into<String>) -> Self {
        OidcClient {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uris: vec![redirect_uri.into()],
        }
    }
}

/// The running provider; stopped when dropped.
pub struct OidcProvider {
    issuer: String,
    /// Killed on drop; its standard input (kept open here) closing also
    /// stops it, should this process die first.
    _child: Child,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// A browser's cookies at the provider: its login session there survives
/// from one [`OidcProvider::authorize_in`] to the next.
#[derive(Default, Debug)]
pub struct ProviderBrowser {
    /// (name, path, value)
    cookies: Vec<(String, String, String)>,
}

impl ProviderBrowser {
    pub fn new() -> Self {
        ProviderBrowser::default()
    }

    /// The `Cookie` header for a request to `url` (cookies whose path covers it).
    fn header_for(&self, url: &reqwest::Url) -> String {
        let path = url.path();
        self.cookies
            .iter()
            .filter(|(_, p, _)| {
                path == p
                    || (path.starts_with(p.as_str())
                        && (p.ends_with('/') || path.as_bytes().get(p.len()) == Some(&b'/')))
            })
            .map(|(n, _, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps (or deletes) the cookies a response sets.
    fn store(&mut self, url: &reqwest::Url, response: &reqwest::Response) {
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let mut parts = set.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            let mut path = default_cookie_path(url.path());
            let mut deleted = value.is_empty();
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "path" if val.trim().starts_with('/') => path = val.trim().to_string(),
                    "max-age" => deleted |= val.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                    "expires" => deleted |= val.contains("1970"),
                    _ => {}
                }
            }
            self.cookies.retain(|(n, p, _)| !(n == &name && p == &path));
            if !deleted {
                self.cookies.push((name, path, value));
            }
        }
    }
}

/// RFC 6265's default cookie path: the request path up to its last `/`.
fn default_cookie_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

/// What the user does at the consent page.
#[derive(Clone, Copy, PartialEq)]
enum Decision {
    Confirm,
    Abort,
}

/// The tools directory of `.ci/install`.
fn tools_dir() -> PathBuf {
    for var in ["TOOLS", "ALLAUTH_TOOLS"] {
        if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".cache/allauth-server-tools")
}

impl OidcProvider {
    /// Starts a provider knowing `clients`, once it answers.
    pub async fn start(clients: &[OidcClient]) -> OidcProvider {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let node_modules = tools_dir().join("node/node_modules");
        assert!(
            node_modules.join("oidc-provider/package.json").is_file(),
            "oidc-provider is not installed in {}: run .ci/install",
            node_modules.display()
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = json!({
            "port": 0,
            "clients": clients.iter().map(|c| json!({
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": c.redirect_uris,
            })).collect::<Vec<_>>(),
            "jwk_path": root.join("tests/api/fixtures/oidc-signing-key.jwk.json"),
        });
        let config_path = dir.path().join("oidc-provider.json");
        std::fs::write(&config_path, config.to_string()).expect("provider configuration written");

        let mut child = Command::new("node")
            .arg(root.join("tests/oidc/provider.mjs"))
            .arg(&config_path)
            .current_dir(root)
            .env("OIDC_NODE_MODULES", &node_modules)
            .env("NODE_PATH", &node_modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run node (Node.js 20 or later, with .ci/install's tools): {e}")
            });

        // Its warnings and errors, kept for the panic message should it not start.
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let stderr = stderr.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                    if let Ok(mut s) = stderr.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let stdout = child.stdout.take().expect("provider stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    return Some(issuer.trim().to_string());
                }
            }
            None
        })
        .await;
        let issuer = match ready {
            Ok(Some(issuer)) => issuer,
            outcome => {
                // Give the stderr reader a moment to catch the last words.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let why = if outcome.is_err() {
                    "did not print READY in time"
                } else {
                    "exited before printing READY"
                };
                let stderr = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                panic!("the OpenID provider (tests/oidc/provider.mjs) {why} (run .ci/install?):\n{stderr}");
            }
        };
        // Anything it prints later is read and dropped, so it never blocks.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        OidcProvider {
            issuer,
            _child: child,
            _dir: dir,
            http,
        }
    }

    /// Registers `client` with the running provider (or replaces one added
    /// so before): for a server under test whose callback URL is known only
    /// once it runs, itself configured with this provider's issuer. A
    /// client given to [`start`](Self::start) cannot be replaced.
    #[allow(dead_code)]
    pub async fn add_client(&self, client: &OidcClient) {
        let response = self
            .http
            .post(format!("{}/__test/clients", self.issuer))
            .header("content-type", "application/json")
            .body(
                json!({
                    "client_id": client.client_id,
                    "client_secret": client.client_secret,
                    "redirect_uris": client.redirect_uris,
                })
                .to_string(),
            )
            .send()
            .await
            .expect("client registration request");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 204, "adding client {}: {text}", client.client_id);
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The discovery document.
    pub async fn discovery(&self) -> Value {
        let response = self
            .http
            .get(self.discovery_url())
            .send()
            .await
            .expect("discovery request");
        assert_eq!(response.status(), 200, "discovery document");
        response.json().await.expect("discovery JSON")
    }

    /// The provider's public keys (`{"keys": [...]}`).
    #[allow(dead_code)]
    pub async fn jwks(&self) -> Value {
        let url = self.discovery().await["jwks_uri"]
            .as_str()
            .expect("jwks_uri")
            .to_string();
        let response = self.http.get(url).send().await.expect("jwks request");
        assert_eq!(response.status(), 200, "jwks");
        response.json().await.expect("jwks JSON")
    }

    /// A fresh browser at `authorization_url` (this provider's, with the
    /// client's parameters), logging in as `login` and confirming consent:
    /// the `Location` back to the client's redirect URI (with `code`,
    /// `state` and `iss`), not followed.
    pub async fn authorize(&self, authorization_url: &str, login: &str) -> String {
        let mut browser = ProviderBrowser::new();
        self.authorize_in(&mut browser, authorization_url, login)
            .await
    }

    /// [`authorize`](Self::authorize) in `browser`: already logged in at the
    /// provider there, it skips the login form (and `login`); having already
    /// consented for the same client and scopes, the consent form too.
    pub async fn authorize_in(
        &self,
        browser: &mut ProviderBrowser,
        authorization_url: &str,
        login: &str,
    ) -> String {
        self.drive(browser, authorization_url, login, Decision::Confirm)
            .await
    }

    /// As [`authorize`](Self::authorize), but the user cancels at the consent
    /// page: the `Location` back with `error=access_denied` (and `state`).
    #[allow(dead_code)]
    pub async fn deny(&self, authorization_url: &str, login: &str) -> String {
        let mut browser = ProviderBrowser::new();
        self.drive(&mut browser, authorization_url, login, Decision::Abort)
            .await
    }

    /// Follows the provider's redirects and fills in its forms until it
    /// redirects elsewhere; that `Location` is the answer.
    async fn drive(
        &self,
        browser: &mut ProviderBrowser,
        authorization_url: &str,
        login: &str,
        decision: Decision,
    ) -> String {
        let own = format!("{}/", self.issuer);
        assert!(
            authorization_url.starts_with(&own),
            "{authorization_url} is not at the provider {}",
            self.issuer
        );
        let mut url = authorization_url.to_string();
        let mut form: Option<Vec<(&str, &str)>> = None;
        for _ in 0..20 {
            let parsed = reqwest::Url::parse(&url).expect("provider URL");
            let request = match form.take() {
                Some(fields) => {
                    let body = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(fields)
                        .finish();
                    self.http
                        .post(parsed.clone())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                }
                None => self.http.get(parsed.clone()),
            };
            let response = request
                .header("cookie", browser.header_for(&parsed))
                .send()
                .await
                .expect("request to the provider");
            browser.store(&parsed, &response);
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .expect("Location of a redirect");
                let next = parsed.join(location).expect("Location URL").to_string();
                if !next.starts_with(&own) {
                    return next;
                }
                url = next;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            assert_eq!(status, 200, "{url} answered {status}: {body}");
            let action = attribute_after(&body, "<form", "action")
                .unwrap_or_else(|| panic!("no form at {url}: {body}"));
            match prompt_of(&body).as_deref() {
                Some("login") => {
                    url = action;
                    form = Some(vec![
                        ("prompt", "login"),
                        ("login", login),
                        ("password", "any password"),
                    ]);
                }
                Some("consent") if decision == Decision::Confirm => {
                    url = action;
                    form = Some(vec![("prompt", "consent")]);
                }
                Some("consent") => {
                    url = abort_url(&body).unwrap_or_else(|| format!("{action}/abort"));
                }
                other => panic!("unexpected page at {url} (prompt {other:?}): {body}"),
            }
        }
        panic!("the provider kept the browser for 20 requests from {authorization_url}")
    }

    /// A whole authorization code flow of `client` for `login` (state,
    /// PKCE S256, `nonce` when given, its first redirect URI, scope `openid
    /// email profile`), then the code's exchange: the token response
    /// (`id_token`, `access_token`, `token_type`, `expires_in`, `scope`).
    #[allow(dead_code)]
    pub async fn tokens(&self, client: &OidcClient, login: &str, nonce: Option<&str>) -> Value {
        let discovery = self.discovery().await;
        let redirect_uri = client.redirect_uris.first().expect("a redirect URI");
        let state = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let verifier = Alphanumeric.sample_string(&mut rand::rng(), 64);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut authorization_url = reqwest::Url::parse(
            discovery["authorization_endpoint"]
                .as_str()
                .expect("endpoint"),
        )
        .expect("authorization endpoint");
        {
            let mut query = authorization_url.query_pairs_mut();
            query
                .append_pair("client_id", &client.client_id)
                .append_pair("response_type", "code")
                .append_pair("scope", "openid email profile")
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(nonce) = nonce {
                query.append_pair("nonce", nonce);
            }
        }
        let location = self.authorize(authorization_url.as_str(), login).await;
        let callback = reqwest::Url::parse(&location).expect("callback URL");
        let param = |name: &str| {
            callback
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(
            param("state").as_deref(),
            Some(state.as_str()),
            "{location}"
        );
        let code = param("code").unwrap_or_else(|| panic!("no code in {location}"));

        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", &verifier)
            .finish();
        let response = self
            .http
            .post(
                discovery["token_endpoint"]
                    .as_str()
                    .expect("token endpoint"),
            )
            .header("authorization", basic_auth(client))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "token exchange: {text}");
        serde_json::from_str(&text).expect("token response JSON")
    }
}

/// `client_secret_basic`'s header (each part form-encoded, RFC 6749 2.3.1).
fn basic_auth(client: &OidcClient) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!(
        "{}:{}",
        encode(&client.client_id),
        encode(&client.client_secret)
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The value of `attribute` in the first tag opened by `tag`, unescaped.
fn attribute_after(html: &str, tag: &str, attribute: &str) -> Option<String> {
    let start = html.find(tag)?;
    let end = start + html[start..].find('>')?;
    let element = &html[start..end];
    let needle = format!("{attribute}=\"");
    let from = element.find(&needle)? + needle.len();
    let to = from + element[from..].find('"')?;
    Some(unescape(&element[from..to]))
}

/// The dev interactions' hidden `prompt` field: `login` or `consent`.
fn prompt_of(html: &str) -> Option<String> {
    let at = html.find("name=\"prompt\"")?;
    let tag_start = html[..at].rfind('<')?;
    attribute_after(&html[tag_start..], "<input", "value")
}

/// The consent page's "Cancel" link (`/interaction/<uid>/abort`).
fn abort_url(html: &str) -> Option<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.ends_with("/abort"))
        .map(unescape)
}

fn unescape(s: &str) -> String {
    s.replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn sign_with(pem: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(OIDC_KID.to_string());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA key");
    jsonwebtoken::encode(&header, claims, &key).expect("signed token")
}

/// `claims` signed RS256 with the provider's own key (kid [`OIDC_KID`]):
/// tokens the provider could have issued (expired ones, another audience…).
#[allow(dead_code)]
pub fn sign_id_token(claims: &Value) -> String {
    sign_with(SIGNING_KEY_PEM, claims)
}

/// `claims` signed RS256 with a key the provider does not publish, under
/// the provider key's kid: a forgery.
#[allow(dead_code)]
pub fn sign_with_foreign_key(claims: &Value) -> String {
    sign_with(FOREIGN_KEY_PEM, claims)
}
