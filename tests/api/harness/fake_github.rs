//! A small fake GitHub for the social-login tests: the OAuth2 web flow
//! (`/login/oauth/authorize`, `/login/oauth/access_token`) and the two REST
//! endpoints a login reads (`/user`, `/user/emails`), on a free loopback
//! port, answering in GitHub's real shapes:
//!
//! - authorize redirects to the `redirect_uri` with `code` and `state`
//!   appended (keeping any query it already has), or, for [`FakeGithub::deny`],
//!   with `error=access_denied`, `error_description`, `error_uri` and `state`;
//! - the token exchange answers JSON when asked with `Accept:
//!   application/json` and form-encoded text otherwise, and its errors
//!   (`bad_verification_code`, `incorrect_client_credentials`,
//!   `redirect_uri_mismatch`) come with status 200, as GitHub's do;
//! - the API wants `Authorization: token <t>` or `Bearer <t>` with a token
//!   this fake issued (else 401 `{"message": "Bad credentials", …}`) and,
//!   like the real one, a `User-Agent` header (else 403).
//!
//! Realistic data to start it with:
//!
//! ```ignore
//! let github = FakeGithub::start(
//!     json!({
//!         "id": 583231,
//!         "login": "octocat",
//!         "name": "The Octocat",
//!         "email": null,
//!         "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
//!         "html_url": "https://github.com/octocat"
//!     }),
//!     json!([
//!         {"email": "octocat@github.com", "primary": true, "verified": true, "visibility": "public"}
//!     ]),
//! )
//! .await;
//! // The server under test is configured with these URLs:
//! //   authorize:  {base}/login/oauth/authorize
//! //   token:      {base}/login/oauth/access_token
//! //   user:       {base}/user
//! //   emails:     {base}/user/emails
//! // and with GITHUB_CLIENT_ID / GITHUB_SECRET.
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use rand::distr::{Alphanumeric, SampleString as _};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::task::{JoinHandle, JoinSet};

/// The OAuth app's client id the fake expects.
pub const GITHUB_CLIENT_ID: &str = "github-client";
/// The OAuth app's client secret the fake expects.
pub const GITHUB_SECRET: &str = "github-secret";

/// A request header [`FakeGithub::deny`] sends with the authorize request,
/// standing for the user's click on "Cancel".
const DECISION_HEADER: &str = "x-fake-github-decision";

/// What GitHub's error redirects and token errors point at.
const ERROR_DOCS: &str =
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors";
const TOKEN_ERROR_DOCS: &str =
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";

/// A code issued by the authorize step and not exchanged yet.
struct Grant {
    redirect_uri: String,
    /// The S256 `code_challenge` given at authorize time, if any.
    challenge: Option<String>,
    /// The requested scopes, comma-separated as GitHub answers them.
    scope: String,
}

#[derive(Default)]
struct State {
    user: Value,
    emails: Value,
    codes: HashMap<String, Grant>,
    tokens: HashSet<String>,
    requests: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

/// A fake GitHub on `127.0.0.1:<free port>`; stops when dropped.
pub struct FakeGithub {
    base: String,
    state: Shared,
    task: JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGithub {
    /// Starts the fake: `user` is the JSON answered by `GET /user`, `emails`
    /// the JSON array answered by `GET /user/emails`.
    pub async fn start(user: Value, emails: Value) -> FakeGithub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake GitHub port");
        let base = format!(
            "http://{}",
            listener.local_addr().expect("fake GitHub address")
        );
        let state: Shared = Arc::new(Mutex::new(State {
            user,
            emails,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when the task is aborted) aborts the connections too.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let state = shared.clone();
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(&state, request).await) }
                });
                connections.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        FakeGithub { base, state, task }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base(&self) -> String {
        self.base.clone()
    }

    /// Changes what `GET /user` answers from now on.
    pub fn set_user(&self, user: Value) {
        self.state().user = user;
    }

    /// Changes what `GET /user/emails` answers from now on.
    pub fn set_emails(&self, emails: Value) {
        self.state().emails = emails;
    }

