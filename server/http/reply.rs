//! Answers: domain values of the application layer turned into the
//! generated API types, so that the compiler holds every answer body to the
//! document (users, authentication records, flows, addresses, sessions,
//! keys); the one conversion of an application error into the allauth
//! envelope; and the headers every answer carries.

use allauth_api::runtime::{Answer, ErrorItem, Serialized};
use allauth_api::types;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::account::emails::AddressView;
use crate::app::mfa::{AuthenticatorView, Detail};
use crate::app::sessions::jwt::PublicJwk;
use crate::app::sessions::session::{AuthRecord, Flow, FlowKind, UserView};
use crate::app::sessions::usersessions::SessionEntry;
use crate::app::social::flows::AccountView;
use crate::app::social::ProviderInfo;
use crate::app::{self, Error};
use crate::config::MfaType;
use crate::http::ServerContext;

pub fn user(view: &UserView) -> types::User {
    types::User {
        display: view.display(),
        email: view.email.clone().map(types::Email),
        has_usable_password: view.has_usable_password,
        id: Some(view.id),
        username: view.username.clone().map(types::Username),
    }
}

pub fn email_address(view: &AddressView) -> types::EmailAddress {
    types::EmailAddress {
        email: types::Email(view.email.clone()),
        primary: view.primary,
        verified: view.verified,
    }
}

/// Unix milliseconds as the document's timestamp (seconds, fractional).
fn timestamp(ms: i64) -> types::Timestamp {
    types::Timestamp(ms as f64 / 1000.0)
}

pub fn session(entry: &SessionEntry) -> types::Session {
    types::Session {
        created_at: timestamp(entry.created_at),
        id: entry.id,
        ip: entry.ip.clone(),
        is_current: entry.is_current,
        last_seen_at: entry.last_seen_at.map(timestamp),
        user_agent: entry.user_agent.clone(),
    }
}

/// The JWK Set of the RS256 verifying key.
pub fn jwks(key: &PublicJwk) -> types::JwksResponse {
    types::JwksResponse {
        keys: vec![types::Jwk {
            alg: "RS256".into(),
            e: key.e.clone(),
            kid: key.kid.clone(),
            kty: "RSA".into(),
            n: key.n.clone(),
            use_: "sig".into(),
        }],
    }
}

pub fn method(record: &AuthRecord) -> types::AuthenticationMethod {
    match record {
        AuthRecord::Password {
            at,
            email,
            username,
            reauthenticated,
        } => types::PasswordAuthenticationMethod {
            at: types::Timestamp(*at),
            email: email.clone().map(types::Email),
            method: types::PasswordAuthenticationMethodMethod::Password,
            reauthenticated: reauthenticated.then_some(true),
            username: username.clone().map(types::Username),
        }
        .into(),
        AuthRecord::PasswordReset { at, email } => types::PasswordResetAuthenticationMethod {
            at: types::Timestamp(*at),
            email: email.clone().map(types::Email),
            method: types::PasswordResetAuthenticationMethodMethod::PasswordReset,
            phone: None,
        }
        .into(),
        AuthRecord::Code { at, email, phone } => types::CodeAuthenticationMethod {
            at: types::Timestamp(*at),
            email: email.clone().map(types::Email),
            method: types::CodeAuthenticationMethodMethod::Code,
            phone: phone.clone().map(types::Phone),
        }
        .into(),
        AuthRecord::Socialaccount { at, provider, uid } => {
            types::SocialAccountAuthenticationMethod {
                at: types::Timestamp(*at),
                method: types::SocialAccountAuthenticationMethodMethod::Socialaccount,
                provider: types::ProviderId(provider.clone()),
                uid: types::ProviderAccountUid(uid.clone()),
            }
            .into()
        }
        AuthRecord::Mfa {
            at,
            id,
            kind,
            reauthenticated,
            passwordless,
        } => types::MfaAuthenticationMethod {
            at: types::Timestamp(*at),
            id: types::AuthenticatorId(*id),
            method: types::MfaAuthenticationMethodMethod::Mfa,
            passwordless: passwordless.then_some(true),
            reauthenticated: reauthenticated.then_some(true),
            type_: authenticator_type(*kind),
        }
        .into(),
    }
}

pub fn phone_number(phone: String, verified: bool) -> types::PhoneNumber {
    types::PhoneNumber {
        phone: types::Phone(phone),
        verified,
    }
}

