//! `[session]`: Django's `SESSION_COOKIE_*` (browser clients), and the cookie `SameSite` attribute `[csrf]` shares.

use serde::{Deserialize, Serialize};

use super::checks::{cookie_name, positive, samesite_needs_secure};
use super::ConfigError;

/// Cookie `SameSite` attribute (Django `*_COOKIE_SAMESITE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum SameSite {
    #[default]
    #[serde(alias = "lax")]
    Lax,
    #[serde(alias = "strict")]
    Strict,
    #[serde(alias = "none")]
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// `[session]`: Django's `SESSION_COOKIE_*` (browser clients).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionCookieConfig {
    pub cookie_name: String,
    /// Seconds.
    pub cookie_age: u64,
    pub cookie_secure: bool,
    pub cookie_httponly: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    pub cookie_path: String,
}

impl Default for SessionCookieConfig {
    fn default() -> Self {
        SessionCookieConfig {
            cookie_name: "sessionid".to_owned(),
            cookie_age: 1_209_600,
            cookie_secure: false,
            cookie_httponly: true,
            cookie_samesite: SameSite::Lax,
            cookie_domain: None,
            cookie_path: "/".to_owned(),
        }
    }
}

impl SessionCookieConfig {
    /// When a session saved at `now_ms` expires (unix epoch milliseconds).
    pub fn expires_at(&self, now_ms: i64) -> i64 {
        let age_ms = i64::try_from(self.cookie_age)
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        now_ms.saturating_add(age_ms)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        cookie_name("session.cookie_name", &self.cookie_name)?;
        positive("session.cookie_age", self.cookie_age)?;
        samesite_needs_secure("session", self.cookie_samesite, self.cookie_secure)?;
        if !self.cookie_path.starts_with('/') {
            return Err(ConfigError::inconsistent(
                "session.cookie_path",
                "must start with /",
            ));
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
        let se = &c.session;
        assert_eq!(
            (se.cookie_name.as_str(), se.cookie_age),
            ("sessionid", 1_209_600)
        );
        assert!(!se.cookie_secure && se.cookie_httponly);
        assert_eq!(se.cookie_samesite, SameSite::Lax);
        assert!(se.cookie_domain.is_none());
        assert_eq!(se.cookie_path, "/");
    }
}
