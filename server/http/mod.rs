//! The HTTP layer: implements the generated `AllauthApi` trait. Handlers
//! extract, call the application layer and convert. Around every call,
//! [`Call`] admits the request (routing, CSRF, the session and its 410),
//! saves the session and sets cookies and headers; [`error_reply`] is the
//! only conversion of `app::Error` into the allauth envelope.

pub mod api;
pub mod cookies;
pub mod cors;
pub mod document;
pub mod reply;

mod account;
mod account_email;
mod account_password;
mod account_phone;
mod account_providers;
mod account_two_factor;
mod account_webauthn;
mod configuration;
mod current_session;
mod login_by_code;
mod password_reset;
mod providers;
mod sessions;
mod tokens;
mod two_factor;
mod webauthn_login;
mod webauthn_signup;
mod wrapper;

pub use wrapper::{serve, Early, Handled};

use std::net::IpAddr;

use allauth_api::api::OperationId;
use allauth_api::runtime::{Answer, ClientKind, ClientParam, ErrorItem, Reply};
use allauth_api::types;
use dropshot::RequestContext;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};

use crate::app::features::Built;
use crate::app::services::Services;
use crate::app::sessions::session::{self as app_session, LiveSession, SessionData};
use crate::app::sessions::session_store::{Found, Origin};
use crate::app::{self, features, routes};
use crate::config::Config;
use crate::db::{self, sessions as session_rows};
use crate::spec::ServedSpec;

/// Shared state of the running server: the application's services, and
/// what only HTTP needs (the served document, the CORS policy).
pub struct ServerContext {
    pub services: Services,
    pub spec: ServedSpec,
    pub cors: cors::CorsPolicy,
}

impl std::ops::Deref for ServerContext {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl ServerContext {
    /// What the account flows need from the server for one request.
    pub fn deps<'a>(
        &'a self,
        now_ms: i64,
        ip: &'a str,
        user_agent: &'a str,
    ) -> crate::app::account::accounts::Deps<'a> {
        self.services.request(now_ms, ip, user_agent)
    }
}

/// What an account operation answers, before the HTTP layer adds `meta`.
#[derive(Debug)]
pub enum AuthOutcome {
    /// The session's state: 200 with the user, or 401 with the flows.
    Session,
    /// 401 with the reauthentication flows for the logged-in user.
    ReauthenticationRequired,
    /// `{"status": 200}`.
    Ok,
    /// `{"status": 200, "data": …}`.
    Data(Value),
}

/// One API call in progress.
pub struct Call<'a> {
    pub ctx: &'a ServerContext,
    pub config: &'a Config,
    pub client: ClientKind,
    pub operation_id: OperationId,
    pub now_ms: i64,
    pub ip: String,
    /// The request's `User-Agent` (at most 200 characters; "" when absent).
    pub user_agent: String,
    pub session: LiveSession,
    headers: HeaderMap,
    csrf_secret: Option<String>,
    /// Who was logged in when the call started: JWTs are handed out when
    /// this changes to a user (allauth's `expose_access_token`).
    pre_user_id: Option<i64>,
}

impl<'a> Call<'a> {
    /// Admits the call, in allauth's order: routing (404), CSRF for unsafe
    /// browser requests (403), then the session: an app token that names no
    /// live session is answered 410 before any input is looked at.
    pub async fn start<S, A: Answer>(
        rqctx: &'a RequestContext<ServerContext>,
        client: &ClientParam<S>,
    ) -> Result<Call<'a>, A> {
        let ctx = rqctx.context();
        let config: &Config = &ctx.config;
        let operation_id = OperationId::parse(&rqctx.endpoint.operation_id);
        let request = rqctx.request.headers();
        let mut headers = response_headers(ctx, request);
        let admitted = operation_id
            .zip(client.kind())
            .filter(|(operation_id, kind)| routes::is_routed(*operation_id, *kind, config));
        let Some((operation_id, kind)) = admitted else {
            return Err(error_reply(app::Error::NotFound, headers));
        };
        if !features::is_implemented(operation_id) {
            let error = app::Error::NotImplemented {
                operation_id: operation_id.to_string(),
            };
            return Err(error_reply(error, headers));
        }

