//! `[email]`: where mail goes (Django's `EMAIL_*` and `DEFAULT_FROM_EMAIL`) and the retry queue.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::checks::positive;
use super::{ConfigError, Secret};

/// Where mail goes (Django `EMAIL_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailBackend {
    /// Written to standard output.
    #[default]
    Console,
    Smtp,
    /// One file per message in `file_path`.
    File,
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (Django's default: neither `EMAIL_USE_TLS` nor `EMAIL_USE_SSL`).
    #[default]
    None,
    /// `EMAIL_USE_TLS`.
    Starttls,
    /// `EMAIL_USE_SSL` (implicit TLS).
    Tls,
}

/// `[email]`: Django's `EMAIL_*` / `DEFAULT_FROM_EMAIL`, plus our retry queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub backend: EmailBackend,
    /// Django `DEFAULT_FROM_EMAIL`.
    pub from: String,
    /// Django `EMAIL_FILE_PATH` (file backend).
    pub file_path: PathBuf,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// Seconds.
    pub smtp_timeout: u64,
    /// Ours: delivery attempts before a mail is dropped.
    pub retry_max_attempts: u32,
    /// Ours: seconds before the first retry (doubling after).
    pub retry_backoff_secs: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            backend: EmailBackend::Console,
            from: "webmaster@localhost".to_owned(),
            file_path: PathBuf::from("./data/mail"),
            smtp_host: "localhost".to_owned(),
            smtp_port: 25,
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            smtp_timeout: 10,
            retry_max_attempts: 10,
            retry_backoff_secs: 30,
        }
    }
}

impl EmailConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.from.contains('@') {
            return Err(ConfigError::inconsistent(
                "email.from",
                format!("{:?} is not an email address", self.from),
            ));
        }
        if self.backend == EmailBackend::Smtp {
            if self.smtp_host.trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    "email.smtp_host",
                    "must not be empty",
                ));
            }
            positive("email.smtp_port", u64::from(self.smtp_port))?;
        }
        if self.smtp_password.is_some() && self.smtp_username.is_none() {
            return Err(ConfigError::inconsistent(
                "email.smtp_password",
                "is set but email.smtp_username is not",
            ));
        }
        positive("email.smtp_timeout", self.smtp_timeout)?;
        positive(
            "email.retry_max_attempts",
            u64::from(self.retry_max_attempts),
        )?;
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
        let e = &c.email;
        assert_eq!(e.backend, EmailBackend::Console);
        assert_eq!(e.from, "webmaster@localhost");
        assert_eq!(e.file_path, PathBuf::from("./data/mail"));
        assert_eq!(
            (e.smtp_host.as_str(), e.smtp_port, e.smtp_tls),
            ("localhost", 25, SmtpTls::None)
        );
        assert!(e.smtp_username.is_none() && e.smtp_password.is_none());
        assert_eq!(
            (e.smtp_timeout, e.retry_max_attempts, e.retry_backoff_secs),
            (10, 10, 30)
        );
    }
}
