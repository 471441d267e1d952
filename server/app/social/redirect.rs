//! The provider round trips:
//!
//! * **redirect** (browser): `auth/provider/redirect` keeps a state in the
//!   session (at most ten, the oldest dropped, as allauth's `statekit`) and
//!   sends the browser to the provider; the provider sends it back to
//!   allauth's callback path (`/accounts/<provider>/login/callback/`, for
//!   OpenID Connect `/accounts/oidc/<provider_id>/login/callback/`), which
//!   takes the state (once), exchanges the code and ends with a redirect
//!   to the frontend's `callback_url`, with `error` and `error_process` on
//!   failure.
//! * **token** (any client): `auth/provider/token` with an ID token or
//!   access token the client got itself, verified with the provider.
//! * **dummy**: the development provider's page at
//!   `/accounts/dummy/authenticate/`, where one types the identity.

use serde_json::{Map, Value};

use crate::app::account::accounts::Deps;
use crate::app::security::sealed;
use crate::app::sessions::session::LiveSession;
use crate::app::{Error, FieldError};

use super::flows::{self, Failure};
use super::providers::{self, Engine, Provider};
use super::remote::{Granted, RemoteError};
use super::{Process, RedirectState, SealedTokens, SocialLogin};

/// allauth's `statekit.MAX_STATES`.
const MAX_STATES: usize = 10;
/// What the sealed tokens are sealed for.
pub(crate) const TOKEN_PURPOSE: &str = "socialaccount-token";

/// `url` with `params` added to its query (before any fragment).
pub fn add_query(url: &str, params: &[(&str, &str)]) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let joiner = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{joiner}{query}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Where a failure is reported: `next` (the frontend's callback URL)
/// when known, else `socialaccount_login_error`, else `/`.
pub fn error_location(
    deps: &Deps<'_>,
    next: Option<&str>,
    error: &str,
    process: Process,
) -> String {
    let target = next
        .map(str::to_string)
        .or_else(|| {
            deps.config
                .headless
                .frontend_urls
                .socialaccount_login_error
                .clone()
        })
        .unwrap_or_else(|| "/".to_string());
    add_query(
        &target,
        &[("error", error), ("error_process", process.as_str())],
    )
}

fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return None;
    }
    Some(parsed.origin().ascii_serialization())
}

/// allauth's `is_safe_url`: a path on this site, or a URL of an allowed
/// origin (this server's own, the CORS origins, the frontend URLs'). No
/// open redirect through `callback_url`.
pub fn is_safe_url(deps: &Deps<'_>, own_origin: &str, url: &str) -> bool {
    let url = url.trim();
    if url.is_empty() || url.contains('\\') || url.chars().any(char::is_control) {
        return false;
    }
    if url.starts_with('/') {
        return !url.starts_with("//");
    }
    let Some(origin) = origin_of(url) else {
        return false;
    };
    let config = deps.config;
    let urls = &config.headless.frontend_urls;
    let frontend = [
        &urls.account_confirm_email,
        &urls.account_reset_password,
        &urls.account_reset_password_from_key,
        &urls.account_signup,
        &urls.socialaccount_login_error,
    ];
    origin == own_origin
        || config
            .cors
            .allowed_origins
            .iter()
            .any(|o| o.trim_end_matches('/') == origin)
        || frontend
            .into_iter()
            .flatten()
            .filter_map(|u| origin_of(u))
            .any(|o| o == origin)
}

