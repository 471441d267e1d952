//! `[cors]`: cross-origin access for SPAs served from another origin.

use serde::Deserialize;

use super::checks::is_origin;
use super::ConfigError;

/// `[cors]`: cross-origin access for SPAs on another origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), or `["*"]`; empty = no CORS headers.
    pub allowed_origins: Vec<String>,
    /// `Access-Control-Allow-Credentials` (cookies); refused with `"*"`.
    pub allow_credentials: bool,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allowed_origins: Vec::new(),
            allow_credentials: true,
            max_age: 86400,
        }
    }
}

impl CorsConfig {
    pub fn allows_any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    pub fn is_enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.allows_any_origin() {
            if self.allowed_origins.len() > 1 {
                return Err(ConfigError::inconsistent(
                    "cors.allowed_origins",
                    "\"*\" must be the only entry",
                ));
            }
            if self.allow_credentials {
                // Browsers reject credentialed responses to a wildcard origin,
                // and echoing any origin with credentials would hand sessions
                // to every site.
                return Err(ConfigError::inconsistent(
                    "cors.allowed_origins",
                    "\"*\" cannot be combined with cors.allow_credentials = true; list the origins",
                ));
            }
            return Ok(());
        }
        for origin in &self.allowed_origins {
            if !is_origin(origin, false) {
                return Err(ConfigError::inconsistent(
                    "cors.allowed_origins",
                    format!(
                        "{origin:?} is not an origin (scheme://host[:port], no path or trailing /)"
                    ),
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
        assert!(c.cors.allowed_origins.is_empty() && c.cors.allow_credentials);
        assert_eq!(c.cors.max_age, 86400);
    }

    #[test]
    fn cors_wildcard_with_credentials_is_refused() {
        let err = load_err("[cors]\nallowed_origins = [\"*\"]\n", &[]);
        assert_eq!(err.key(), Some("cors.allowed_origins"));
        assert!(err.to_string().contains("allow_credentials"), "{err}");
        let c = load("[cors]\nallowed_origins = [\"*\"]\nallow_credentials = false\n");
        assert!(c.cors.allows_any_origin());
        load(
            "[cors]\nallowed_origins = [\"https://app.example.com\", \"http://localhost:5173\"]\n",
        );
        let err = load_err(
            "[cors]\nallowed_origins = [\"https://app.example.com/\"]\n",
            &[],
        );
        assert_eq!(err.key(), Some("cors.allowed_origins"));
    }
}
