//! Starting a real server for a test, on a fresh database of either backend;
//! a raw-HTTP client of either kind; and the stored fixtures (users, logged-in
//! sessions) and mail outbox reads the tests share. Every response the raw
//! helpers here receive is checked against the document (`conformance`).

use std::future::Future;

use allauth_server::config::Config;
use allauth_server::db::testing::TestDatabase;
use allauth_server::RunningServer;

use crate::conformance;

mod agent;
mod answers;
mod authenticator;
mod fake_apple;
mod fake_github;
mod fixtures;
mod mail;
mod oidc;
mod sms;

pub use agent::{kind, Agent, CLIENTS, CSRF};
pub use answers::{codes_of, error, field, pending_flow, rate_limits};
pub use authenticator::SoftAuthenticator;
pub use fake_apple::{FakeApple, APPLE_CLIENT_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY, APPLE_TEAM_ID};
pub use fake_github::{FakeGithub, GITHUB_CLIENT_ID, GITHUB_SECRET};
pub use fixtures::{now_secs, session_for, user};
pub use mail::{code_in, last_code_to, link_key, mails, mails_to, reset_key_to};
pub use oidc::{
    sign_id_token, sign_with_foreign_key, OidcClient, OidcProvider, ProviderBrowser, OIDC_KID,
};
pub use sms::{code_in_text, queued_texts, text_code, texts_to};

/// The storage backends a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL when `TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        all.push(Backend::Postgres);
    }
    all
}

/// allauth's defaults on a free loopback port, files under `dir`.
fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::from_sources("", &[]).expect("default configuration");
    config.server.bind = "127.0.0.1:0".to_string();
    config.server.data_dir = dir.to_path_buf();
    config.server.log_level = "warn".to_string();
    config.email.file_path = dir.join("mail");
    config.sms.file_path = dir.join("sms");
    config
}

pub struct TestServer {
    pub server: RunningServer,
    pub base: String,
    #[allow(dead_code)]
    pub backend: Backend,
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
    /// The checking proxy the generated client goes through, and what it found.
    checked_base: String,
    problems: conformance::Problems,
}

impl TestServer {
    /// A server with allauth's defaults, changed by `configure`.
    pub async fn start(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = test_config(dir.path());
        let database = match backend {
            Backend::Sqlite => {
                config.database.url =
                    format!("sqlite://{}", dir.path().join("test.sqlite3").display());
                None
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                let database = TestDatabase::create(&admin).expect("throwaway PostgreSQL database");
                config.database.url = database.url().to_string();
                Some(database)
            }
        };
        configure(&mut config);
        let server = allauth_server::start(config).await.expect("server starts");
        let base = format!("http://{}", server.local_addr());
        let (checked_base, problems) = conformance::checking_proxy(base.clone()).await;
        TestServer {
            server,
            base,
            backend,
            _database: database,
            _dir: dir,
            checked_base,
            problems,
        }
    }

    /// A second server on this one's database, with the same secret key
    /// (as instances behind a load balancer), changed by `configure`. Stop
    /// it before this one (which owns the database).
    pub async fn start_sharing(&self, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = test_config(dir.path());
        let first = &self.server.context().config;
        config.database.url = first.database.url.clone();
        config.server.secret_key = first.server.secret_key.clone();
        configure(&mut config);
        let server = allauth_server::start(config)
            .await
            .expect("second server starts");
        let base = format!("http://{}", server.local_addr());
        let (checked_base, problems) = conformance::checking_proxy(base.clone()).await;
        TestServer {
            server,
            base,
            backend: self.backend,
            _database: None,
            _dir: dir,
            checked_base,
            problems,
        }
    }

