//! TOTP (RFC 6238) as allauth's `mfa.totp` does it: a 20-byte random secret
//! shown in base32, HMAC-SHA1 codes of `totp_digits` digits for steps of
//! `totp_period` seconds, `totp_tolerance` steps accepted either side of
//! now. The codes come from `totp-rs`; which step matched is returned, so
//! that the caller can refuse a step already used (see
//! `db::authenticators::take_totp_step`).

use totp_rs::{Algorithm, Builder, Secret};

use crate::app::security::secrets::{constant_time_eq, random_bytes};
use crate::config::MfaConfig;

/// A new secret, base32 (32 characters for allauth's 20 bytes).
pub fn generate_secret() -> String {
    let bytes: [u8; 20] = random_bytes();
    Secret::from(bytes).to_base32()
}

/// `Some` if `secret` is base32 that TOTP codes can be made from.
pub fn is_valid_secret(secret: &str) -> Option<()> {
    let bytes = Secret::try_from_base32(secret.trim().to_uppercase()).ok()?;
    (!bytes.as_bytes().is_empty()).then_some(())
}

/// The step (time counter) of the code `code` for `secret` around
/// `now_secs`, if it is right. Compared in constant time; whitespace
/// around the code is ignored. A secret that is not base32 matches nothing.
pub fn matching_step(config: &MfaConfig, secret: &str, code: &str, now_secs: i64) -> Option<u64> {
    let bytes = Secret::try_from_base32(secret.trim().to_uppercase()).ok()?;
    let digits = u8::try_from(config.totp_digits).ok()?;
    let step = u64::from(config.totp_period.max(1));
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_step_duration(step)
        .with_secret(bytes.as_bytes().to_vec())
        .build_noncompliant();
    let code = code.trim();
    let now = u64::try_from(now_secs).ok()?;
    let origin = now / step;
    let tolerance = u64::from(config.totp_tolerance);
    let mut found = None;
    // Every step of the window is computed, matched or not.
    for counter in origin.saturating_sub(tolerance)..=origin.saturating_add(tolerance) {
        let expected = totp.generate(counter * step).to_string();
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(counter);
        }
    }
    found
}

/// allauth's `build_totp_url`: `otpauth://totp/<label>?secret=…&issuer=…`,
/// with `digits` and `period` only when they differ from 6 and 30.
pub fn url(config: &MfaConfig, label: &str, issuer: &str, secret: &str) -> String {
    let mut url = format!(
        "otpauth://totp/{}?secret={}&issuer={}",
        quote(label, b"/"),
        quote(secret, b""),
        quote(issuer, b"")
    );
    if config.totp_digits != 6 {
        url.push_str(&format!("&digits={}", config.totp_digits));
    }
    if config.totp_period != 30 {
        url.push_str(&format!("&period={}", config.totp_period));
    }
    url
}

/// Percent-encoding as Python's `urllib.parse.quote(text, safe)`:
/// everything but ASCII letters, digits, `_.-~` and `safe`.
fn quote(text: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) || safe.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> MfaConfig {
        MfaConfig::default()
    }

    #[test]
    fn rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", 8 digits.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        let mut c = config();
        c.totp_digits = 8;
        assert_eq!(matching_step(&c, &secret, "94287082", 59), Some(1));
        assert_eq!(
            matching_step(&c, &secret, "07081804", 1_111_111_109),
            Some(37_037_036)
        );
        assert_eq!(
            matching_step(&c, &secret, "14050471", 1_111_111_111),
            Some(37_037_037)
        );
        assert_eq!(matching_step(&c, &secret, "94287082", 1_111_111_111), None);
    }

    #[test]
    fn tolerance_and_garbage() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 32);
        let bytes = Secret::try_from_base32(&secret).unwrap();
        let totp = Builder::new()
            .with_secret(bytes.as_bytes().to_vec())
            .build_noncompliant();
        let previous = totp.generate(1_000_000 - 30).to_string();
        assert_eq!(
            matching_step(&config(), &secret, &previous, 1_000_000),
            None
        );
        let mut c = config();
        c.totp_tolerance = 1;
        assert_eq!(
            matching_step(&c, &secret, &previous, 1_000_000),
            Some(1_000_000 / 30 - 1)
        );
        assert_eq!(matching_step(&c, &secret, "", 1_000_000), None);
        assert_eq!(matching_step(&c, "not base32!", "123456", 1_000_000), None);
    }

    #[test]
    fn url_as_allauth_builds_it() {
        let mut c = config();
        assert_eq!(
            url(&c, "a b@example.com", "Example Site", "ABC"),
            "otpauth://totp/a%20b%40example.com?secret=ABC&issuer=Example%20Site"
        );
        c.totp_digits = 8;
        c.totp_period = 60;
        assert!(url(&c, "x", "y", "Z").ends_with("&digits=8&period=60"));
    }
}
