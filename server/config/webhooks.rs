//! `[webhooks]`: signed account-event webhooks (not an allauth setting:
//! allauth's signals, delivered over HTTP; see `docs/webhooks.md`).

use serde::Deserialize;

use super::{ConfigError, Secret};

/// The event types, as they appear in `type` and in `events` filters.
pub const EVENT_TYPES: [&str; 15] = [
    "user.signed_up",
    "user.logged_in",
    "user.logged_out",
    "email.added",
    "email.verified",
    "email.removed",
    "email.primary_changed",
    "phone.verified",
    "password.changed",
    "password.reset",
    "session.ended",
    "mfa.authenticator_added",
    "mfa.authenticator_removed",
    "socialaccount.connected",
    "socialaccount.disconnected",
];

/// One `[[webhooks.endpoints]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookEndpoint {
    /// Where events are POSTed (`https://`, or `http://` inside your network).
    pub url: String,
    /// The HMAC-SHA256 key of the signatures (at least 32 characters).
    pub secret: Option<Secret>,
    /// The secret read from this file (trailing newline removed).
    pub secret_file: Option<std::path::PathBuf>,
    /// The secret read from this environment variable.
    pub secret_env: Option<String>,
    /// The event types sent there; empty: all.
    pub events: Vec<String>,
}

impl WebhookEndpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }

    pub fn secret(&self) -> &str {
        self.secret.as_ref().map_or("", |s| s.expose())
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub endpoints: Vec<WebhookEndpoint>,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
    /// Seconds before the first retry; doubled for each further one (at
    /// most an hour between attempts).
    pub retry_backoff_secs: u64,
    /// Attempts before an event is given up for that endpoint.
    pub retry_max_attempts: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            endpoints: Vec::new(),
            timeout_secs: 10,
            retry_backoff_secs: 10,
            retry_max_attempts: 12,
        }
    }
}

impl WebhooksConfig {
    pub(super) fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        for (i, endpoint) in self.endpoints.iter_mut().enumerate() {
            super::secret::resolve_secret_source(
                &format!("webhooks.endpoints.{i}"),
                &mut endpoint.secret,
                endpoint.secret_file.as_deref(),
                endpoint.secret_env.as_deref(),
            )?;
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let key = format!("webhooks.endpoints.{i}");
            let url = endpoint.url.trim();
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url::Url::parse(url).is_err()
            {
                return Err(ConfigError::inconsistent(
                    format!("{key}.url"),
                    "must be an http(s):// URL",
                ));
            }
            if endpoint.secret().chars().count() < 32 {
                return Err(ConfigError::inconsistent(
                    format!("{key}.secret"),
                    "needs a secret of at least 32 characters (secret, secret_file or secret_env)",
                ));
            }
            if let Some(unknown) = endpoint
                .events
                .iter()
                .find(|e| !EVENT_TYPES.contains(&e.as_str()))
            {
                return Err(ConfigError::inconsistent(
                    format!("{key}.events"),
                    format!(
                        "unknown event {unknown:?}; one of {}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        }
        if self.timeout_secs == 0 || self.retry_backoff_secs == 0 || self.retry_max_attempts == 0 {
            return Err(ConfigError::inconsistent(
                "webhooks",
                "timeout_secs, retry_backoff_secs and retry_max_attempts must be greater than 0",
            ));
        }
        Ok(())
    }
}
