//! `[socialaccount]`: django-allauth's `SOCIALACCOUNT_*` settings and the `[[socialaccount.providers]]` apps.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// One `[[socialaccount.providers]]` entry (an OAuth2/OpenID Connect app).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Provider id used in URLs and in the API (`provider` field).
    pub id: String,
    /// Display name; defaults to `id`.
    #[serde(default)]
    pub name: String,
    pub client_id: String,
    pub secret: Secret,
    /// OpenID Connect discovery document
    /// (`https://…/.well-known/openid-configuration`).
    #[serde(default)]
    pub openid_configuration_url: Option<String>,
    #[serde(default)]
    pub scope: Vec<String>,
}

/// `[socialaccount]`: django-allauth's `SOCIALACCOUNT_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocialAccountConfig {
    /// `allauth.socialaccount` in `INSTALLED_APPS`.
    pub enabled: bool,
    pub auto_signup: bool,
    pub email_authentication: bool,
    pub email_authentication_auto_connect: bool,
    pub providers: Vec<ProviderConfig>,
}

impl Default for SocialAccountConfig {
    fn default() -> Self {
        SocialAccountConfig {
            enabled: true,
            auto_signup: true,
            email_authentication: false,
            email_authentication_auto_connect: false,
            providers: Vec::new(),
        }
    }
}

impl SocialAccountConfig {
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let key = |field: &str| format!("socialaccount.providers.{i}.{field}");
            if p.id.is_empty()
                || !p
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(ConfigError::inconsistent(
                    key("id"),
                    format!(
                        "{:?} must be non-empty letters, digits, '_', '-' or '.'",
                        p.id
                    ),
                ));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(ConfigError::inconsistent(
                    key("id"),
                    format!("provider {:?} is configured twice", p.id),
                ));
            }
            if p.client_id.trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    key("client_id"),
                    "must not be empty",
                ));
            }
            if let Some(url) = &p.openid_configuration_url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::inconsistent(
                        key("openid_configuration_url"),
                        "must be an http(s):// URL",
                    ));
                }
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
        );
        assert!(s.providers.is_empty());
    }

    #[test]
    fn provider_entries() {
        let c = load("[[socialaccount.providers]]\nid = \"oidc\"\nname = \"My IdP\"\nclient_id = \"c\"\nsecret = \"s\"\nopenid_configuration_url = \"https://idp/.well-known/openid-configuration\"\nscope = [\"openid\", \"email\"]\n");
        let p = c.socialaccount.provider("oidc").unwrap();
        assert_eq!((p.name.as_str(), p.scope.len()), ("My IdP", 2));
        let err = load_err(
            "[[socialaccount.providers]]\nid = \"oidc\"\nsecret = \"s\"\n",
            &[],
        );
        assert_eq!(err.key(), Some("socialaccount.providers.0.client_id"));
        let err = load_err("[[socialaccount.providers]]\nid = \"a\"\nclient_id = \"c\"\nsecret = \"s\"\n[[socialaccount.providers]]\nid = \"a\"\nclient_id = \"c\"\nsecret = \"s\"\n", &[]);
        assert_eq!(err.key(), Some("socialaccount.providers.1.id"));
    }
}
