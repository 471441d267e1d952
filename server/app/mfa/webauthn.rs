//! WebAuthn as allauth's `mfa.webauthn` offers it: security keys and
//! passkeys as second factors, for reauthentication, and passkeys for
//! logging in alone. The ceremonies are webauthn-rs's (its core crate, so
//! that the options are allauth's: the user handle is the user's id as
//! text, user verification "preferred" for a second factor and "required"
//! for passkeys, `residentKey` "required" for passkeys and "discouraged"
//! otherwise, `credProps` asked for).
//!
//! Options and credentials travel in the JSON forms of the browser's
//! `PublicKeyCredential.parse…FromJSON()` and `toJSON()`. The ceremony's
//! state waits in the session (one at a time, as allauth's
//! `mfa.webauthn.state`) and is taken out by the answer, so that a
//! challenge serves once.
//!
//! An authenticator's `data` keeps what allauth keeps — `name`, and the
//! registration `credential` as the browser sent it (its
//! `clientExtensionResults.credProps.rk` tells a passkey) — plus the
//! verified credential webauthn-rs checks assertions with (`passkey`:
//! public key, counter, flags).

use serde::{Deserialize, Serialize};
use url::Url;
use webauthn_rs_core::proto::{
    AuthenticationState, Credential, PublicKeyCredential, RegisterPublicKeyCredential,
    RegistrationState, RequestRegistrationExtensions, UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

use crate::app::Error;
use crate::config::Config;
use crate::db::authenticators::Authenticator;

/// What a ceremony in progress waits with in the session.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "ceremony", rename_all = "snake_case")]
pub enum Ceremony {
    /// Adding a credential (for a signed-in user, or a passkey signup).
    Register {
        user_id: i64,
        passwordless: bool,
        state: Box<RegistrationState>,
    },
    /// Using one: a second factor or reauthentication for `user_id`, or a
    /// passkey login (`user_id` None: the credential names the user).
    Authenticate {
        user_id: Option<i64>,
        state: Box<AuthenticationState>,
    },
}

impl Ceremony {
    /// As the session keeps it.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// What the session kept, if it reads as a ceremony.
    pub fn from_value(value: Option<serde_json::Value>) -> Option<Ceremony> {
        serde_json::from_value(value?).ok()
    }
}

/// The `data` of a WebAuthn authenticator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebauthnData {
    pub name: String,
    /// The registration response as the browser sent it (allauth's form).
    pub credential: serde_json::Value,
    /// The verified credential (webauthn-rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<Credential>,
}

impl WebauthnData {
    pub fn of(row: &Authenticator) -> Option<WebauthnData> {
        serde_json::from_str(&row.data).ok()
    }

    /// allauth's `is_passwordless`: what the browser said of `credProps.rk`.
    pub fn is_passwordless(&self) -> Option<bool> {
        self.credential
            .get("clientExtensionResults")
            .and_then(|e| e.get("credProps"))
            .and_then(|p| p.get("rk"))
            .and_then(serde_json::Value::as_bool)
    }
}

/// The relying party of `config`: id, name and origins (see
/// [`relying_party`]).
fn core(config: &Config) -> Result<WebauthnCore, Error> {
    let party = relying_party(config);
    let origins: Vec<Url> = party
        .origins
        .iter()
        .filter_map(|o| Url::parse(o).ok())
        .collect();
    if origins.is_empty() {
        return Err(Error::Internal("no valid WebAuthn origin".into()));
    }
    Ok(WebauthnCore::new_unsafe_experts_only(
        &party.name,
        &party.id,
        origins,
        std::time::Duration::from_secs(300),
        Some(false),
        Some(config.mfa.webauthn_allow_insecure_origin),
    ))
}

/// The relying party as configured, with allauth's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub name: String,
    pub origins: Vec<String>,
}

