//! Social login (allauth's `socialaccount`): accounts at third-party
//! providers, linked to users. A provider login is one more way into the
//! login pipeline (`pipeline::authenticated` with a `socialaccount`
//! record); when the provider's data is not enough to sign up on its own,
//! the login waits in the `provider_signup` stage.
//!
//! * [`providers`]: the configured providers, as data.
//! * [`remote`]: HTTP to the providers (authorization URL, code exchange,
//!   ID tokens, profiles), with discovery and key caches.
//! * [`flows`]: what a provider login does here: log in, connect, sign
//!   up, the pending signup, disconnect.
//! * [`redirect`]: the browser's round trip through the provider: the
//!   state kept in the session and allauth's callback paths.

pub mod flows;
pub mod providers;
pub mod redirect;
pub mod remote;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::sessions::session::{Flow, FlowKind, SessionData, Stage};
use crate::config::Config;
use allauth_api::runtime::ClientKind;

pub use providers::Provider;

/// `process`: what the provider account is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    /// Log in, or sign up.
    Login,
    /// Attach to the logged-in user.
    Connect,
}

impl Process {
    pub fn as_str(self) -> &'static str {
        match self {
            Process::Login => "login",
            Process::Connect => "connect",
        }
    }
}

/// An address the provider gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEmail {
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

/// The provider's tokens, sealed (they sit in the session while a
/// provider signup waits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedTokens {
    pub token: String,
    #[serde(default)]
    pub token_secret: String,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A provider account on its way in (allauth's `SocialLogin`): who the
/// provider says it is, before it is linked to a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SocialLogin {
    /// The provider's id in the API (`sub_id`).
    pub provider: String,
    #[serde(default)]
    pub client_id: Option<String>,
    pub uid: String,
    /// The provider's data, stored as the account's `extra_data`.
    pub extra_data: Value,
    /// Most important first (primary, then verified).
    #[serde(default)]
    pub emails: Vec<ProviderEmail>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub tokens: Option<SealedTokens>,
}

/// A provider as the API describes it (allauth's `_provider_data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub redirect: bool,
    pub token: bool,
    pub client_id: Option<String>,
    pub openid_configuration_url: Option<String>,
}

impl Provider {
    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: self.sub_id.clone(),
            name: self.name.clone(),
            redirect: self.supports_redirect(),
            token: self.supports_token(),
            client_id: self.client_id().map(str::to_string),
            openid_configuration_url: self.openid_configuration_url(),
        }
    }
}

/// A provider redirect under way (allauth's stashed state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectState {
    pub provider: String,
    #[serde(default)]
    pub client_id: Option<String>,
    pub process: Process,
    /// The frontend URL to return to.
    pub next: String,
    #[serde(default)]
    pub pkce_verifier: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    /// Unix ms.
    pub at: i64,
}

/// The profile fields allauth reads, from the provider's data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Common {
    pub email: Option<String>,
    pub email_verified: bool,
    pub username: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl SocialLogin {
    /// allauth's `sociallogin_from_response`: the uid, the common fields
    /// and the addresses (`extra`, most important first), cleaned as
    /// `cleanup_email_addresses` does.
    pub fn from_data(
        provider: &Provider,
        uid: Option<String>,
        extra_data: Value,
        common: Common,
        extra: Vec<ProviderEmail>,
    ) -> Option<SocialLogin> {
        let uid = uid.filter(|u| !u.is_empty() && u.chars().count() <= 191)?;
        let mut emails: Vec<ProviderEmail> = Vec::new();
        let valid = |e: &str| crate::app::account::accounts::is_valid_email(e);
        for mut address in extra {
            address.email = address.email.trim().to_lowercase();
            if valid(&address.email) && !emails.iter().any(|a| a.email == address.email) {
                emails.push(address);
            }
        }
        if let Some(email) = common.email.as_deref().map(|e| e.trim().to_lowercase()) {
            if valid(&email) && !emails.iter().any(|a| a.email == email) {
                emails.insert(
                    0,
                    ProviderEmail {
                        email,
                        verified: common.email_verified,
                        primary: true,
                    },
                );
            }
        }
        for address in &mut emails {
            if provider.forces_verified(&address.email) {
                address.verified = true;
            }
        }
        emails.sort_by(|a, b| {
            (b.primary, b.verified, &b.email).cmp(&(a.primary, a.verified, &a.email))
        });
        let (first, last) = match (&common.first_name, &common.last_name, &common.name) {
            (None, None, Some(name)) => {
                let (f, l) = name.split_once(' ').unwrap_or((name.as_str(), ""));
                (
                    Some(f.to_string()),
                    Some(l.to_string()).filter(|l| !l.is_empty()),
                )
            }
            _ => (common.first_name.clone(), common.last_name.clone()),
        };
        Some(SocialLogin {
            provider: provider.sub_id.clone(),
            client_id: provider.client_id().map(str::to_string),
            uid,
            extra_data,
            emails,
            username: common.username,
            first_name: first,
            last_name: last,
            tokens: None,
        })
    }

    /// The first address, as allauth's auto signup takes it.
    pub fn email(&self) -> Option<&str> {
        self.emails.first().map(|a| a.email.as_str())
    }
}

