//! One API call: [`Call::start`] admits it (routing, CSRF, the session and
//! the app's 410), handlers run on it, and [`Call::finish`] /
//! [`Call::finish_auth`] save the session, set the cookies and headers and
//! build the answer; account operations answer an [`AuthOutcome`], turned
//! into the document's session bodies here.

use allauth_api::api::OperationId;
use allauth_api::runtime::{
    Answer, ClientKind, ClientParam, Prepared, Redirect, Reply, Serialized,
};
use allauth_api::types;
use dropshot::RequestContext;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::Value;

use crate::app::features::Built;
use crate::app::sessions::admission::Admitted;
use crate::app::sessions::session::{self as app_session, LiveSession, SessionData};
use crate::app::sessions::session_store::Origin;
use crate::app::{self, features, routes};
use crate::config::Config;
use crate::http::client::{self, client_ip, session_client, user_agent};
use crate::http::reply::{self, error_reply, response_headers};
use crate::http::{cookies, Handled, ServerContext};

/// What an account operation answers, before the HTTP layer adds `meta`.
#[derive(Debug)]
pub enum AuthOutcome {
    /// The session's state: 200 with the user, or 401 with the flows.
    Session,
    /// 401 with these reauthentication flows for the logged-in user.
    ReauthenticationRequired(Vec<app_session::Flow>),
    /// 401 with the anonymous flows and `is_authenticated: null`: the
    /// operation's login stage is not pending (allauth's `UnauthorizedResponse`).
    NoStage,
    /// 200 with the user's authenticators.
    Authenticators(Vec<app::mfa::AuthenticatorView>),
    /// 200 with one authenticator (TOTP, or recovery codes with the codes).
    Authenticator(app::mfa::AuthenticatorView),
    /// 404 with a TOTP secret to set up (`meta.secret`, `meta.totp_url`).
    TotpOffer { secret: String, url: String },
    /// 404 `{"status": 404}`: nothing of the kind asked for.
    Missing,
    /// 200 with WebAuthn creation options.
    CreationOptions(Value),
    /// 200 with WebAuthn request options (and an app's new session token).
    RequestOptions(Value),
    /// 200 with the new WebAuthn authenticator and whether recovery codes
    /// came with it.
    WebauthnAdded {
        view: app::mfa::AuthenticatorView,
        recovery_codes_generated: bool,
    },
    /// `{"status": 200}`.
    Ok,
    /// 200 with the user's addresses.
    Emails(Vec<app::account::emails::AddressView>),
    /// 200 with the user's phone number (zero or one).
    PhoneNumbers(Vec<(String, bool)>),
    /// 202 with the number being switched to.
    PhoneChanging(String),
    /// 200 with the user's sessions.
    Sessions(Vec<app::sessions::usersessions::SessionEntry>),
    /// 200 with a new access token (and, with rotation, refresh token).
    Refreshed {
        access_token: String,
        refresh_token: Option<String>,
    },
}

impl AuthOutcome {
    /// The session's answer when the operation's login stage was pending,
    /// else allauth's `UnauthorizedResponse`.
    pub fn staged(pending: bool) -> AuthOutcome {
        if pending {
            AuthOutcome::Session
        } else {
            AuthOutcome::NoStage
        }
    }

    /// `done` of a change's result, or the reauthentication 401 it asked for.
    pub fn managed<T>(
        managed: app::mfa::manage::Managed<T>,
        done: impl FnOnce(T) -> AuthOutcome,
    ) -> AuthOutcome {
        match managed {
            app::mfa::manage::Managed::Done(value) => done(value),
            app::mfa::manage::Managed::ReauthenticationRequired(flows) => {
                AuthOutcome::ReauthenticationRequired(flows)
            }
        }
    }
}

