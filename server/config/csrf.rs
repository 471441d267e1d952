//! `[csrf]`: Django's `CSRF_*` (browser clients).

use serde::Deserialize;

use super::checks::{cookie_name, header_name, is_origin, samesite_needs_secure};
use super::{ConfigError, SameSite, SessionCookieConfig};

/// `[csrf]`: Django's `CSRF_*` (browser clients).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsrfConfig {
    pub cookie_name: String,
    /// Request header carrying the token (Django `CSRF_HEADER_NAME`, as a header name).
    pub header_name: String,
    pub cookie_secure: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    /// Origins trusted for unsafe requests besides our own (`https://*.example.com` allowed).
    pub trusted_origins: Vec<String>,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        CsrfConfig {
            cookie_name: "csrftoken".to_owned(),
            header_name: "X-CSRFToken".to_owned(),
            cookie_secure: false,
            cookie_samesite: SameSite::Lax,
            cookie_domain: None,
            trusted_origins: Vec::new(),
        }
    }
}

impl CsrfConfig {
    pub(super) fn validate(&self, session: &SessionCookieConfig) -> Result<(), ConfigError> {
        cookie_name("csrf.cookie_name", &self.cookie_name)?;
        if self.cookie_name == session.cookie_name {
            return Err(ConfigError::inconsistent(
                "csrf.cookie_name",
                "must differ from session.cookie_name",
            ));
        }
        header_name("csrf.header_name", &self.header_name)?;
        samesite_needs_secure("csrf", self.cookie_samesite, self.cookie_secure)?;
        for origin in &self.trusted_origins {
            // Django 4.0's check: entries must start with a scheme.
            if !is_origin(origin, true) {
                return Err(ConfigError::inconsistent(
                    "csrf.trusted_origins",
                    format!("{origin:?} is not an origin (scheme://host[:port], e.g. https://*.example.com)"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::testing::load;
    use crate::config::SameSite;

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        let cs = &c.csrf;
        assert_eq!(
            (cs.cookie_name.as_str(), cs.header_name.as_str()),
            ("csrftoken", "X-CSRFToken")
        );
        assert!(!cs.cookie_secure && cs.cookie_domain.is_none() && cs.trusted_origins.is_empty());
        assert_eq!(cs.cookie_samesite, SameSite::Lax);
    }
}