pub fn authenticator_type(kind: MfaType) -> types::AuthenticatorType {
    match kind {
        MfaType::RecoveryCodes => types::AuthenticatorType::RecoveryCodes,
        MfaType::Totp => types::AuthenticatorType::Totp,
        MfaType::Webauthn => types::AuthenticatorType::Webauthn,
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An authenticator as listed (never with codes).
pub fn authenticator(view: &AuthenticatorView) -> types::Authenticator {
    let created_at = timestamp(view.created_at);
    let last_used_at = view.last_used_at.map(|ms| timestamp(ms).0);
    match &view.detail {
        Detail::Totp => types::TotpAuthenticator {
            created_at,
            last_used_at,
            type_: types::TotpAuthenticatorType::Totp,
        }
        .into(),
        Detail::RecoveryCodes { total, unused, .. } => types::RecoveryCodesAuthenticator {
            created_at,
            last_used_at,
            total_code_count: count(*total),
            type_: types::RecoveryCodesAuthenticatorType::RecoveryCodes,
            unused_code_count: count(*unused),
        }
        .into(),
        Detail::Webauthn { name, passwordless } => types::WebAuthnAuthenticator {
            created_at,
            id: types::AuthenticatorId(view.id),
            is_passwordless: *passwordless,
            last_used_at,
            name: name.clone(),
            type_: types::WebAuthnAuthenticatorType::Webauthn,
        }
        .into(),
    }
}

/// The 200 body of one authenticator: the TOTP answer, or the recovery
/// codes with the unused codes when they may be shown.
pub fn authenticator_body(view: &AuthenticatorView) -> Result<Serialized, Error> {
    let created_at = timestamp(view.created_at);
    let last_used_at = view.last_used_at.map(|ms| timestamp(ms).0);
    match &view.detail {
        Detail::RecoveryCodes {
            total,
            unused,
            codes,
        } => serialized(&types::RecoveryCodesResponse {
            data: types::SensitiveRecoveryCodesAuthenticator {
                created_at,
                last_used_at,
                total_code_count: count(*total),
                type_: types::SensitiveRecoveryCodesAuthenticatorType::RecoveryCodes,
                unused_code_count: count(*unused),
                unused_codes: codes
                    .iter()
                    .flatten()
                    .cloned()
                    .map(types::AuthenticatorCode)
                    .collect(),
            },
            status: status(200)?,
        }),
        Detail::Totp => serialized(&types::TotpAuthenticatorResponse {
            data: types::TotpAuthenticator {
                created_at,
                last_used_at,
                type_: types::TotpAuthenticatorType::Totp,
            },
            status: status(200)?,
        }),
        Detail::Webauthn { .. } => serialized(&types::WebAuthnAuthenticatorResponse {
            data: webauthn_authenticator(view)?,
            status: status(200)?,
        }),
    }
}

/// A WebAuthn authenticator as the document types it.
pub fn webauthn_authenticator(
    view: &AuthenticatorView,
) -> Result<types::WebAuthnAuthenticator, Error> {
    match authenticator(view) {
        types::Authenticator::WebAuthnAuthenticator(found) => Ok(found),
        _ => Err(Error::Internal("not a WebAuthn authenticator".into())),
    }
}

/// A JSON object (WebAuthn options) as the document's free-form object.
pub fn object(value: Value) -> Result<serde_json::Map<String, Value>, Error> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::Internal("WebAuthn options are not an object".into())),
    }
}

pub fn methods(records: &[AuthRecord]) -> Vec<types::AuthenticationMethod> {
    records.iter().map(method).collect()
}

fn flow_id(kind: FlowKind) -> types::FlowId {
    match kind {
        FlowKind::Login => types::FlowId::Login,
        FlowKind::LoginByCode => types::FlowId::LoginByCode,
        FlowKind::Signup => types::FlowId::Signup,
        FlowKind::MfaLoginWebauthn => types::FlowId::MfaLoginWebauthn,
        FlowKind::VerifyEmail => types::FlowId::VerifyEmail,
        FlowKind::VerifyPhone => types::FlowId::VerifyPhone,
        FlowKind::MfaAuthenticate => types::FlowId::MfaAuthenticate,
        FlowKind::MfaTrust => types::FlowId::MfaTrust,
        FlowKind::MfaSignupWebauthn => types::FlowId::MfaSignupWebauthn,
        FlowKind::PasswordResetByCode => types::FlowId::PasswordResetByCode,
        FlowKind::Reauthenticate => types::FlowId::Reauthenticate,
        FlowKind::MfaReauthenticate => types::FlowId::MfaReauthenticate,
        FlowKind::ProviderRedirect => types::FlowId::ProviderRedirect,
        FlowKind::ProviderToken => types::FlowId::ProviderToken,
        FlowKind::ProviderSignup => types::FlowId::ProviderSignup,
    }
}