/// `mfa.webauthn_rp_id` (default: the host of the frontend URLs, else
/// `localhost`), `mfa.webauthn_rp_name` (default: the site name) and
/// `mfa.webauthn_origins` (default: the frontend URLs' origins, else
/// `https://<rp id>`).
pub fn relying_party(config: &Config) -> RelyingParty {
    let site = crate::email::messages::site_name(config).map(str::to_owned);
    let id = config
        .mfa
        .webauthn_rp_id
        .clone()
        .or_else(|| {
            site.as_deref()
                .map(|s| s.rsplit_once(':').map_or(s, |(host, _)| host).to_owned())
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let name = config
        .mfa
        .webauthn_rp_name
        .clone()
        .or(site)
        .unwrap_or_else(|| id.clone());
    let mut origins = config.mfa.webauthn_origins.clone();
    if origins.is_empty() {
        for url in crate::email::messages::frontend_urls(config) {
            if let Ok(parsed) = Url::parse(url) {
                let origin = parsed.origin().ascii_serialization();
                if origin != "null" && !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
    }
    if origins.is_empty() {
        origins.push(format!("https://{id}"));
    }
    RelyingParty { id, name, origins }
}

fn incorrect_code() -> Error {
    Error::Invalid(vec![crate::app::FieldError::new(
        "incorrect_code",
        Some("credential"),
        "Incorrect code.",
    )])
}

/// The credentials of `rows` that webauthn-rs can check.
pub fn credentials(rows: &[Authenticator]) -> Vec<Credential> {
    rows.iter()
        .filter_map(WebauthnData::of)
        .filter_map(|d| d.passkey)
        .collect()
}

/// The creation options for a new credential of user `user_id` (named
/// `name`, shown as `display_name`), excluding `existing`; the ceremony to
/// keep in the session.
pub fn begin_registration(
    config: &Config,
    user_id: i64,
    name: &str,
    display_name: &str,
    existing: &[Credential],
    passwordless: bool,
) -> Result<(serde_json::Value, Ceremony), Error> {
    let core = core(config)?;
    let handle = user_id.to_string();
    let exclude = existing.iter().map(|c| c.cred_id.clone()).collect();
    let extensions = RequestRegistrationExtensions {
        cred_protect: None,
        uvm: None,
        cred_props: Some(true),
        min_pin_length: None,
        hmac_create_secret: None,
    };
    let builder = core
        .new_challenge_register_builder(handle.as_bytes(), name, display_name)
        .map_err(|e| Error::Internal(format!("webauthn options: {e:?}")))?
        .user_verification_policy(if passwordless {
            UserVerificationPolicy::Required
        } else {
            UserVerificationPolicy::Preferred
        })
        .require_resident_key(passwordless)
        .exclude_credentials(Some(exclude))
        .extensions(Some(extensions));
    let (options, state) = core
        .generate_challenge_register(builder)
        .map_err(|e| Error::Internal(format!("webauthn options: {e:?}")))?;
    let options =
        serde_json::to_value(&options).map_err(|e| Error::Internal(format!("options: {e}")))?;
    Ok((
        options,
        Ceremony::Register {
            user_id,
            passwordless,
            state: Box::new(state),
        },
    ))
}

/// Checks the browser's registration `credential` against the ceremony:
/// the verified credential, or `incorrect_code` (allauth's answer to any
/// credential that does not verify).
pub fn complete_registration(
    config: &Config,
    ceremony: Option<Ceremony>,
    user_id: i64,
    credential: &serde_json::Value,
) -> Result<Credential, Error> {
    let Some(Ceremony::Register {
        user_id: for_user,
        state,
        ..
    }) = ceremony
    else {
        return Err(incorrect_code());
    };
    if for_user != user_id {
        return Err(incorrect_code());
    }
    let response: RegisterPublicKeyCredential =
        serde_json::from_value(credential.clone()).map_err(|_| incorrect_code())?;
    core(config)?
        .register_credential(&response, &state, None)
        .map_err(|e| {
            tracing::debug!(error = ?e, "webauthn registration refused");
            incorrect_code()
        })
}

/// The request options to use one of `credentials` (none: a passkey login,
/// where the browser offers the user's passkeys); the ceremony to keep.
pub fn begin_authentication(
    config: &Config,
    user_id: Option<i64>,
    credentials: Vec<Credential>,
) -> Result<(serde_json::Value, Ceremony), Error> {
    let core = core(config)?;
    let policy = if user_id.is_some() {
        UserVerificationPolicy::Preferred
    } else {
        UserVerificationPolicy::Required
    };
    let builder = core
        .new_challenge_authenticate_builder(credentials, Some(policy))
        .map_err(|e| Error::Internal(format!("webauthn options: {e:?}")))?;
    let (options, state) = core
        .generate_challenge_authenticate(builder)
        .map_err(|e| Error::Internal(format!("webauthn options: {e:?}")))?;
    let mut options =
        serde_json::to_value(&options).map_err(|e| Error::Internal(format!("options: {e}")))?;
    // allauth sends no `mediation`; the frontend chooses.
    if let Some(object) = options.as_object_mut() {
        object.remove("mediation");
    }
    Ok((
        options,
        Ceremony::Authenticate {
            user_id,
            state: Box::new(state),
        },
    ))
}

/// The parsed assertion, or `incorrect_code`.
pub fn parse_assertion(credential: &serde_json::Value) -> Result<PublicKeyCredential, Error> {
    serde_json::from_value(credential.clone()).map_err(|_| incorrect_code())
}

/// The user a passkey assertion names (its user handle is the user's id).
pub fn asserted_user(assertion: &PublicKeyCredential) -> Result<i64, Error> {
    assertion
        .get_user_unique_id()
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(incorrect_code)
}

/// Checks `assertion` against the ceremony and the user's `rows`: the row
/// whose credential signed, with its credential updated (counter, flags).
pub fn complete_authentication(
    config: &Config,
    ceremony: Option<Ceremony>,
    user_id: i64,
    rows: &[Authenticator],
    assertion: &PublicKeyCredential,
) -> Result<(Authenticator, WebauthnData), Error> {
    let Some(Ceremony::Authenticate {
        user_id: for_user,
        state,
    }) = ceremony
    else {
        return Err(incorrect_code());
    };
    if for_user.is_some_and(|u| u != user_id) {
        return Err(incorrect_code());
    }
    let used_id = assertion.get_credential_id();
    let found = rows.iter().find_map(|row| {
        let data = WebauthnData::of(row)?;
        let cred = data.passkey.as_ref()?;
        (cred.cred_id.as_slice() == used_id).then(|| (row.clone(), data.clone()))
    });
    let Some((row, mut data)) = found else {
        return Err(incorrect_code());
    };
    let Some(cred) = data.passkey.as_mut() else {
        return Err(incorrect_code());
    };
    let result = core(config)?
        .authenticate_single_credential(assertion, &state, cred)
        .map_err(|e| {
            tracing::debug!(error = ?e, "webauthn assertion refused");
            incorrect_code()
        })?;
    if result.counter() > cred.counter {
        cred.counter = result.counter();
    }
    cred.backup_state = result.backup_state();
    Ok((row, data))
}

/// The verified credential of a registration response stored elsewhere
/// (django-allauth's `data.credential`, as the browser posted it): the
/// ceremony is replayed against this server's relying party with the
/// challenge the response itself carries, so the attestation, the relying
/// party id hash and the origin are checked as at a registration here, and
/// the credential id, public key and counter come from webauthn-rs.
/// `Err` says why it cannot be used (for the import's report).
pub fn credential_of_registration(
    config: &Config,
    user_id: i64,
    credential: &serde_json::Value,
) -> Result<Credential, String> {
    use base64::Engine as _;
    let response: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
        .map_err(|e| format!("not a registration response: {e}"))?;
    let client_data: serde_json::Value =
        serde_json::from_slice(response.response.client_data_json.as_ref())
            .map_err(|_| "clientDataJSON is not JSON".to_owned())?;
    let challenge = client_data
        .get("challenge")
        .and_then(serde_json::Value::as_str)
        .ok_or("clientDataJSON has no challenge")?;
    let origin = client_data
        .get("origin")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(challenge)
        .map_err(|_| "the challenge is not base64url")?;
    let (_, ceremony) = begin_registration(config, user_id, "import", "import", &[], false)
        .map_err(|e| e.to_string())?;
    let Ceremony::Register { state, .. } = ceremony else {
        return Err("no registration state".into());
    };
    let mut state = serde_json::to_value(&state).map_err(|e| e.to_string())?;
    if let Some(object) = state.as_object_mut() {
        object.insert("challenge".into(), challenge.into());
        object.insert("allow_synchronised_authenticators".into(), true.into());
    }
    let state: RegistrationState = serde_json::from_value(state).map_err(|e| e.to_string())?;
    let party = relying_party(config);
    core(config)
        .map_err(|e| e.to_string())?
        .register_credential(&response, &state, None)
        .map_err(|e| match e {
            webauthn_rs_core::error::WebauthnError::InvalidRPOrigin => format!(
                "its origin {origin} is not among this server's WebAuthn origins {:?}",
                party.origins
            ),
            webauthn_rs_core::error::WebauthnError::InvalidRPIDHash => format!(
                "it was registered for another relying party id than {:?}",
                party.id
            ),
            other => format!("webauthn-rs refuses it: {other:?}"),
        })
}