        let mut csrf_secret = None;
        if kind == ClientKind::Browser {
            headers.append(http::header::VARY, HeaderValue::from_static("Cookie"));
            let secret = cookies::csrf_secret_from(cookies::request_cookie(
                request,
                &config.csrf.cookie_name,
            ));
            let unsafe_method = !matches!(
                *rqctx.request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            );
            if unsafe_method {
                let token = request
                    .get(config.csrf.header_name.as_str())
                    .and_then(|v| v.to_str().ok());
                let token_ok = matches!((&secret, token), (Some(s), Some(t)) if cookies::csrf_token_matches(s, t));
                if !token_ok || !cookies::origin_allowed(request, config) {
                    // Django's CSRF 403 sets no cookie.
                    return Err(error_reply(app::Error::CsrfFailed, headers));
                }
            }
            csrf_secret = Some(secret.unwrap_or_else(cookies::new_csrf_secret));
        }

        let now_ms = db::now_millis();
        let token = match kind {
            ClientKind::App => request
                .get("x-session-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            ClientKind::Browser => cookies::request_cookie(request, &config.session.cookie_name),
        }
        .filter(|t| !t.is_empty());
        // A session revoked elsewhere ended now: this call is anonymous,
        // and a browser's cookie is deleted.
        let forgotten = LiveSession::forgotten;
        let session = match (token, kind) {
            (Some(token), _) => match ctx.sessions.by_token(&token, now_ms).await {
                Ok(Found::Session(session)) => *session,
                Ok(Found::Revoked) => forgotten(),
                // The app named a session that does not exist: allauth's 410.
                Ok(Found::Missing) if kind == ClientKind::App => {
                    return Err(gone_reply::<A>(config, now_ms, headers));
                }
                // A stale browser cookie is no session, and is deleted (as
                // Django's session middleware does).
                Ok(Found::Missing) => forgotten(),
                Err(error) => return Err(error_reply(error, headers)),
            },
            (None, ClientKind::App) => match bearer_session(ctx, request, now_ms).await {
                Ok(Bearer::Session(session)) => *session,
                Ok(Bearer::Anonymous) => LiveSession::default(),
                Ok(Bearer::Gone) => return Err(gone_reply::<A>(config, now_ms, headers)),
                Err(error) => return Err(error_reply(error, headers)),
            },
            (None, ClientKind::Browser) => LiveSession::default(),
        };

        let ip = client_ip(rqctx, config).to_string();
        let user_agent = user_agent(request);
        if config.usersessions.track_activity {
            if let Err(error) = ctx
                .sessions
                .track_activity(&session, &ip, &user_agent, now_ms)
                .await
            {
                return Err(error_reply(error, headers));
            }
        }

        let pre_user_id = session.user.as_ref().map(|u| u.id);
        Ok(Call {
            ctx,
            config,
            pre_user_id,
            client: kind,
            operation_id,
            now_ms,
            ip,
            user_agent,
            session,
            headers,
            csrf_secret,
        })
    }

    /// Saves the session if it changed and sets the cookies (browser) that
    /// go with it; returns the token to expose in `meta` (app).
    async fn persist(&mut self) -> Result<Option<String>, app::Error> {
        let origin = Origin {
            client: session_client(self.client),
            ip: &self.ip,
            user_agent: &self.user_agent,
            now_ms: self.now_ms,
            expires_at: self.config.session.expires_at(self.now_ms),
        };
        let exposed = self.ctx.sessions.save(&mut self.session, origin).await?;
        if self.client == ClientKind::Browser {
            if self.session.is_ended() {
                cookies::set_session_cookie(&mut self.headers, self.config, None);
            } else if let Some(token) = &exposed {
                cookies::set_session_cookie(&mut self.headers, self.config, Some(token));
            } else {
                self.forget_stale_cookie();
            }
            if self.session.rotate_csrf {
                self.csrf_secret = Some(cookies::new_csrf_secret());
            }
            if let Some(secret) = &self.csrf_secret {
                cookies::set_csrf_cookie(&mut self.headers, self.config, secret);
            }
        }
        Ok(exposed.filter(|_| self.client == ClientKind::App))
    }