/// `POST auth/provider/redirect` with a valid form: the provider's
/// authorization URL (or the dummy page), the state kept in the session.
/// `Err` is the frontend error URL to go to instead.
pub async fn start(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    own_origin: &str,
    provider_id: &str,
    callback_url: &str,
    process: Process,
) -> Result<String, String> {
    let error = |code: &str| error_location(deps, None, code, Process::Login);
    if !is_safe_url(deps, own_origin, callback_url) {
        return Err(error("unknown"));
    }
    let Some(provider) = providers::get(deps.config, provider_id, None) else {
        return Err(error("unknown"));
    };
    let state_id = crate::app::security::secrets::random_string(
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        16,
    );
    let mut state = RedirectState {
        provider: provider.sub_id.clone(),
        client_id: provider.client_id().map(str::to_string),
        process,
        next: callback_url.to_string(),
        pkce_verifier: None,
        nonce: None,
        at: deps.now_ms,
    };
    let location = match &provider.engine {
        Engine::Dummy => add_query("/accounts/dummy/authenticate/", &[("state", &state_id)]),
        _ => {
            let redirect_uri = format!("{own_origin}{}", provider.callback_path());
            let scope = provider.scope(deps.config);
            match deps
                .remote
                .authorization(&provider, &redirect_uri, &state_id, &scope)
                .await
            {
                Ok(authorization) => {
                    state.pkce_verifier = authorization.pkce_verifier;
                    state.nonce = authorization.nonce;
                    authorization.url
                }
                Err(e) => {
                    tracing::warn!(provider = %provider.sub_id, error = %e, "provider redirect failed");
                    return Err(error_location(deps, Some(callback_url), "unknown", process));
                }
            }
        }
    };
    let states = session.social_states_mut();
    while states.len() >= MAX_STATES {
        let oldest = states
            .iter()
            .min_by_key(|(_, s)| s.at)
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => states.remove(&id),
            None => break,
        };
    }
    states.insert(state_id, state);
    Ok(location)
}

/// Takes the state named by the callback (once).
fn take_state(session: &mut LiveSession, state_id: Option<&str>) -> Option<RedirectState> {
    let id = state_id.filter(|s| !s.is_empty())?;
    if !session.data.social_states.contains_key(id) {
        return None;
    }
    session.social_states_mut().remove(id)
}

fn seal_tokens(deps: &Deps<'_>, granted: &Granted) -> SealedTokens {
    let secret = deps.secret();
    SealedTokens {
        token: sealed::seal(secret, TOKEN_PURPOSE, &granted.access_token),
        token_secret: granted
            .refresh_token
            .as_deref()
            .map(|t| sealed::seal(secret, TOKEN_PURPOSE, t))
            .unwrap_or_default(),
        expires_at: granted.expires_in.map(|d| {
            deps.now_ms
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
        }),
    }
}

