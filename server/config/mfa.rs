//! `[mfa]`: django-allauth's `MFA_*` settings and the checks of allauth's `mfa/checks.py`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::checks::positive;
use super::{
    AccountConfig, ConfigError, EmailVerification, MfaRateLimitOverrides, RateLimit, RateLimits,
};

/// `MFA_SUPPORTED_TYPES` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaType {
    RecoveryCodes,
    Totp,
    Webauthn,
}

impl MfaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MfaType::RecoveryCodes => "recovery_codes",
            MfaType::Totp => "totp",
            MfaType::Webauthn => "webauthn",
        }
    }
}

impl PartialEq<str> for MfaType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// `[mfa]`: django-allauth's `MFA_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// `allauth.mfa` in `INSTALLED_APPS`.
    pub enabled: bool,
    pub supported_types: Vec<MfaType>,
    pub passkey_login_enabled: bool,
    pub passkey_signup_enabled: bool,
    /// Seconds.
    pub totp_period: u32,
    pub totp_digits: u32,
    /// Periods accepted either side of now.
    pub totp_tolerance: u32,
    /// `None` = allauth's default (the site name).
    pub totp_issuer: Option<String>,
    pub recovery_code_count: u32,
    pub recovery_code_digits: u32,
    /// Show the unused recovery codes only the first time they are viewed.
    pub recovery_codes_show_once: bool,
    pub trust_enabled: bool,
    /// Seconds.
    pub trust_cookie_age: u64,
    /// The trust cookie's name; its path, domain, `Secure`, `HttpOnly`
    /// and `SameSite` are the session cookie's (allauth's defaults).
    pub trust_cookie_name: String,
    pub webauthn_allow_insecure_origin: bool,
    /// The WebAuthn relying party id (a domain). `None`: the host of the
    /// frontend URLs, else `localhost`.
    pub webauthn_rp_id: Option<String>,
    /// The relying party's name shown by authenticators. `None`: the site name.
    pub webauthn_rp_name: Option<String>,
    /// The origins (`https://app.example.com`) WebAuthn ceremonies may come
    /// from. Empty: the origins of the frontend URLs, else `https://<rp id>`.
    pub webauthn_origins: Vec<String>,
    /// Let users with an unverified address add a second factor (allauth
    /// refuses by default: whoever signed up with someone else's address
    /// could lock its owner out).
    pub allow_unverified_email: bool,
    /// `false`, or a table of action → rate merged over the defaults. Read
    /// the effective limits with [`MfaConfig::rate_limits`].
    pub rate_limits: RateLimits<MfaRateLimitOverrides>,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            enabled: true,
            supported_types: vec![MfaType::RecoveryCodes, MfaType::Totp],
            passkey_login_enabled: false,
            passkey_signup_enabled: false,
            totp_period: 30,
            totp_digits: 6,
            totp_tolerance: 0,
            totp_issuer: None,
            recovery_code_count: 10,
            recovery_code_digits: 8,
            recovery_codes_show_once: false,
            trust_enabled: false,
            trust_cookie_age: 14 * 24 * 3600,
            trust_cookie_name: "mfa_trusted".to_owned(),
            webauthn_allow_insecure_origin: false,
            webauthn_rp_id: None,
            webauthn_rp_name: None,
            webauthn_origins: Vec::new(),
            allow_unverified_email: false,
            rate_limits: RateLimits::default(),
        }
    }
}

impl MfaConfig {
    /// Effective MFA rate limits (see [`AccountConfig::rate_limits`]).
    pub fn rate_limits(&self) -> &BTreeMap<String, Vec<RateLimit>> {
        self.rate_limits.effective()
    }

    pub fn supports(&self, kind: MfaType) -> bool {
        self.supported_types.contains(&kind)
    }