/// Django's CSRF check of an unsafe browser request: the token (from the
/// header, else `form_token`) matches the cookie's secret, the Origin is
/// allowed, and over HTTPS the Referer is this site.
fn csrf_passes(
    request: &HeaderMap,
    config: &Config,
    https: bool,
    form_token: Option<&str>,
) -> bool {
    let secret =
        cookies::csrf_secret_from(cookies::request_cookie(request, &config.csrf.cookie_name));
    let token = request
        .get(config.csrf.header_name.as_str())
        .and_then(|v| v.to_str().ok())
        .or(form_token);
    let token_ok =
        matches!((&secret, token), (Some(s), Some(t)) if cookies::csrf_token_matches(s, t));
    let referer_ok = !https || cookies::referer_allowed(request, config);
    token_ok && cookies::origin_allowed(request, config) && referer_ok
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
    /// The request came over HTTPS (`server.secure_proxy_ssl_header`).
    https: bool,
    /// The request's headers, kept for a check the handler makes (the
    /// provider redirect's CSRF token, its own origin).
    request_headers: Option<HeaderMap>,
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
        let operation_id = OperationId::parse(&rqctx.endpoint.operation_id);
        Call::start_as(rqctx, client, operation_id).await
    }

    /// [`Call::start`] for a request admitted as `operation_id` (a method
    /// the path lacks is admitted as the path's operation).
    pub async fn start_as<S, A: Answer>(
        rqctx: &'a RequestContext<ServerContext>,
        client: &ClientParam<S>,
        operation_id: Option<OperationId>,
    ) -> Result<Call<'a>, A> {
        let ctx = rqctx.context();
        let config: &Config = &ctx.config;
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
        let https = client::is_secure(request, config);
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
            // The provider redirect is a plain HTML form post: its token
            // may come in the form (`csrfmiddlewaretoken`), which only the
            // handler reads ([`Call::csrf_passes`]).
            let form_post = operation_id == OperationId::ProviderRedirectStart;
            if unsafe_method && !form_post && !csrf_passes(request, config, https, None) {
                // Django's CSRF 403 sets no cookie.
                return Err(error_reply(app::Error::CsrfFailed, headers));
            }
            csrf_secret = Some(secret.unwrap_or_else(cookies::new_csrf_secret));
        }

        let now_ms = app::now_ms();
        let credential = client::credential(request, kind, config);
        let mut session = match ctx.admit(session_client(kind), credential, now_ms).await {
            Ok(Admitted::Session(session)) => *session,
            Ok(Admitted::Gone) => return Err(gone_reply::<A>(config, now_ms, headers)),
            Err(error) => return Err(error_reply(error, headers)),
        };

        if kind == ClientKind::Browser {
            session.trust.browser = true;
            session.trust.received =
                cookies::request_cookie(request, &config.mfa.trust_cookie_name);
        }

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
        let request_headers =
            (operation_id == OperationId::ProviderRedirectStart).then(|| request.clone());
        Ok(Call {
            request_headers,
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
            https,
        })
    }

    /// The CSRF check deferred to the handler (the provider redirect's
    /// form post), with the form's `csrfmiddlewaretoken`.
    pub fn csrf_passes(&self, form_token: Option<&str>) -> bool {
        self.request_headers
            .as_ref()
            .is_some_and(|h| csrf_passes(h, self.config, self.https, form_token))
    }

    /// This server's origin as the client reached it (`https` behind a
    /// TLS proxy per `server.secure_proxy_ssl_header`).
    pub fn own_origin(&self) -> String {
        client::own_origin(self.request_headers.as_ref(), self.https)
    }

    /// A redirect answer, after saving the session and setting its cookies.
    pub async fn finish_redirect(mut self, location: Result<String, app::Error>) -> Redirect {
        let result = match location {
            Ok(location) => self.persist().await.map(|_| location),
            Err(error) => Err(error),
        };
        match result {
            Ok(location) => {
                let mut redirect = Redirect::to(location);
                redirect.headers_mut().extend(self.headers);
                redirect
            }
            Err(error) => error_reply(error, self.headers),
        }
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
                cookies::set_session_cookie(&mut self.headers, self.config, None, self.https);
            } else if let Some(token) = &exposed {
                cookies::set_session_cookie(
                    &mut self.headers,
                    self.config,
                    Some(token),
                    self.https,
                );
            } else {
                self.forget_stale_cookie();
            }
            if let Some(value) = self.session.trust.issue.take() {
                cookies::set_trust_cookie(&mut self.headers, self.config, &value, self.https);
            }
            if self.session.rotate_csrf {
                self.csrf_secret = Some(cookies::new_csrf_secret());
            }
            if let Some(secret) = &self.csrf_secret {
                cookies::set_csrf_cookie(&mut self.headers, self.config, secret, self.https);
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
            cookies::set_session_cookie(&mut self.headers, self.config, None, self.https);
            session.forget_cookie = false;
        }
    }

    /// The answer of a plain operation: the success body, or the envelope of
    /// the error.
    pub async fn finish<T, const STATUS: u16>(
        self,
        result: Result<T, app::Error>,
    ) -> Reply<T, STATUS> {
        self.finish_with(result, Reply::success).await
    }

    /// [`Call::finish`] with a success body serialised ahead of time.
    pub async fn finish_prepared<T, const STATUS: u16>(
        self,
        body: Prepared<T>,
    ) -> Reply<T, STATUS> {
        self.finish_with(Ok(body), Reply::prepared).await
    }

    async fn finish_with<B, T, const STATUS: u16>(
        mut self,
        result: Result<B, app::Error>,
        success: fn(B) -> Reply<T, STATUS>,
    ) -> Reply<T, STATUS> {
        let result = match result {
            Ok(body) => self.persist().await.map(|_| body),
            Err(error) => Err(error),
        };
        match result {
            Ok(body) => {
                let mut reply = success(body);
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
        let mut answer = A::serialized(status, body);
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

    /// The 401 with the anonymous flows (`is_authenticated` false, or null
    /// for allauth's `UnauthorizedResponse`).
    fn anonymous_body(
        &self,
        is_authenticated: Option<bool>,
        session_token: Option<types::SessionTokenValue>,
    ) -> Result<(StatusCode, Serialized), app::Error> {
        let flows = app_session::anonymous_flows(
            self.config,
            Built::CURRENT,
            self.client,
            &self.session.data,
            self.now_ms,
        );
        let body = reply::serialized(&types::AuthenticationResponse {
            data: types::AuthenticationFlows {
                flows: reply::flows(&flows),
            },
            meta: types::AuthenticationMeta {
                is_authenticated,
                session_token,
            },
            status: reply::status(401)?,
        })?;
        Ok((StatusCode::UNAUTHORIZED, body))
    }

    /// The answer of `outcome` for the session as it is now, typed as the
    /// document's response bodies.
    fn auth_body(
        &self,
        outcome: AuthOutcome,
        token: Option<String>,
        jwts: Option<app::sessions::jwt::TokenPair>,
    ) -> Result<(StatusCode, Serialized), app::Error> {
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
                reply::serialized(&types::StatusOkResponse {
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::Emails(addresses) => (
                StatusCode::OK,
                reply::serialized(&types::EmailAddressesResponse {
                    data: addresses.iter().map(reply::email_address).collect(),
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::PhoneNumbers(numbers) => (
                StatusCode::OK,
                reply::serialized(&types::PhoneNumbersResponse {
                    data: numbers
                        .into_iter()
                        .map(|(phone, verified)| reply::phone_number(phone, verified))
                        .collect(),
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::PhoneChanging(phone) => (
                StatusCode::ACCEPTED,
                reply::serialized(&types::PhoneNumberChangeResponse {
                    data: vec![reply::phone_number(phone, false)],
                    status: reply::status(202)?,
                })?,
            ),
            AuthOutcome::Sessions(entries) => (
                StatusCode::OK,
                reply::serialized(&types::SessionsResponse {
                    data: entries.iter().map(reply::session).collect(),
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::Refreshed {
                access_token,
                refresh_token,
            } => (
                StatusCode::OK,
                reply::serialized(&types::RefreshTokenResponse {
                    data: types::RefreshedTokens {
                        access_token: types::AccessToken(access_token),
                        refresh_token: refresh_token.map(types::RefreshToken),
                    },
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::Session => match &self.session.user {
                Some(user) => (
                    StatusCode::OK,
                    reply::serialized(&types::AuthenticatedResponse {
                        data: types::Authenticated {
                            methods: reply::methods(&self.session.data.methods),
                            user: reply::user(user),
                        },
                        meta: signed_in_meta(session_token),
                        status: reply::status(200)?,
                    })?,
                ),
                None => self.anonymous_body(Some(false), session_token)?,
            },
            AuthOutcome::Authenticators(list) => (
                StatusCode::OK,
                reply::serialized(&types::AuthenticatorsResponse {
                    data: list.iter().map(reply::authenticator).collect(),
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::Authenticator(view) => (StatusCode::OK, reply::authenticator_body(&view)?),
            AuthOutcome::TotpOffer { secret, url } => (
                StatusCode::NOT_FOUND,
                reply::serialized(&types::TotpAuthenticatorNotFoundResponse {
                    meta: types::TotpSetupMeta {
                        secret,
                        totp_url: url,
                    },
                    status: reply::status(404)?,
                })?,
            ),
            AuthOutcome::Missing => (
                StatusCode::NOT_FOUND,
                reply::serialized(&serde_json::json!({"status": 404}))?,
            ),
            AuthOutcome::CreationOptions(options) => (
                StatusCode::OK,
                reply::serialized(&types::WebAuthnCreationOptionsResponse {
                    data: types::WebAuthnCreationOptionsData {
                        creation_options: types::WebAuthnCreationOptions(reply::object(options)?),
                    },
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::RequestOptions(options) => (
                StatusCode::OK,
                reply::serialized(&types::WebAuthnRequestOptionsResponse {
                    data: types::WebAuthnRequestOptionsData {
                        request_options: types::WebAuthnRequestOptions(reply::object(options)?),
                    },
                    meta: session_token.map(|token| types::CeremonySessionMeta {
                        session_token: Some(token),
                    }),
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::WebauthnAdded {
                view,
                recovery_codes_generated,
            } => (
                StatusCode::OK,
                reply::serialized(&types::AddWebAuthnAuthenticatorResponse {
                    data: reply::webauthn_authenticator(&view)?,
                    meta: types::RecoveryCodesGeneratedMeta {
                        recovery_codes_generated,
                    },
                    status: reply::status(200)?,
                })?,
            ),
            AuthOutcome::NoStage => self.anonymous_body(None, session_token)?,
            AuthOutcome::ReauthenticationRequired(flows) => {
                let Some(user) = self.session.user.as_ref() else {
                    return Err(app::Error::Internal(
                        "reauthentication asked of an anonymous session".into(),
                    ));
                };
                (
                    StatusCode::UNAUTHORIZED,
                    reply::serialized(&types::ReauthenticationResponse {
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

impl Call<'_> {
    /// allauth's answer to a method the path lacks: 405 with `Allow`, an
    /// envelope with no errors (allauth's body is empty).
    pub fn method_not_allowed<A: Answer>(self, allow: &str) -> A {
        let mut answer = A::envelope(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"status": 405}),
        );
        answer.headers_mut().extend(self.headers);
        if let Ok(value) = HeaderValue::from_str(allow) {
            answer.headers_mut().insert(http::header::ALLOW, value);
        }
        answer
    }
}

/// The app's 410: the session named by the client is gone.
pub fn gone_reply<A: Answer>(config: &Config, now_ms: i64, headers: HeaderMap) -> A {
    let flows = app_session::anonymous_flows(
        config,
        Built::CURRENT,
        ClientKind::App,
        &SessionData::default(),
        now_ms,
    );
    let body = reply::status(410).and_then(|status| {
        reply::serialized(&types::SessionGoneResponse {
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
        Ok(body) => A::serialized(StatusCode::GONE, body),
        Err(error) => error_reply(error, HeaderMap::new()),
    };
    answer.headers_mut().extend(headers);
    answer
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