/// A provider as allauth's `_provider_data` describes it.
pub fn provider(info: &ProviderInfo) -> types::Provider {
    let mut flows = Vec::new();
    if info.redirect {
        flows.push(types::ProviderFlowId::ProviderRedirect);
    }
    if info.token {
        flows.push(types::ProviderFlowId::ProviderToken);
    }
    types::Provider {
        client_id: info.client_id.clone(),
        flows,
        id: types::ProviderId(info.id.clone()),
        name: info.name.clone(),
        openid_configuration_url: info.openid_configuration_url.clone(),
    }
}

/// A connected account.
pub fn provider_account(view: &AccountView) -> types::ProviderAccount {
    let info = view
        .provider
        .as_ref()
        .map(|p| p.info())
        .unwrap_or(ProviderInfo {
            id: view.provider_id.clone(),
            name: view.provider_id.clone(),
            redirect: false,
            token: false,
            client_id: None,
            openid_configuration_url: None,
        });
    types::ProviderAccount {
        display: view.display.clone(),
        provider: provider(&info),
        uid: types::ProviderAccountUid(view.uid.clone()),
    }
}

pub fn flows(flows: &[Flow]) -> Vec<types::Flow> {
    flows
        .iter()
        .map(|f| types::Flow {
            id: flow_id(f.id),
            is_pending: f.is_pending,
            provider: f.provider.as_ref().map(provider),
            providers: f
                .providers
                .iter()
                .flatten()
                .map(|id| types::ProviderId(id.clone()))
                .collect(),
            types: f.types.iter().copied().map(authenticator_type).collect(),
        })
        .collect()
}

/// The `status` member of an envelope, as the document types it.
pub fn status<S: TryFrom<i64>>(code: u16) -> Result<S, Error> {
    S::try_from(i64::from(code))
        .map_err(|_| Error::Internal(format!("status {code} does not fit its envelope")))
}

/// A typed response body as the bytes the answer carries.
pub fn serialized<T: Serialize>(body: &T) -> Result<Serialized, Error> {
    Serialized::of(body).map_err(|e| Error::Internal(format!("answer body: {e}")))
}

/// Turns the extractors' 400 items into the application's error.
pub fn invalid_input(errors: Vec<ErrorItem>) -> app::Error {
    app::Error::Invalid(errors.into_iter().map(field_error).collect())
}

/// One input error as the application's field error: `required`, or
/// `invalid` for any other problem the runtime found.
pub fn field_error(e: ErrorItem) -> app::FieldError {
    app::FieldError {
        code: if e.code == "required" {
            "required"
        } else {
            "invalid"
        },
        param: e.param,
        message: e.message,
    }
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
        app::Error::ConflictWith(fields) => (
            StatusCode::CONFLICT,
            fields
                .iter()
                .map(|f| ErrorItem::new(f.code, f.param.as_deref(), f.message.clone()))
                .collect(),
        ),
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

/// What `GET auth/provider/signup` shows.
pub fn provider_signup_info(
    config: &crate::config::Config,
    info: &crate::app::social::flows::SignupInfo,
) -> types::ProviderSignupInfo {
    let login = &info.login;
    let provider =
        crate::app::social::providers::get(config, &login.provider, login.client_id.as_deref());
    let (name, id) = provider
        .as_ref()
        .map(|p| (p.name.clone(), p.id.clone()))
        .unwrap_or_else(|| (login.provider.clone(), login.provider.clone()));
    let view = AccountView {
        uid: login.uid.clone(),
        display: crate::app::social::display(&name, &id, &login.extra_data),
        provider,
        provider_id: login.provider.clone(),
    };
    let display = info
        .username
        .clone()
        .or_else(|| info.email.clone())
        .unwrap_or_default();
    types::ProviderSignupInfo {
        account: provider_account(&view),
        email: login
            .emails
            .iter()
            .map(|e| types::EmailAddress {
                email: types::Email(e.email.clone()),
                primary: e.primary,
                verified: e.verified,
            })
            .collect(),
        user: types::User {
            display,
            email: info.email.clone().map(types::Email),
            has_usable_password: false,
            id: None,
            username: info.username.clone().map(types::Username),
        },
    }
}
