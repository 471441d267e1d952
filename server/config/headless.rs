//! `[headless]`: django-allauth's `HEADLESS_*` settings (clients, token strategy, JWT keys, frontend URLs, the served specification).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::checks::{is_token_char, positive};
use super::{ConfigError, Secret};

/// `HEADLESS_CLIENTS` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadlessClient {
    Browser,
    App,
}

impl HeadlessClient {
    pub fn as_str(self) -> &'static str {
        match self {
            HeadlessClient::Browser => "browser",
            HeadlessClient::App => "app",
        }
    }
}

impl PartialEq<str> for HeadlessClient {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// `HEADLESS_TOKEN_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStrategy {
    /// Opaque `X-Session-Token` (allauth's `SessionTokenStrategy`).
    #[default]
    Session,
    /// JWT access + refresh tokens (allauth's `JWTTokenStrategy`).
    Jwt,
}

/// `HEADLESS_JWT_ALGORITHM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum JwtAlgorithm {
    #[default]
    RS256,
    HS256,
}

/// `HEADLESS_FRONTEND_URLS`: links put in mails; `{key}` is replaced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontendUrls {
    /// Must contain `{key}`.
    pub account_confirm_email: Option<String>,
    pub account_reset_password: Option<String>,
    /// Must contain `{key}`.
    pub account_reset_password_from_key: Option<String>,
    pub account_signup: Option<String>,
    pub socialaccount_login_error: Option<String>,
}

/// `[headless]`: django-allauth's `HEADLESS_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadlessConfig {
    pub clients: Vec<HeadlessClient>,
    pub token_strategy: TokenStrategy,
    pub jwt_algorithm: JwtAlgorithm,
    /// PEM file with the JWT signing key.
    pub jwt_private_key_file: Option<PathBuf>,
    /// The JWT signing key inline (PEM for RS256, any string for HS256).
    pub jwt_private_key: Option<Secret>,
    /// Seconds.
    pub jwt_access_token_expires_in: u64,
    /// Seconds.
    pub jwt_refresh_token_expires_in: u64,
    pub jwt_rotate_refresh_token: bool,
    pub jwt_stateful_validation_enabled: bool,
    pub jwt_authorization_header_scheme: String,
    pub frontend_urls: FrontendUrls,
    /// Serve `openapi.json`/`openapi.yaml`/`openapi.html`.
    pub serve_specification: bool,
    /// Ours: when set, `openapi.html` loads its renderer from these local
    /// files (served by us) instead of a CDN.
    pub specification_assets_dir: Option<PathBuf>,
}

impl Default for HeadlessConfig {
    fn default() -> Self {
        HeadlessConfig {
            clients: vec![HeadlessClient::Browser, HeadlessClient::App],
            token_strategy: TokenStrategy::Session,
            jwt_algorithm: JwtAlgorithm::RS256,
            jwt_private_key_file: None,
            jwt_private_key: None,
            jwt_access_token_expires_in: 300,
            jwt_refresh_token_expires_in: 86400,
            jwt_rotate_refresh_token: true,
            jwt_stateful_validation_enabled: false,
            jwt_authorization_header_scheme: "Bearer".to_owned(),
            frontend_urls: FrontendUrls::default(),
            serve_specification: false,
            specification_assets_dir: None,
        }
    }
}

impl HeadlessConfig {
    pub fn has_client(&self, client: HeadlessClient) -> bool {
        self.clients.contains(&client)
    }