/// Who the provider says the user is, from the code's tokens.
async fn identify(
    deps: &Deps<'_>,
    provider: &Provider,
    granted: &Granted,
    nonce: Option<&str>,
    posted: &Map<String, Value>,
) -> Result<SocialLogin, RemoteError> {
    let remote = deps.remote;
    let mut login = match &provider.engine {
        Engine::Apple { .. } => {
            // The token endpoint's ID token, else the one Apple posted.
            let id_token = granted
                .id_token
                .clone()
                .or_else(|| {
                    posted
                        .get("id_token")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .filter(|t| !t.is_empty())
                .ok_or_else(|| RemoteError("Apple sent no ID token".into()))?;
            let claims = remote
                .verify_id_token(provider, &id_token, &provider.audiences(), None)
                .await?;
            let user = posted
                .get("user")
                .and_then(Value::as_str)
                .and_then(|u| serde_json::from_str::<Value>(u).ok());
            super::apple_login(provider, claims, user)
        }
        Engine::Oidc { .. } => {
            let mut data = Map::new();
            if provider.fetch_userinfo() || granted.id_token.is_none() {
                data.insert(
                    "userinfo".into(),
                    remote.userinfo(provider, &granted.access_token).await?,
                );
            }
            if let Some(id_token) = &granted.id_token {
                let audiences = provider.audiences();
                let claims = remote
                    .verify_id_token(provider, id_token, &audiences, nonce)
                    .await?;
                data.insert("id_token".into(), claims);
            }
            super::oidc_login(provider, Value::Object(data))
        }
        Engine::OAuth2(spec) => {
            let (profile, emails) = remote
                .profile(
                    provider,
                    &granted.access_token,
                    providers::query_email(deps.config),
                )
                .await?;
            super::oauth2_login(provider, spec, profile, emails)
        }
        Engine::Dummy => None,
    }
    .ok_or_else(|| RemoteError("the provider's data has no usable id".into()))?;
    login.tokens = Some(seal_tokens(deps, granted));
    Ok(login)
}

/// The code of a failed provider login, as the callback reports it.
fn failure_code(failure: &Failure) -> &'static str {
    match failure {
        Failure::Code(code) => code,
        Failure::SignupClosed => "signup_closed",
        Failure::PermissionDenied => "permission_denied",
        Failure::Reauthenticate(_) => "reauthentication_required",
        Failure::Error(Error::Invalid(errors)) => errors.first().map_or("unknown", |e| e.code),
        Failure::Error(_) => "unknown",
    }
}

/// Completes a login the provider vouched for and says where the browser
/// goes: `next`, with an error when the session ended up neither logged
/// in nor waiting in a stage (allauth's headless `complete_login`).
async fn finish(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    provider: &Provider,
    login: SocialLogin,
    state: &RedirectState,
) -> Result<String, Error> {
    match flows::complete(deps, session, provider, login, state.process).await {
        Ok(()) => {
            let settled = session.is_authenticated()
                || session.data.live_login(deps.config, deps.now_ms).is_some();
            if settled || state.process == Process::Connect {
                Ok(state.next.clone())
            } else {
                Ok(error_location(
                    deps,
                    Some(&state.next),
                    "unknown",
                    state.process,
                ))
            }
        }
        Err(Failure::Error(error @ Error::Internal(_))) => Err(error),
        Err(failure) => Ok(error_location(
            deps,
            Some(&state.next),
            failure_code(&failure),
            state.process,
        )),
    }
}

/// The provider's return to `/accounts/…/login/callback/` with `query`:
/// where the browser goes next.
pub async fn callback(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    own_origin: &str,
    provider_id: &str,
    query: &Map<String, Value>,
) -> Result<String, Error> {
    let param = |k: &str| query.get(k).and_then(Value::as_str);
    let Some(state) = take_state(session, param("state")) else {
        return Ok(error_location(deps, None, "unknown", Process::Login));
    };
    let fail = |code: &str| Ok(error_location(deps, Some(&state.next), code, state.process));
    let provider = providers::get(deps.config, &state.provider, state.client_id.as_deref())
        .filter(|p| p.sub_id == provider_id);
    let Some(provider) = provider else {
        return fail("unknown");
    };
    let code = match (param("error"), param("code")) {
        (None, Some(code)) if !code.is_empty() => code,
        (Some("access_denied"), _) => return fail("cancelled"),
        _ => return fail("unknown"),
    };
    let redirect_uri = format!("{own_origin}{}", provider.callback_path());
    let identified = async {
        let granted = deps
            .remote
            .exchange(
                &provider,
                &redirect_uri,
                code,
                state.pkce_verifier.as_deref(),
            )
            .await?;
        identify(deps, &provider, &granted, state.nonce.as_deref(), query).await
    }
    .await;
    let login = match identified {
        Ok(login) => login,
        Err(e) => {
            tracing::warn!(provider = %provider.sub_id, error = %e, "provider login failed");
            return fail("unknown");
        }
    };
    finish(deps, session, &provider, login, &state).await
}

/// What the dummy provider's page does with a request.
#[derive(Debug)]
pub enum DummyPage {
    /// Show the form (again, with `error`).
    Form {
        state: String,
        error: Option<String>,
    },
    /// Go there.
    Redirect(String),
}

/// `/accounts/dummy/authenticate/?state=…`: without `id`, the form; with
/// it (or `action=cancel`), the login.
pub async fn dummy_authenticate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    query: &Map<String, Value>,
) -> Result<DummyPage, Error> {
    let state_id = query
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if state_id.is_empty() || !session.data.social_states.contains_key(&state_id) {
        return Ok(DummyPage::Redirect(error_location(
            deps,
            None,
            "unknown",
            Process::Login,
        )));
    }
    let cancel = query.get("action").and_then(Value::as_str) == Some("cancel");
    if !cancel && !query.contains_key("id") {
        return Ok(DummyPage::Form {
            state: state_id,
            error: None,
        });
    }
    let Some(provider) = providers::get(deps.config, "dummy", None) else {
        return Ok(DummyPage::Redirect(error_location(
            deps,
            None,
            "unknown",
            Process::Login,
        )));
    };
    let login = if cancel {
        None
    } else {
        super::dummy_login(&provider, query)
    };
    if !cancel && login.is_none() {
        return Ok(DummyPage::Form {
            state: state_id,
            error: Some(
                "Enter a whole number as the account id, and a valid email address or none.".into(),
            ),
        });
    }
    let Some(state) = take_state(session, Some(&state_id)) else {
        return Ok(DummyPage::Redirect(error_location(
            deps,
            None,
            "unknown",
            Process::Login,
        )));
    };
    match login {
        None => Ok(DummyPage::Redirect(error_location(
            deps,
            Some(&state.next),
            "cancelled",
            state.process,
        ))),
        Some(login) => Ok(DummyPage::Redirect(
            finish(deps, session, &provider, login, &state).await?,
        )),
    }
}

