//! `[socialaccount]`: django-allauth's `SOCIALACCOUNT_*` settings, and
//! `[socialaccount.providers.<id>]` in the shape of `SOCIALACCOUNT_PROVIDERS`:
//! per provider its settings and its apps (`client_id`, `secret`, `key`,
//! `settings`); several `openid_connect` apps, each with its own
//! `provider_id`, `name` and `settings.server_url`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, EmailVerification, Secret};

/// `VERIFIED_EMAIL`: whether addresses from this provider count as
/// verified: all, none, or those of some domains.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum VerifiedEmail {
    All(bool),
    Domains(Vec<String>),
}

/// How a provider's profile maps onto allauth's fields (plain OAuth2
/// providers): each value is a key of the profile JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldMap {
    pub uid: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<String>,
    pub username: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// One `[socialaccount.providers.<id>]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    /// For an id this server does not know: `"oauth2"` (endpoints and
    /// field mapping below) or `"openid_connect"` (`server_url`).
    pub kind: Option<String>,
    /// Display name (allauth: the provider class's `name`).
    pub name: Option<String>,
    /// `SCOPE`; unset: the provider's default.
    pub scope: Option<Vec<String>>,
    /// `AUTH_PARAMS`: extra parameters of the authorization request.
    pub auth_params: BTreeMap<String, String>,
    /// `VERIFIED_EMAIL`.
    pub verified_email: Option<VerifiedEmail>,
    /// `EMAIL_AUTHENTICATION` for this provider.
    pub email_authentication: Option<bool>,
    /// `OAUTH_PKCE_ENABLED`; unset: the provider's default.
    pub oauth_pkce_enabled: Option<bool>,
    /// `FETCH_USERINFO` (OpenID Connect): also read the userinfo endpoint.
    pub fetch_userinfo: Option<bool>,
    /// Plain OAuth2 endpoints (override the known provider's).
    pub authorize_url: Option<String>,
    pub access_token_url: Option<String>,
    pub profile_url: Option<String>,
    /// Where the addresses are listed (GitHub's `/user/emails`).
    pub emails_url: Option<String>,
    /// Plain OAuth2: profile fields.
    pub fields: FieldMap,
    /// `APPS` (or one `APP`).
    pub apps: Vec<AppConfig>,
    pub app: Option<AppConfig>,
}

/// `settings` of an app.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSettings {
    /// OpenID Connect: the issuer or its discovery document.
    pub server_url: Option<String>,
    /// `client_secret_basic` or `client_secret_post`.
    pub token_auth_method: Option<String>,
    /// OpenID Connect: the claim used as uid (`sub`).
    pub uid_field: Option<String>,
    pub fetch_userinfo: Option<bool>,
    pub verified_email: Option<VerifiedEmail>,
    pub email_authentication: Option<bool>,
    pub oauth_pkce_enabled: Option<bool>,
    pub scope: Option<Vec<String>>,
    pub auth_params: Option<BTreeMap<String, String>>,
    /// Microsoft: the tenant (`common`, `organizations`, an id).
    pub tenant: Option<String>,
    /// Apple: the private key (PEM) the client secret is signed with.
    pub certificate_key: Option<Secret>,
    /// allauth's `hidden`: of several apps of one provider, the visible one
    /// is used when no client id is given (all are listed, as allauth's
    /// headless config does).
    pub hidden: bool,
}

/// One app (allauth's `SocialApp`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// For `openid_connect` apps: the id used in URLs and the API.
    pub provider_id: Option<String>,
    pub name: Option<String>,
    pub client_id: String,
    pub secret: Option<Secret>,
    /// The secret read from this file (trailing newline removed).
    pub secret_file: Option<PathBuf>,
    /// The secret read from this environment variable.
    pub secret_env: Option<String>,
    pub key: String,
    pub settings: AppSettings,
}

impl AppConfig {
    /// The secret from `secret`, `secret_file` or `secret_env`.
    pub fn resolve_secret(&mut self, key: &str) -> Result<(), ConfigError> {
        super::secret::resolve_secret_source(
            key,
            &mut self.secret,
            self.secret_file.as_deref(),
            self.secret_env.as_deref(),
        )
    }

    pub fn secret(&self) -> &str {
        self.secret.as_ref().map_or("", |s| s.expose())
    }
}