    /// Deletes a browser's session cookie that names no session (stale, or
    /// revoked and ended by this call) unless a session now replaces it.
    fn forget_stale_cookie(&mut self) {
        let session = &mut self.session;
        if self.client == ClientKind::Browser
            && session.forget_cookie
            && session.row_id.is_none()
            && session.new_token.is_none()
        {
            cookies::set_session_cookie(&mut self.headers, self.config, None);
            session.forget_cookie = false;
        }
    }

    /// The answer of a plain operation: the success body, or the envelope of
    /// the error.
    pub async fn finish<T, const STATUS: u16>(
        mut self,
        result: Result<T, app::Error>,
    ) -> Reply<T, STATUS> {
        let result = match result {
            Ok(body) => self.persist().await.map(|_| body),
            Err(error) => Err(error),
        };
        match result {
            Ok(body) => {
                let mut reply = Reply::success(body);
                reply.headers_mut().extend(self.headers);
                reply
            }
            Err(error) => {
                self.forget_stale_cookie();
                error_reply(error, self.headers)
            }
        }
    }

    /// The answer of an account operation: the outcome as an allauth
    /// envelope with `meta` (`is_authenticated`, and the new session token
    /// for app clients when it was created or changed).
    pub async fn finish_auth<A: Answer>(mut self, result: Result<AuthOutcome, app::Error>) -> A {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                // A failed step may still have changed the flow (attempts).
                if self.session.is_modified() {
                    if let Err(save_error) = self.persist().await {
                        return error_reply(save_error, self.headers);
                    }
                } else {
                    self.forget_stale_cookie();
                }
                return error_reply(error, self.headers);
            }
        };
        let token = match self.persist().await {
            Ok(token) => token,
            Err(error) => return error_reply(error, self.headers),
        };
        let tokens = match self.new_jwts().await {
            Ok(tokens) => tokens,
            Err(error) => return error_reply(error, self.headers),
        };
        let (status, body) = match self.auth_body(outcome, token, tokens) {
            Ok(answer) => answer,
            Err(error) => return error_reply(error, self.headers),
        };
        let mut answer = A::envelope(status, body);
        answer.headers_mut().extend(self.headers);
        answer
    }

    /// With the JWT strategy, an app client that just became authenticated
    /// (as someone else than at the start of the call) gets an access and a
    /// refresh token.
    async fn new_jwts(&self) -> Result<Option<app::sessions::jwt::TokenPair>, app::Error> {
        let (Some(keys), ClientKind::App) = (&self.ctx.jwt, self.client) else {
            return Ok(None);
        };
        let (Some(user), Some(session_id), Some(key_hash)) = (
            &self.session.user,
            self.session.row_id,
            &self.session.key_hash,
        ) else {
            return Ok(None);
        };
        if self.pre_user_id == Some(user.id) || self.session.is_ended() {
            return Ok(None);
        }
        let pair = app::sessions::jwt::issue_pair(
            keys,
            self.config,
            &self.ctx.db,
            user.id,
            session_id,
            key_hash,
            self.now_ms,
        )
        .await?;
        Ok(Some(pair))
    }

    /// The answer of `outcome` for the session as it is now, typed as the
    /// document's response bodies.
    fn auth_body(
        &self,
        outcome: AuthOutcome,
        token: Option<String>,
        jwts: Option<app::sessions::jwt::TokenPair>,
    ) -> Result<(StatusCode, Value), app::Error> {
        let session_token = token.map(types::SessionTokenValue);
        let signed_in_meta = |session_token| types::AuthenticatedMeta {
            access_token: jwts
                .as_ref()
                .map(|p| types::AccessToken(p.access_token.clone())),
            is_authenticated: true,
            refresh_token: jwts
                .as_ref()
                .map(|p| types::RefreshToken(p.refresh_token.clone())),
            session_token,
        };
        let (status, body) = match outcome {
            AuthOutcome::Ok => (
                StatusCode::OK,
                reply::to_json(&types::StatusOkResponse {
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::Data(data) => (StatusCode::OK, json!({ "status": 200, "data": data })),
            AuthOutcome::Session => match &self.session.user {
                Some(user) => (
                    StatusCode::OK,
                    reply::to_json(&types::AuthenticatedResponse {
                        data: types::Authenticated {
                            methods: reply::methods(&self.session.data.methods),
                            user: reply::user(user),
                        },
                        meta: signed_in_meta(session_token),
                        status: reply::status(200)?,
                    })?,
                ),
                None => {
                    let flows = app_session::anonymous_flows(
                        self.config,
                        Built::CURRENT,
                        &self.session.data,
                        self.now_ms,
                    );
                    (
                        StatusCode::UNAUTHORIZED,
                        reply::to_json(&types::AuthenticationResponse {
                            data: types::AuthenticationFlows {
                                flows: reply::flows(&flows),
                            },
                            meta: types::AuthenticationMeta {
                                is_authenticated: Some(false),
                                session_token,
                            },
                            status: reply::status(401)?,
                        })?,
                    )
                }
            },
            AuthOutcome::ReauthenticationRequired => {
                let Some(user) = self.session.user.as_ref() else {
                    return Err(app::Error::Internal(
                        "reauthentication asked of an anonymous session".into(),
                    ));
                };
                let flows = app_session::reauthentication_flows(self.config, Built::CURRENT, user);
                (
                    StatusCode::UNAUTHORIZED,
                    reply::to_json(&types::ReauthenticationResponse {
                        data: types::ReauthenticationRequired {
                            flows: reply::flows(&flows),
                            methods: reply::methods(&self.session.data.methods),
                            user: reply::user(user),
                        },
                        meta: signed_in_meta(session_token),
                        status: reply::status(401)?,
                    })?,
                )
            }
        };
        Ok((status, body))
    }
}

/// The request's `User-Agent`, cut to allauth's 200 characters ("" when
/// absent).
fn user_agent(request: &HeaderMap) -> String {
    let value = request
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    value.chars().take(USER_AGENT_MAX_CHARS).collect()
}

/// allauth's `HTTP_USER_AGENT_MAX_LENGTH`.
const USER_AGENT_MAX_CHARS: usize = 200;

/// The app's 410: the session named by the client is gone.
fn gone_reply<A: Answer>(config: &Config, now_ms: i64, headers: HeaderMap) -> A {
    let flows =
        app_session::anonymous_flows(config, Built::CURRENT, &SessionData::default(), now_ms);
    let body = reply::status(410).and_then(|status| {
        reply::to_json(&types::SessionGoneResponse {
            data: types::AuthenticationFlows {
                flows: reply::flows(&flows),
            },
            meta: types::AuthenticationMeta {
                is_authenticated: None,
                session_token: None,
            },
            status,
        })
    });
    let mut answer = match body {
        Ok(body) => A::envelope(StatusCode::GONE, body),
        Err(error) => error_reply(error, HeaderMap::new()),
    };
    answer.headers_mut().extend(headers);
    answer
}

/// What an `Authorization` header makes of an app call (JWT strategy).
enum Bearer {
    /// No header, another scheme, or a token that does not verify: the call
    /// is anonymous, as in allauth (which then ignores the header).
    Anonymous,
    /// The session the access token names.
    Session(Box<LiveSession>),
    /// The token is valid but its session has ended: allauth's 410
    /// (stateless validation; stateful validation refuses the token instead).
    Gone,
}

/// `Authorization: <scheme> <access token>` (scheme case-insensitive): the
/// session named by the token's `sid`, in one indexed read.
async fn bearer_session(
    ctx: &ServerContext,
    request: &HeaderMap,
    now_ms: i64,
) -> Result<Bearer, app::Error> {
    let Some(keys) = &ctx.jwt else {
        return Ok(Bearer::Anonymous);
    };
    let scheme = ctx.config.headless.jwt_authorization_header_scheme.as_str();
    let credential = request
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case(scheme))
        .map(|(_, token)| token.trim());
    let Some(claims) =
        credential.and_then(|t| keys.verify(t, app::sessions::jwt::TokenUse::Access))
    else {
        return Ok(Bearer::Anonymous);
    };
    let Some(session_id) = claims.session_id() else {
        return Ok(Bearer::Anonymous);
    };
    let found = ctx
        .sessions
        .by_id(session_id, now_ms, |key_hash| claims.names_key(key_hash))
        .await?;
    // The session must still have the key the token was issued under (a
    // password change cycles it); else it is gone.
    let session = match found {
        Found::Session(session) => session,
        Found::Revoked => return Ok(Bearer::Session(Box::new(LiveSession::forgotten()))),
        Found::Missing if ctx.config.headless.jwt_stateful_validation_enabled => {
            return Ok(Bearer::Anonymous)
        }
        Found::Missing => return Ok(Bearer::Gone),
    };
    // A live session whose user is inactive or deleted is anonymous (401),
    // as with a session token; one of another user than the token's is not
    // this token's session at all.
    if session
        .user
        .as_ref()
        .is_some_and(|u| u.id.to_string() != claims.sub)
    {
        return Ok(Bearer::Anonymous);
    }
    Ok(Bearer::Session(session))
}

fn session_client(kind: ClientKind) -> session_rows::Client {
    match kind {
        ClientKind::App => session_rows::Client::App,
        ClientKind::Browser => session_rows::Client::Browser,
    }
}

/// The client's address: the socket's, or — behind `trusted_proxy_count`
/// proxies — the entry that many places from the end of the proxy header.
fn client_ip(rqctx: &RequestContext<ServerContext>, config: &Config) -> IpAddr {
    let peer = rqctx.request.remote_addr().ip();
    let count = config.server.trusted_proxy_count;
    if count == 0 {
        return peer;
    }
    let chain: Vec<IpAddr> = rqctx
        .request
        .headers()
        .get_all(config.server.client_ip_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    chain
        .len()
        .checked_sub(count)
        .and_then(|i| chain.get(i))
        .copied()
        .unwrap_or(peer)
}

/// Answers an operation that this server does not build yet (or that the
/// configuration does not route): always one of the two 404 envelopes.
/// [`Call::start`] has already answered such a call; this is reached only if
/// an operation is marked built but its handler is not.
pub async fn not_built<A: Answer>(call: Call<'_>) -> Handled<A> {
    let error = app::Error::NotImplemented {
        operation_id: call.operation_id.to_string(),
    };
    Ok(error_reply(error, call.headers))
}

/// Turns the extractors' 400 items into the application's error.
pub fn invalid_input(errors: Vec<ErrorItem>) -> app::Error {
    app::Error::Invalid(
        errors
            .into_iter()
            .map(|e| app::FieldError {
                code: if e.code == "required" {
                    "required"
                } else {
                    "invalid"
                },
                param: e.param,
                message: e.message,
            })
            .collect(),
    )
}

/// The one conversion of an application error into the allauth envelope.
pub fn error_reply<A: Answer>(error: app::Error, headers: HeaderMap) -> A {
    let item = |code: &str, message: &str| vec![ErrorItem::new(code, None, message)];
    let (status, errors): (StatusCode, Vec<ErrorItem>) = match &error {
        app::Error::Invalid(fields) => (
            StatusCode::BAD_REQUEST,
            fields
                .iter()
                .map(|f| ErrorItem::new(f.code, f.param.as_deref(), f.message.clone()))
                .collect(),
        ),
        app::Error::NotFound => (
            StatusCode::NOT_FOUND,
            item("not_found", "There is nothing here for this client."),
        ),
        app::Error::NotImplemented { operation_id } => (
            StatusCode::NOT_FOUND,
            item(
                "not_implemented",
                &format!("The operation {operation_id} is not implemented by this server yet."),
            ),
        ),
        app::Error::Conflict => (StatusCode::CONFLICT, Vec::new()),
        app::Error::Forbidden => (StatusCode::FORBIDDEN, Vec::new()),
        app::Error::CsrfFailed => (
            StatusCode::FORBIDDEN,
            item(
                "csrf_failed",
                "CSRF verification failed: the X-CSRFToken header is missing or wrong.",
            ),
        ),
        app::Error::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, Vec::new()),
        app::Error::Internal(context) => {
            tracing::error!(%context, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                item("internal_error", "The server could not handle the request."),
            )
        }
    };
    let body = if errors.is_empty() {
        json!({})
    } else {
        json!({ "errors": errors })
    };
    let mut answer = A::envelope(status, body);
    answer.headers_mut().extend(headers);
    answer
}

/// Headers on every API answer: CORS for allowed origins, and never-cache
/// (authentication answers must not be stored by any cache).
pub fn response_headers(ctx: &ServerContext, request: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    ctx.cors.apply(request, &mut headers);
    headers
}
