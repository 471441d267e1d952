//! `[sms]`: where text messages go (phone verification and login codes) and their retry queue (ours; see `docs/sms.md`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::checks::positive;
use super::secret::resolve_named_secret_source;
use super::{ConfigError, Secret};

/// Where text messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsBackend {
    /// Written to standard output, the number masked (development).
    #[default]
    Console,
    /// One file per message in `file_path`.
    File,
    /// A signed JSON POST to `webhook_url`, for a gateway of your own.
    Webhook,
    /// Twilio's Messages API.
    Twilio,
}

/// `[sms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub backend: SmsBackend,
    /// Directory of the `file` backend.
    pub file_path: PathBuf,
    /// Where the `webhook` backend POSTs.
    pub webhook_url: Option<String>,
    /// The HMAC-SHA256 key of the webhook signatures (at least 32 characters).
    pub webhook_secret: Option<Secret>,
    pub webhook_secret_file: Option<PathBuf>,
    pub webhook_secret_env: Option<String>,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<Secret>,
    pub twilio_auth_token_file: Option<PathBuf>,
    pub twilio_auth_token_env: Option<String>,
    /// The sender: a Twilio number (E.164) or a Messaging Service SID.
    pub twilio_from: Option<String>,
    /// Twilio's API root, a setting so that tests can talk to a fake.
    pub twilio_base_url: String,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
    /// Seconds before the first retry, doubled after each failure (at most an hour).
    pub retry_backoff_secs: u64,
    /// Attempts before a message is given up.
    pub retry_max_attempts: u32,
    /// Whether to text the enumeration notices: "no account uses this
    /// number" (a login code asked for an unknown number) and "this number
    /// already has an account" (a signup with a taken number). allauth's
    /// adapter sends neither by default; each text costs money, and anyone
    /// can trigger them.
    pub enumeration_notices: bool,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            backend: SmsBackend::Console,
            file_path: PathBuf::from("./data/sms"),
            webhook_url: None,
            webhook_secret: None,
            webhook_secret_file: None,
            webhook_secret_env: None,
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_auth_token_file: None,
            twilio_auth_token_env: None,
            twilio_from: None,
            twilio_base_url: "https://api.twilio.com".to_owned(),
            timeout_secs: 10,
            retry_backoff_secs: 10,
            retry_max_attempts: 8,
            enumeration_notices: false,
        }
    }
}

fn nonempty(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.trim().is_empty())
}

fn http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let url = value.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url::Url::parse(url).is_err()
    {
        return Err(ConfigError::inconsistent(key, "must be an http(s):// URL"));
    }
    Ok(())
}