    pub(super) fn validate(&self, account: &AccountConfig) -> Result<(), ConfigError> {
        if self.supported_types.len() != self.supported_types.iter().collect::<BTreeSet<_>>().len()
        {
            return Err(ConfigError::inconsistent(
                "mfa.supported_types",
                "lists a type twice",
            ));
        }
        // allauth silently turns passkey login off without webauthn; we refuse.
        if self.passkey_login_enabled && !self.supports(MfaType::Webauthn) {
            return Err(ConfigError::inconsistent(
                "mfa.passkey_login_enabled",
                "requires \"webauthn\" in mfa.supported_types",
            ));
        }
        // allauth mfa/checks.py: the four requirements of passkey signup.
        if self.passkey_signup_enabled {
            if !self.supports(MfaType::Webauthn) {
                return Err(ConfigError::inconsistent(
                    "mfa.passkey_signup_enabled",
                    "requires \"webauthn\" in mfa.supported_types",
                ));
            }
            if !account.email_verification_by_code_enabled {
                return Err(ConfigError::inconsistent(
                    "mfa.passkey_signup_enabled",
                    "requires account.email_verification_by_code_enabled = true",
                ));
            }
            if !account.email_required() {
                return Err(ConfigError::inconsistent(
                    "mfa.passkey_signup_enabled",
                    "requires \"email*\" in account.signup_fields",
                ));
            }
            if account.email_verification != EmailVerification::Mandatory {
                return Err(ConfigError::inconsistent(
                    "mfa.passkey_signup_enabled",
                    "requires account.email_verification = \"mandatory\"",
                ));
            }
        }
        positive("mfa.totp_period", u64::from(self.totp_period))?;
        // RFC 4226/6238 codes have 6 to 8 digits.
        if !(6..=8).contains(&self.totp_digits) {
            return Err(ConfigError::inconsistent(
                "mfa.totp_digits",
                "must be 6, 7 or 8",
            ));
        }
        positive(
            "mfa.recovery_code_count",
            u64::from(self.recovery_code_count),
        )?;
        // The used codes are a 64-bit mask.
        if self.recovery_code_count > 64 {
            return Err(ConfigError::inconsistent(
                "mfa.recovery_code_count",
                "must be at most 64",
            ));
        }
        if !(4..=20).contains(&self.recovery_code_digits) {
            return Err(ConfigError::inconsistent(
                "mfa.recovery_code_digits",
                "must be between 4 and 20",
            ));
        }
        positive("mfa.trust_cookie_age", self.trust_cookie_age)?;
        for origin in &self.webauthn_origins {
            let parsed = url::Url::parse(origin)
                .ok()
                .filter(|u| u.origin().is_tuple() && (u.path() == "/" || u.path().is_empty()));
            let Some(parsed) = parsed else {
                return Err(ConfigError::inconsistent(
                    "mfa.webauthn_origins",
                    "must hold origins such as \"https://app.example.com\"",
                ));
            };
            let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1"));
            if parsed.scheme() != "https" && !local && !self.webauthn_allow_insecure_origin {
                return Err(ConfigError::inconsistent(
                    "mfa.webauthn_origins",
                    "http:// origins need mfa.webauthn_allow_insecure_origin = true",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::ratelimits::{rl, RateLimitPer};
    use crate::config::testing::load;

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        let m = &c.mfa;
        assert!(m.enabled);
        assert_eq!(
            m.supported_types,
            vec![MfaType::RecoveryCodes, MfaType::Totp]
        );
        assert!(!m.passkey_login_enabled && !m.passkey_signup_enabled);
        assert_eq!((m.totp_period, m.totp_digits, m.totp_tolerance), (30, 6, 0));
        assert!(m.totp_issuer.is_none());
        assert_eq!((m.recovery_code_count, m.recovery_code_digits), (10, 8));
        assert!(!m.trust_enabled && !m.webauthn_allow_insecure_origin);
        assert_eq!(m.trust_cookie_age, 1_209_600);
        assert_eq!(
            m.rate_limits().get("webauthn_login"),
            Some(&vec![rl(10, 60, RateLimitPer::Ip)])
        );
    }
}