    /// `METHOD /path?query` of every request received so far, oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// Follows the authorization step as a browser whose user approves:
    /// GETs `authorization_url` (which must point at this fake) and returns
    /// the Location it redirects to — the client's `redirect_uri` with
    /// `code` and `state` — without following it.
    pub async fn authorize(&self, authorization_url: &str) -> String {
        self.visit(authorization_url, "approve").await
    }

    /// The same as [`FakeGithub::authorize`] for a user who cancels: the
    /// Location is the `redirect_uri` with `error=access_denied`,
    /// `error_description`, `error_uri` and `state`. No code is issued.
    pub async fn deny(&self, authorization_url: &str) -> String {
        self.visit(authorization_url, "deny").await
    }

    async fn visit(&self, authorization_url: &str, decision: &str) -> String {
        assert!(
            authorization_url.starts_with(&format!("{}/", self.base)),
            "the authorization URL {authorization_url} does not point at the fake GitHub {}",
            self.base
        );
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        let response = client
            .get(authorization_url)
            .header(DECISION_HEADER, decision)
            .send()
            .await
            .expect("authorize request");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        match location {
            Some(location) if status == StatusCode::FOUND => location,
            _ => panic!(
                "the fake GitHub did not redirect {authorization_url}: {status} {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake GitHub state")
    }
}

type Answer = Response<Full<Bytes>>;

async fn handle(state: &Shared, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    state
        .lock()
        .expect("fake GitHub state")
        .requests
        .push(format!("{} {target}", parts.method));
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/login/oauth/authorize") => {
            authorize(state, &query, header(DECISION_HEADER).as_deref())
        }
        (&Method::POST, "/login/oauth/access_token") => access_token(
            state,
            &body,
            header("authorization").as_deref(),
            header("accept").as_deref(),
        ),
        (&Method::GET, path @ ("/user" | "/user/emails")) => {
            if header("user-agent").is_none() {
                // GitHub's answer to an API request without a User-Agent.
                return text(
                    StatusCode::FORBIDDEN,
                    "Request forbidden by administrative rules. \
                     Please make sure your request has a User-Agent header \
                     (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
                     Check https://developer.github.com for other possible causes.\n",
                );
            }
            let token = header("authorization").and_then(|a| {
                let (scheme, token) = a.split_once(' ')?;
                (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
                    .then(|| token.trim().to_string())
            });
            let state = state.lock().expect("fake GitHub state");
            match token {
                Some(token) if state.tokens.contains(&token) => {
                    let value = if path == "/user" {
                        &state.user
                    } else {
                        &state.emails
                    };
                    json_answer(StatusCode::OK, value)
                }
                _ => json_answer(
                    StatusCode::UNAUTHORIZED,
                    &json!({
                        "message": "Bad credentials",
                        "documentation_url": "https://docs.github.com/rest",
                        "status": "401"
                    }),
                ),
            }
        }
        _ => json_answer(
            StatusCode::NOT_FOUND,
            &json!({
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest",
                "status": "404"
            }),
        ),
    }
}