/// The fields of an OpenID Connect identity (the userinfo, else the ID
/// token's claims, else `data` itself, as allauth's `_pick_data`).
pub fn oidc_user_data(data: &Value) -> &Value {
    if let Some(userinfo) = data.get("userinfo").filter(|v| v.is_object()) {
        userinfo
    } else if let Some(claims) = data.get("id_token").filter(|v| v.is_object()) {
        claims
    } else {
        data
    }
}

/// An OpenID Connect identity as allauth's `openid_connect` provider reads it.
pub fn oidc_login(provider: &Provider, data: Value) -> Option<SocialLogin> {
    let picked = oidc_user_data(&data).clone();
    let uid_field = provider
        .app
        .as_ref()
        .and_then(|a| a.settings.uid_field.clone())
        .unwrap_or_else(|| "sub".into());
    let common = Common {
        email: text(picked.get("email")),
        email_verified: truthy(picked.get("email_verified")),
        username: text(picked.get("preferred_username")),
        name: text(picked.get("name")),
        first_name: text(picked.get("given_name")),
        last_name: text(picked.get("family_name")),
    };
    let uid = text(picked.get(&uid_field));
    SocialLogin::from_data(provider, uid, data, common, Vec::new())
}

/// A Sign in with Apple identity: the verified ID token's claims over
/// what Apple posted about the user at the first login (`user`: its
/// `name` with `firstName` and `lastName`, and `email`).
pub fn apple_login(provider: &Provider, claims: Value, user: Option<Value>) -> Option<SocialLogin> {
    let mut data = match user {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Value::Object(claims) = claims {
        data.extend(claims);
    }
    let name = data.get("name").cloned().unwrap_or(Value::Null);
    let common = Common {
        email: text(data.get("email")),
        email_verified: truthy(data.get("email_verified")),
        first_name: text(name.get("firstName")),
        last_name: text(name.get("lastName")),
        ..Common::default()
    };
    let uid = text(data.get("sub"));
    SocialLogin::from_data(provider, uid, Value::Object(data), common, Vec::new())
}

/// A plain OAuth2 profile read through the provider's field names;
/// `emails` is GitHub's address list (`email`, `primary`, `verified`).
pub fn oauth2_login(
    provider: &Provider,
    spec: &providers::OAuth2Spec,
    profile: Value,
    emails: Option<Value>,
) -> Option<SocialLogin> {
    let f = &spec.fields;
    let field = |name: &Option<String>| name.as_ref().and_then(|n| text(profile.get(n)));
    let common = Common {
        email: field(&f.email),
        email_verified: f
            .email_verified
            .as_ref()
            .is_some_and(|n| truthy(profile.get(n))),
        username: field(&f.username),
        name: field(&f.name),
        first_name: field(&f.first_name),
        last_name: field(&f.last_name),
    };
    let listed = emails
        .as_ref()
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    Some(ProviderEmail {
                        email: e.get("email")?.as_str()?.to_string(),
                        primary: truthy(e.get("primary")),
                        verified: truthy(e.get("verified")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let uid = text(profile.get(&f.uid));
    SocialLogin::from_data(provider, uid, profile, common, listed)
}

/// The dummy provider's form (`id`, `email`, `email_verified`,
/// `username`, `first_name`, `last_name`), as its `AuthenticateForm`
/// cleans it: the id is an integer, the address valid or absent.
pub fn dummy_login(
    provider: &Provider,
    form: &serde_json::Map<String, Value>,
) -> Option<SocialLogin> {
    let get = |k: &str| text(form.get(k));
    let id: i64 = get("id")?.parse().ok()?;
    let email = get("email");
    if email
        .as_deref()
        .is_some_and(|e| !crate::app::account::accounts::is_valid_email(e))
    {
        return None;
    }
    let email_verified = truthy(form.get("email_verified"))
        || form
            .get("email_verified")
            .and_then(Value::as_str)
            .is_some_and(|v| v == "on" || v == "1");
    let cleaned = serde_json::json!({
        "id": id,
        "email": email.clone().unwrap_or_default(),
        "email_verified": email_verified,
        "username": get("username").unwrap_or_default(),
        "first_name": get("first_name").unwrap_or_default(),
        "last_name": get("last_name").unwrap_or_default(),
        "phone": "",
        "phone_verified": false,
    });
    let extra = email
        .map(|e| {
            vec![ProviderEmail {
                email: e,
                verified: email_verified,
                primary: true,
            }]
        })
        .unwrap_or_default();
    let common = Common {
        username: get("username"),
        first_name: get("first_name"),
        last_name: get("last_name"),
        ..Common::default()
    };
    SocialLogin::from_data(provider, Some(id.to_string()), cleaned, common, extra)
}

/// allauth's `ProviderAccount.to_str`: a human label for an account from
/// its data (username, address, name, or first and last name), else the
/// provider's name.
pub fn display(provider_name: &str, provider_id: &str, extra_data: &Value) -> String {
    let data = if provider_id == "openid_connect" || extra_data.get("userinfo").is_some() {
        oidc_user_data(extra_data)
    } else {
        extra_data
    };
    if provider_id == "google" {
        if let Some(name) = text(data.get("name")) {
            return name;
        }
    }
    if provider_id == "apple" {
        // An address Apple relays is no name to show.
        if let Some(email) = text(data.get("email"))
            .filter(|e| !e.to_lowercase().ends_with("@privaterelay.appleid.com"))
        {
            return email;
        }
        let name = data.get("name").cloned().unwrap_or(Value::Null);
        let full = format!(
            "{} {}",
            text(name.get("firstName")).unwrap_or_default(),
            text(name.get("lastName")).unwrap_or_default()
        );
        if !full.trim().is_empty() {
            return full.trim().to_string();
        }
    }
    let first_of = |keys: &[&str]| keys.iter().find_map(|k| text(data.get(*k)));
    let groups: [&[&str]; 4] = [
        &["username", "userName", "user_name", "login", "handle"],
        &["email", "Email", "mail", "email_address"],
        &[
            "name",
            "display_name",
            "displayName",
            "displayname",
            "Display_Name",
            "nickname",
        ],
        &["full_name", "fullName"],
    ];
    for keys in groups {
        if let Some(value) = first_of(keys) {
            return value;
        }
    }
    let first = first_of(&[
        "first_name",
        "firstname",
        "firstName",
        "First_Name",
        "given_name",
        "givenName",
    ]);
    let last = first_of(&[
        "last_name",
        "lastname",
        "lastName",
        "Last_Name",
        "family_name",
        "familyName",
        "surname",
    ]);
    let joined = format!("{} {}", first.unwrap_or_default(), last.unwrap_or_default());
    let joined = joined.trim();
    if joined.is_empty() {
        provider_name.to_string()
    } else {
        joined.to_string()
    }
}

/// The provider entry flows of an anonymous session, and its pending
/// provider signup (allauth's `provider_flows`): redirect flows for the
/// browser only; token flows for the providers that take tokens.
pub fn provider_flows(
    config: &Config,
    client: ClientKind,
    data: &SessionData,
    now_ms: i64,
) -> Vec<Flow> {
    let supported: Vec<Provider> = providers::list(config)
        .into_iter()
        .filter(|p| match client {
            ClientKind::App => p.supports_token(),
            ClientKind::Browser => p.supports_redirect(),
        })
        .collect();
    if supported.is_empty() {
        return Vec::new();
    }
    let mut flows = Vec::new();
    let redirect: Vec<String> = supported
        .iter()
        .filter(|p| p.supports_redirect())
        .map(|p| p.sub_id.clone())
        .collect();
    let token: Vec<String> = supported
        .iter()
        .filter(|p| p.supports_token())
        .map(|p| p.sub_id.clone())
        .collect();
    if !redirect.is_empty() && client == ClientKind::Browser {
        flows.push(Flow {
            providers: Some(redirect),
            ..Flow::plain(FlowKind::ProviderRedirect)
        });
    }
    if !token.is_empty() {
        flows.push(Flow {
            providers: Some(token),
            ..Flow::plain(FlowKind::ProviderToken)
        });
    }
    if let Some(login) = data.live_login(config, now_ms) {
        if let Stage::ProviderSignup { login } = &login.stage {
            let provider = providers::get(config, &login.provider, login.client_id.as_deref());
            flows.push(Flow {
                is_pending: Some(true),
                provider: provider.map(|p| p.info()),
                ..Flow::plain(FlowKind::ProviderSignup)
            });
        }
    }
    flows
}