/// `[socialaccount]`: django-allauth's `SOCIALACCOUNT_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocialAccountConfig {
    /// `allauth.socialaccount` in `INSTALLED_APPS`.
    pub enabled: bool,
    pub auto_signup: bool,
    /// `SOCIALACCOUNT_EMAIL_REQUIRED`; unset: `account.signup_fields` says.
    pub email_required: Option<bool>,
    /// `SOCIALACCOUNT_EMAIL_VERIFICATION`; unset: `account.email_verification`.
    pub email_verification: Option<EmailVerification>,
    pub email_authentication: bool,
    pub email_authentication_auto_connect: bool,
    /// `SOCIALACCOUNT_QUERY_EMAIL`; unset: as `email_required`.
    pub query_email: Option<bool>,
    pub store_tokens: bool,
    /// `SOCIALACCOUNT_ONLY`: no local login or signup.
    pub only: bool,
    /// `SOCIALACCOUNT_REQUESTS_TIMEOUT`, seconds.
    pub requests_timeout: u64,
    /// `SOCIALACCOUNT_PROVIDERS`, by provider id.
    pub providers: BTreeMap<String, ProviderSettings>,
}

impl Default for SocialAccountConfig {
    fn default() -> Self {
        SocialAccountConfig {
            enabled: true,
            auto_signup: true,
            email_required: None,
            email_verification: None,
            email_authentication: false,
            email_authentication_auto_connect: false,
            query_email: None,
            store_tokens: false,
            only: false,
            requests_timeout: 5,
            providers: BTreeMap::new(),
        }
    }
}