/// `GET /login/oauth/authorize`: a redirect to the client's `redirect_uri`.
fn authorize(state: &Shared, query: &HashMap<String, String>, decision: Option<&str>) -> Answer {
    let Some(redirect_uri) = query.get("redirect_uri") else {
        return text(StatusCode::BAD_REQUEST, "redirect_uri is required\n");
    };
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return text(StatusCode::BAD_REQUEST, "redirect_uri is not a URL\n");
    };
    let error = |error: &str, description: &str, anchor: &str| {
        let mut target = target.clone();
        {
            let mut pairs = target.query_pairs_mut();
            pairs
                .append_pair("error", error)
                .append_pair("error_description", description)
                .append_pair("error_uri", &format!("{ERROR_DOCS}/#{anchor}"));
            if let Some(state) = query.get("state") {
                pairs.append_pair("state", state);
            }
        }
        redirect(target.as_str())
    };
    if query.get("client_id").map(String::as_str) != Some(GITHUB_CLIENT_ID) {
        return error(
            "invalid_client",
            "The client_id passed is incorrect.",
            "invalid-client",
        );
    }
    let challenge = query.get("code_challenge").cloned();
    if challenge.is_some() && query.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return error(
            "invalid_request",
            "Only the S256 code_challenge_method is supported.",
            "invalid-request",
        );
    }
    if decision == Some("deny") {
        return error(
            "access_denied",
            "The user has denied your application access.",
            "access-denied",
        );
    }
    let code = hex_code();
    let scope = query
        .get("scope")
        .map(|s| {
            s.split([' ', ','])
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    state.lock().expect("fake GitHub state").codes.insert(
        code.clone(),
        Grant {
            redirect_uri: redirect_uri.clone(),
            challenge,
            scope,
        },
    );
    {
        let mut pairs = target.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = query.get("state") {
            pairs.append_pair("state", state);
        }
    }
    redirect(target.as_str())
}

/// `POST /login/oauth/access_token`: a code (once) for an access token.
fn access_token(
    state: &Shared,
    body: &[u8],
    authorization: Option<&str>,
    accept: Option<&str>,
) -> Answer {
    let json = accept.is_some_and(|a| a.contains("application/json"));
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    // Client credentials: HTTP Basic auth, else the form's fields.
    let basic = authorization
        .and_then(|a| {
            a.strip_prefix("Basic ")
                .or_else(|| a.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|b| {
            let (id, secret) = b.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Some((decode(id), decode(secret)))
        });
    let (client_id, secret) = basic.unwrap_or_else(|| {
        (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    let token_error = |error: &str, description: &str, anchor: &str| {
        let fields = [
            ("error", error.to_string()),
            ("error_description", description.to_string()),
            ("error_uri", format!("{TOKEN_ERROR_DOCS}/#{anchor}")),
        ];
        token_answer(json, &fields)
    };
    if client_id != GITHUB_CLIENT_ID || secret != GITHUB_SECRET {
        return token_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            "incorrect-client-credentials",
        );
    }
    let mut state = state.lock().expect("fake GitHub state");
    // A code is spent by the first exchange that presents it with the right
    // client credentials, whether or not the rest of the request is right.
    let grant = form.get("code").and_then(|code| state.codes.remove(code));
    let Some(grant) = grant else {
        return token_error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
            "bad-verification-code",
        );
    };
    if form
        .get("redirect_uri")
        .is_some_and(|uri| *uri != grant.redirect_uri)
    {
        return token_error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
            "redirect-uri-mismatch",
        );
    }
    if let Some(challenge) = &grant.challenge {
        let verified = form
            .get("code_verifier")
            .is_some_and(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == *challenge);
        if !verified {
            return token_error(
                "bad_verification_code",
                "The code_verifier does not match the code_challenge.",
                "bad-verification-code",
            );
        }
    }
    let token = format!("gho_{}", Alphanumeric.sample_string(&mut rand::rng(), 36));
    state.tokens.insert(token.clone());
    token_answer(
        json,
        &[
            ("access_token", token),
            ("token_type", "bearer".to_string()),
            ("scope", grant.scope),
        ],
    )
}

/// A token endpoint answer, always 200: JSON when the client asked for it,
/// else form-encoded text, as GitHub does.
fn token_answer(json: bool, fields: &[(&str, String)]) -> Answer {
    if json {
        let object: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect();
        json_answer(StatusCode::OK, &Value::Object(object))
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let mut answer = Response::new(Full::new(Bytes::from(body)));
        answer.headers_mut().insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .expect("header"),
        );
        answer
    }
}

/// 20 hex digits, the shape of GitHub's authorization codes.
fn hex_code() -> String {
    rand::random::<[u8; 10]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn redirect(location: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::new()));
    *answer.status_mut() = StatusCode::FOUND;
    answer
        .headers_mut()
        .insert("location", location.parse().expect("location header"));
    answer
}

fn json_answer(status: StatusCode, value: &Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(value.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        "content-type",
        "application/json; charset=utf-8".parse().expect("header"),
    );
    answer
}

fn text(status: StatusCode, body: &'static str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("header"),
    );
    answer
}