impl SmsConfig {
    pub(super) fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        resolve_named_secret_source(
            "sms",
            "webhook_secret",
            &mut self.webhook_secret,
            self.webhook_secret_file.as_deref(),
            self.webhook_secret_env.as_deref(),
        )?;
        resolve_named_secret_source(
            "sms",
            "twilio_auth_token",
            &mut self.twilio_auth_token,
            self.twilio_auth_token_file.as_deref(),
            self.twilio_auth_token_env.as_deref(),
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.backend {
            SmsBackend::Console | SmsBackend::File => {}
            SmsBackend::Webhook => {
                let Some(url) = self.webhook_url.as_deref() else {
                    return Err(ConfigError::inconsistent(
                        "sms.webhook_url",
                        "is needed by backend = \"webhook\"",
                    ));
                };
                http_url("sms.webhook_url", url)?;
                if self
                    .webhook_secret
                    .as_ref()
                    .is_none_or(|s| s.expose().chars().count() < 32)
                {
                    return Err(ConfigError::inconsistent(
                        "sms.webhook_secret",
                        "backend = \"webhook\" needs a secret of at least 32 characters \
                         (webhook_secret, webhook_secret_file or webhook_secret_env)",
                    ));
                }
            }
            SmsBackend::Twilio => {
                for (key, value) in [
                    ("sms.twilio_account_sid", self.twilio_account_sid.as_deref()),
                    (
                        "sms.twilio_auth_token",
                        self.twilio_auth_token.as_ref().map(Secret::expose),
                    ),
                    ("sms.twilio_from", self.twilio_from.as_deref()),
                ] {
                    if !nonempty(value) {
                        return Err(ConfigError::inconsistent(
                            key,
                            "is needed by backend = \"twilio\"",
                        ));
                    }
                }
                http_url("sms.twilio_base_url", &self.twilio_base_url)?;
            }
        }
        positive("sms.timeout_secs", self.timeout_secs)?;
        positive("sms.retry_max_attempts", u64::from(self.retry_max_attempts))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::testing::{load, load_err};

    const SECRET: &str = "an-sms-webhook-secret-of-32-characters";

    #[test]
    fn defaults() {
        let s = load("").sms;
        assert_eq!(s.backend, SmsBackend::Console);
        assert_eq!(s.file_path, PathBuf::from("./data/sms"));
        assert_eq!(s.twilio_base_url, "https://api.twilio.com");
        assert_eq!(
            (s.timeout_secs, s.retry_backoff_secs, s.retry_max_attempts),
            (10, 10, 8)
        );
    }

    #[test]
    fn webhook_needs_url_and_secret() {
        let err = load_err("[sms]\nbackend = \"webhook\"\n", &[]);
        assert!(err.to_string().contains("sms.webhook_url"), "{err}");
        let err = load_err(
            "[sms]\nbackend = \"webhook\"\nwebhook_url = \"https://gw.internal/sms\"\n",
            &[],
        );
        assert!(err.to_string().contains("sms.webhook_secret"), "{err}");
        let err = load_err(
            &format!("[sms]\nbackend = \"webhook\"\nwebhook_url = \"ftp://x\"\nwebhook_secret = \"{SECRET}\"\n"),
            &[],
        );
        assert!(err.to_string().contains("sms.webhook_url"), "{err}");
        let c = load(&format!(
            "[sms]\nbackend = \"webhook\"\nwebhook_url = \"https://gw.internal/sms\"\nwebhook_secret = \"{SECRET}\"\n"
        ));
        assert_eq!(c.sms.webhook_secret.unwrap().expose(), SECRET);
    }

    #[test]
    fn secrets_come_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tw-token\n").unwrap();
        let c = load(&format!(
            "[sms]\nbackend = \"twilio\"\ntwilio_account_sid = \"AC1\"\ntwilio_from = \"+15005550006\"\n\
             twilio_auth_token_file = {:?}\n",
            path.display().to_string()
        ));
        assert_eq!(c.sms.twilio_auth_token.unwrap().expose(), "tw-token");
        let err = load_err(
            "[sms]\ntwilio_auth_token = \"a\"\ntwilio_auth_token_env = \"B\"\n",
            &[],
        );
        assert!(err.to_string().contains("sms.twilio_auth_token"), "{err}");
        let err = load_err(
            "[sms]\nwebhook_secret_env = \"ALLAUTH_TEST_SURELY_UNSET_SMS_SECRET\"\n",
            &[],
        );
        assert!(err.to_string().contains("sms.webhook_secret_env"), "{err}");
    }

    #[test]
    fn twilio_needs_sid_token_and_sender() {
        let base = "[sms]\nbackend = \"twilio\"\n";
        let err = load_err(base, &[]);
        assert!(err.to_string().contains("sms.twilio_account_sid"), "{err}");
        let err = load_err(&format!("{base}twilio_account_sid = \"AC1\"\n"), &[]);
        assert!(err.to_string().contains("sms.twilio_auth_token"), "{err}");
        let err = load_err(
            &format!("{base}twilio_account_sid = \"AC1\"\ntwilio_auth_token = \"t\"\n"),
            &[],
        );
        assert!(err.to_string().contains("sms.twilio_from"), "{err}");
        let c = load(&format!(
            "{base}twilio_account_sid = \"AC1\"\ntwilio_auth_token = \"t\"\ntwilio_from = \"+15005550006\"\n"
        ));
        assert_eq!(c.sms.backend, SmsBackend::Twilio);
        assert!(!format!("{c:?}").contains("\"t\""));
    }
}