/// The provider ids this server implements besides configured `kind`s.
pub const KNOWN_PROVIDERS: [&str; 7] = [
    "openid_connect",
    "google",
    "apple",
    "github",
    "gitlab",
    "microsoft",
    "dummy",
];

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl SocialAccountConfig {
    /// Every app of the provider (`APPS` and `APP`).
    pub fn apps_of(settings: &ProviderSettings) -> impl Iterator<Item = &AppConfig> {
        settings.apps.iter().chain(settings.app.iter())
    }

    pub(super) fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        for (id, settings) in &mut self.providers {
            for (i, app) in settings.apps.iter_mut().enumerate() {
                app.resolve_secret(&format!("socialaccount.providers.{id}.apps.{i}"))?;
            }
            if let Some(app) = &mut settings.app {
                app.resolve_secret(&format!("socialaccount.providers.{id}.app"))?;
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut sub_ids = BTreeSet::new();
        for (id, settings) in &self.providers {
            let base = format!("socialaccount.providers.{id}");
            if !valid_id(id) {
                return Err(ConfigError::inconsistent(
                    base,
                    "provider ids are letters, digits, '_', '-' or '.'",
                ));
            }
            let kind = settings.kind.as_deref().unwrap_or(id.as_str());
            if !KNOWN_PROVIDERS.contains(&kind) && kind != "oauth2" {
                return Err(ConfigError::inconsistent(
                    format!("{base}.kind"),
                    format!(
                        "unknown provider {kind:?}: one of {} or kind = \"oauth2\"",
                        KNOWN_PROVIDERS.join(", ")
                    ),
                ));
            }
            if kind == "oauth2" {
                for (field, value) in [
                    ("authorize_url", &settings.authorize_url),
                    ("access_token_url", &settings.access_token_url),
                    ("profile_url", &settings.profile_url),
                ] {
                    if value.is_none() {
                        return Err(ConfigError::inconsistent(
                            format!("{base}.{field}"),
                            "a plain OAuth2 provider needs its endpoints",
                        ));
                    }
                }
            }
            for url in [
                &settings.authorize_url,
                &settings.access_token_url,
                &settings.profile_url,
                &settings.emails_url,
            ]
            .into_iter()
            .flatten()
            {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::inconsistent(
                        base.clone(),
                        format!("{url:?} must be an http(s):// URL"),
                    ));
                }
            }
            let apps: Vec<&AppConfig> = Self::apps_of(settings).collect();
            if kind != "dummy" && apps.is_empty() {
                return Err(ConfigError::inconsistent(
                    format!("{base}.apps"),
                    "needs at least one app (client_id and secret)",
                ));
            }
            for (i, app) in apps.iter().enumerate() {
                let key = format!("{base}.apps.{i}");
                if app.client_id.trim().is_empty() {
                    return Err(ConfigError::inconsistent(
                        format!("{key}.client_id"),
                        "must not be empty",
                    ));
                }
                let sub_id = if kind == "openid_connect" {
                    let Some(sub) = app.provider_id.as_deref().filter(|s| valid_id(s)) else {
                        return Err(ConfigError::inconsistent(
                            format!("{key}.provider_id"),
                            "an openid_connect app needs a provider_id (letters, digits, '_', '-', '.')",
                        ));
                    };
                    let Some(url) = app.settings.server_url.as_deref() else {
                        return Err(ConfigError::inconsistent(
                            format!("{key}.settings.server_url"),
                            "an openid_connect app needs its server_url",
                        ));
                    };
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(ConfigError::inconsistent(
                            format!("{key}.settings.server_url"),
                            "must be an http(s):// URL",
                        ));
                    }
                    sub.to_string()
                } else {
                    app.provider_id.clone().unwrap_or_else(|| id.clone())
                };
                if kind == "openid_connect" && !sub_ids.insert(sub_id.clone()) {
                    return Err(ConfigError::inconsistent(
                        format!("{key}.provider_id"),
                        format!("provider {sub_id:?} is configured twice"),
                    ));
                }
                if kind == "apple" {
                    // allauth's Apple app: `client_id` the service id(s),
                    // `secret` the key id, `key` the team id, and the
                    // private key that signs the client secret.
                    let missing = if app.key.trim().is_empty() {
                        Some(("key", "the team id"))
                    } else if app.secret().is_empty() {
                        Some(("secret", "the key id"))
                    } else if app
                        .settings
                        .certificate_key
                        .as_ref()
                        .is_none_or(Secret::is_empty)
                    {
                        Some(("settings.certificate_key", "the private key (PEM)"))
                    } else {
                        None
                    };
                    if let Some((field, what)) = missing {
                        return Err(ConfigError::inconsistent(
                            format!("{key}.{field}"),
                            format!("an Apple app needs {what}"),
                        ));
                    }
                }
                if let Some(method) = &app.settings.token_auth_method {
                    if method != "client_secret_basic" && method != "client_secret_post" {
                        return Err(ConfigError::inconsistent(
                            format!("{key}.settings.token_auth_method"),
                            "client_secret_basic or client_secret_post",
                        ));
                    }
                }
            }
        }
        for id in self.providers.keys() {
            if sub_ids.contains(id) {
                return Err(ConfigError::inconsistent(
                    format!("socialaccount.providers.{id}"),
                    "an openid_connect app uses this id as its provider_id",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::testing::{load, load_err};

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        let s = &c.socialaccount;
        assert!(
            s.enabled
                && s.auto_signup
                && !s.email_authentication
                && !s.email_authentication_auto_connect
                && !s.store_tokens
                && !s.only
        );
        assert_eq!(s.requests_timeout, 5);
        assert!(s.providers.is_empty());
    }

    #[test]
    fn provider_entries() {
        let c = load(
            r#"
            [socialaccount.providers.openid_connect]
            [[socialaccount.providers.openid_connect.apps]]
            provider_id = "keycloak"
            name = "Keycloak"
            client_id = "c"
            secret = "s"
            settings = { server_url = "https://idp.example/realms/x" }
            [socialaccount.providers.github]
            scope = ["read:user"]
            app = { client_id = "gh", secret = "s" }
            "#,
        );
        let p = &c.socialaccount.providers["openid_connect"];
        assert_eq!(p.apps[0].provider_id.as_deref(), Some("keycloak"));
        assert_eq!(
            c.socialaccount.providers["github"]
                .app
                .as_ref()
                .unwrap()
                .client_id,
            "gh"
        );
        let err = load_err(
            "[socialaccount.providers.openid_connect]\napps = [{client_id = \"c\", secret = \"s\", settings = { server_url = \"https://x\" }}]\n",
            &[],
        );
        assert_eq!(
            err.key(),
            Some("socialaccount.providers.openid_connect.apps.0.provider_id")
        );
        let err = load_err(
            "[socialaccount.providers.github]\napps = [{client_id = \"\", secret = \"s\"}]\n",
            &[],
        );
        assert_eq!(
            err.key(),
            Some("socialaccount.providers.github.apps.0.client_id")
        );
        let err = load_err(
            "[socialaccount.providers.myspace]\napp = {client_id = \"c\"}\n",
            &[],
        );
        assert_eq!(err.key(), Some("socialaccount.providers.myspace.kind"));
        let err = load_err("[socialaccount.providers.github]\n", &[]);
        assert_eq!(err.key(), Some("socialaccount.providers.github.apps"));
    }

    #[test]
    fn secret_from_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").unwrap();
        let c = load(&format!(
            "[socialaccount.providers.github]\napp = {{ client_id = \"c\", secret_file = \"{}\" }}\n",
            path.display()
        ));
        assert_eq!(
            c.socialaccount.providers["github"]
                .app
                .as_ref()
                .unwrap()
                .secret(),
            "from-file"
        );
    }
}