fn token_error(code: &'static str, message: &str) -> Failure {
    Failure::Error(Error::Invalid(vec![FieldError::new(
        code,
        Some("token"),
        message,
    )]))
}

fn invalid_token() -> Failure {
    token_error("invalid_token", "The token is not valid.")
}

/// `POST auth/provider/token` (allauth's `ProviderTokenInput` and
/// `complete_token_login`): the provider and tokens checked in allauth's
/// order, the identity verified with the provider, then the login.
pub async fn token_login(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    provider_id: &str,
    process: Process,
    token: &Map<String, Value>,
) -> Result<(), Failure> {
    // An empty token is a missing one (allauth's required field).
    if token.is_empty() {
        return Err(Failure::Error(Error::Invalid(vec![
            crate::app::account::accounts::required("token"),
        ])));
    }
    // allauth: required unless the provider class uses no app (`dummy`);
    // an `openid_connect` app's provider_id is no class, so it needs one.
    let client_id_required = provider_id != "dummy";
    let client_id = token.get("client_id");
    if client_id_required && !client_id.is_some_and(Value::is_string) {
        return Err(token_error(
            "client_id_required",
            "A client id is required.",
        ));
    }
    let client_id = client_id.and_then(Value::as_str);
    let Some(provider) = providers::get(deps.config, provider_id, client_id) else {
        return Err(invalid_token());
    };
    if !provider.supports_token() {
        return Err(Failure::Error(Error::Invalid(vec![FieldError::new(
            "token_authentication_not_supported",
            Some("provider"),
            "This provider does not support token authentication.",
        )])));
    }
    if let (Some(given), Some(app)) = (client_id, provider.client_id()) {
        if given != app {
            return Err(token_error(
                "client_id_mismatch",
                "The client id does not match.",
            ));
        }
    }
    let id_token = token.get("id_token");
    let access_token = token.get("access_token");
    let bad_type = |v: Option<&Value>| v.is_some_and(|v| !v.is_string() && !v.is_null());
    let present = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    if bad_type(id_token)
        || bad_type(access_token)
        || (!present(id_token) && !present(access_token))
    {
        return Err(token_error(
            "token_required",
            "An ID token or access token is required.",
        ));
    }
    let id_token = id_token.and_then(Value::as_str).filter(|s| !s.is_empty());
    let access_token = access_token
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let login = match &provider.engine {
        Engine::Dummy => id_token
            .and_then(|t| serde_json::from_str::<Map<String, Value>>(t).ok())
            .and_then(|form| super::dummy_login(&provider, &form)),
        Engine::Apple { .. } => match id_token {
            Some(id_token) => match deps
                .remote
                .verify_id_token(&provider, id_token, &provider.audiences(), None)
                .await
            {
                Ok(claims) => super::apple_login(&provider, claims, None),
                Err(e) => {
                    tracing::info!(provider = %provider.sub_id, error = %e, "provider token refused");
                    None
                }
            },
            None => None,
        },
        Engine::Oidc { .. } => {
            let audiences = provider.audiences();
            let verified = match (id_token, access_token) {
                (Some(id_token), _) => deps
                    .remote
                    .verify_id_token(&provider, id_token, &audiences, None)
                    .await
                    .map(Some),
                // Google also takes an access token (its userinfo says who).
                (None, Some(access)) if provider.id == "google" => deps
                    .remote
                    .userinfo(&provider, access)
                    .await
                    .map(|info| Some(serde_json::json!({ "userinfo": info }))),
                _ => Ok(None),
            };
            match verified {
                Ok(Some(data)) => super::oidc_login(&provider, data),
                Ok(None) => None,
                Err(e) => {
                    tracing::info!(provider = %provider.sub_id, error = %e, "provider token refused");
                    None
                }
            }
        }
        Engine::OAuth2(_) => None,
    };
    let Some(mut login) = login else {
        return Err(invalid_token());
    };
    if let Some(access) = access_token {
        login.tokens = Some(seal_tokens(
            deps,
            &Granted {
                access_token: access.to_string(),
                refresh_token: None,
                expires_in: None,
                id_token: None,
            },
        ));
    }
    flows::complete(deps, session, &provider, login, process).await
}