    /// The configured JWT key: the inline one, else the file's contents, else
    /// `None` (HS256 then signs with `server.secret_key`, as allauth does with
    /// Django's `SECRET_KEY`).
    pub fn jwt_private_key_material(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(key) = &self.jwt_private_key {
            return Ok(Some(key.clone()));
        }
        match &self.jwt_private_key_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| Some(Secret::new(text)))
                .map_err(|source| ConfigError::Read {
                    what: "headless.jwt_private_key_file",
                    path: path.clone(),
                    source,
                }),
            None => Ok(None),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.clients.is_empty() {
            return Err(ConfigError::inconsistent(
                "headless.clients",
                "must name at least one of \"browser\", \"app\"",
            ));
        }
        if self.clients.len() != self.clients.iter().collect::<BTreeSet<_>>().len() {
            return Err(ConfigError::inconsistent(
                "headless.clients",
                "lists a client twice",
            ));
        }
        if self.jwt_private_key.is_some() && self.jwt_private_key_file.is_some() {
            return Err(ConfigError::inconsistent(
                "headless.jwt_private_key",
                "set either headless.jwt_private_key or headless.jwt_private_key_file, not both",
            ));
        }
        if let Some(key) = &self.jwt_private_key {
            if key.expose().trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    "headless.jwt_private_key",
                    "must not be empty",
                ));
            }
            if self.jwt_algorithm == JwtAlgorithm::RS256 && !key.expose().contains("-----BEGIN") {
                return Err(ConfigError::inconsistent(
                    "headless.jwt_private_key",
                    "RS256 needs a PEM-encoded RSA private key (-----BEGIN PRIVATE KEY-----…)",
                ));
            }
        }
        if self.token_strategy == TokenStrategy::Jwt
            && self.jwt_algorithm == JwtAlgorithm::RS256
            && self.jwt_private_key.is_none()
            && self.jwt_private_key_file.is_none()
        {
            // allauth loads HEADLESS_JWT_PRIVATE_KEY as PEM for RS*; only HS*
            // falls back to SECRET_KEY.
            return Err(ConfigError::inconsistent(
                "headless.jwt_private_key",
                "token_strategy \"jwt\" with RS256 needs headless.jwt_private_key or \
                 headless.jwt_private_key_file (or jwt_algorithm = \"HS256\")",
            ));
        }
        positive(
            "headless.jwt_access_token_expires_in",
            self.jwt_access_token_expires_in,
        )?;
        positive(
            "headless.jwt_refresh_token_expires_in",
            self.jwt_refresh_token_expires_in,
        )?;
        let scheme = &self.jwt_authorization_header_scheme;
        if scheme.is_empty() || !scheme.chars().all(is_token_char) {
            return Err(ConfigError::inconsistent(
                "headless.jwt_authorization_header_scheme",
                "must be a single word such as \"Bearer\"",
            ));
        }
        // allauth's render_url refuses a template lacking a placeholder it has a value for.
        for (key, url) in [
            (
                "headless.frontend_urls.account_confirm_email",
                &self.frontend_urls.account_confirm_email,
            ),
            (
                "headless.frontend_urls.account_reset_password_from_key",
                &self.frontend_urls.account_reset_password_from_key,
            ),
        ] {
            if let Some(url) = url {
                if !url.contains("{key}") {
                    return Err(ConfigError::inconsistent(
                        key,
                        "must contain the {key} placeholder",
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
    use super::*;
    use crate::config::testing::load;

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        let h = &c.headless;
        assert_eq!(
            h.clients,
            vec![HeadlessClient::Browser, HeadlessClient::App]
        );
        assert_eq!(h.token_strategy, TokenStrategy::Session);
        assert_eq!(h.jwt_algorithm, JwtAlgorithm::RS256);
        assert!(h.jwt_private_key.is_none() && h.jwt_private_key_file.is_none());
        assert_eq!(
            (
                h.jwt_access_token_expires_in,
                h.jwt_refresh_token_expires_in
            ),
            (300, 86400)
        );
        assert!(h.jwt_rotate_refresh_token && !h.jwt_stateful_validation_enabled);
        assert_eq!(h.jwt_authorization_header_scheme, "Bearer");
        assert!(h.frontend_urls.account_confirm_email.is_none());
        assert!(!h.serve_specification && h.specification_assets_dir.is_none());
    }
}