    /// The generated client, through the checking proxy.
    pub fn client(&self) -> allauth_api::client::Client {
        allauth_api::client::Client::new(&self.checked_base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(self) {
        let TestServer {
            server,
            _database,
            _dir,
            problems,
            ..
        } = self;
        server.stop().await.expect("server stops");
        drop(_database);
        let problems = problems.lock().expect("problems");
        assert!(
            problems.is_empty(),
            "answers to the generated client differ from the document:\n{}",
            problems.join("\n")
        );
    }
}

/// Runs `test` once per backend, each on a fresh server.
pub async fn on_each_backend<F, Fut>(configure: impl Fn(&mut Config), test: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = TestServer>,
{
    for backend in backends() {
        let server = TestServer::start(backend, &configure).await;
        let server = test(server).await;
        server.stop().await;
    }
}

/// Runs `test` once per backend and client: a fresh server per backend,
/// on which the test runs for the app client, then for the browser client.
pub async fn on_each_backend_and_client(
    configure: impl Fn(&mut Config),
    test: impl AsyncFn(&TestServer, &'static str),
) {
    for backend in backends() {
        let server = TestServer::start(backend, &configure).await;
        for client in CLIENTS {
            test(&server, client).await;
        }
        server.stop().await;
    }
}

/// A plain HTTP client for requests the generated client cannot make. Its
/// answers are checked against the document (`conformance::check`).
pub fn raw() -> Raw {
    Raw(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client"))
}

/// [`raw`]'s client: reqwest's, whose every answer is checked.
#[derive(Clone)]
pub struct Raw(reqwest::Client);

impl Raw {
    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> RawRequest {
        RawRequest {
            method: method.to_string(),
            inner: self.0.request(method, url),
        }
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> RawRequest {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> RawRequest {
        self.request(reqwest::Method::POST, url)
    }

    pub fn delete(&self, url: impl reqwest::IntoUrl) -> RawRequest {
        self.request(reqwest::Method::DELETE, url)
    }
}

/// A request of [`Raw`]: reqwest's builder, remembering the method.
pub struct RawRequest {
    method: String,
    inner: reqwest::RequestBuilder,
}

impl RawRequest {
    pub fn header(self, name: &str, value: impl AsRef<str>) -> RawRequest {
        RawRequest {
            inner: self.inner.header(name, value.as_ref()),
            ..self
        }
    }

    pub fn json(self, body: &impl serde::Serialize) -> RawRequest {
        RawRequest {
            inner: self.inner.json(body),
            ..self
        }
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> RawRequest {
        RawRequest {
            inner: self.inner.body(body),
            ..self
        }
    }

    /// Sends the request and reads the whole answer, which must be what
    /// the document gives for the operation and status.
    pub async fn send(self) -> reqwest::Result<RawResponse> {
        let response = self.inner.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        let bytes = response.bytes().await?;
        let body = conformance::answer_body(&headers, &bytes);
        conformance::check(&self.method, url.as_str(), status.as_u16(), body.as_ref());
        Ok(RawResponse {
            status,
            headers,
            url,
            bytes: bytes.to_vec(),
        })
    }
}

/// A whole answer to a [`RawRequest`], already checked.
pub struct RawResponse {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    url: reqwest::Url,
    bytes: Vec<u8>,
}

impl RawResponse {
    pub fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }

    #[allow(dead_code)]
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    pub async fn json<T: serde::de::DeserializeOwned>(self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.bytes)
    }

    pub async fn text(self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.bytes)
    }
}

/// The shipped example configuration (every feature on, specification
/// served), as a configure step. Server and storage keep the test's values.
pub fn everything(config: &mut Config) {
    let example = Config::from_sources(include_str!("../../../allauth-server.example.toml"), &[])
        .expect("the example configuration loads");
    let server = config.server.clone();
    let database = config.database.clone();
    let email = config.email.clone();
    *config = example;
    config.server = server;
    config.database = database;
    config.email = email;
}

/// Every cookie a response sets, with its value (`None` when it deletes it:
/// `Max-Age=0` or an expiry in the past).
pub fn response_cookie_values(response: &RawResponse) -> Vec<(String, Option<String>)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| {
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=')?;
            let attributes = attributes.to_ascii_lowercase();
            let deleted = attributes.contains("max-age=0") || attributes.contains("1970");
            Some((
                name.trim().to_string(),
                Some(value.to_string()).filter(|_| !deleted),
            ))
        })
        .collect()
}

/// The value a response's `Set-Cookie` gives cookie `name`, if it sets it.
pub fn response_cookie(response: &RawResponse, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(prefix.as_str()))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
}

/// The claims of a JWT, read without verifying it.
pub fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims")
}

/// The session row id a JWT's `sid` names (`<row id>.<key tag>`).
pub fn session_id_of(token: &str) -> i64 {
    claims_of(token)["sid"]
        .as_str()
        .and_then(|sid| sid.split('.').next())
        .and_then(|id| id.parse().ok())
        .expect("session row id in sid")
}

/// The statuses of `times` successive `GET auth/session` calls with an app
/// session token. A session whose login was revoked (a password change or
/// reset elsewhere) answers `[401, 410]`: logged out once, then gone, as
/// Django's flush of a session with a stale password hash.
pub async fn app_session_statuses(server: &TestServer, token: &str, times: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(times);
    for _ in 0..times {
        let response = raw()
            .get(server.url("/_allauth/app/v1/auth/session"))
            .header("X-Session-Token", token)
            .send()
            .await
            .expect("request");
        statuses.push(response.status().as_u16());
    }
    statuses
}

/// `count` simultaneous `tokens/refresh` calls with one refresh token, sent
/// round-robin to the servers at `bases`; their statuses.
pub async fn simultaneous_refreshes(bases: &[&str], token: &str, count: usize) -> Vec<u16> {
    let client = raw();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let url = format!("{}/_allauth/app/v1/tokens/refresh", bases[i % bases.len()]);
            let (client, token) = (client.clone(), token.to_string());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&serde_json::json!({ "refresh_token": token }))
                    .send()
                    .await
                    .expect("request");
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::with_capacity(count);
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    statuses
}
