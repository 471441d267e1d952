//! "Trust this browser" (allauth's `mfa.internal.flows.trust`): after the
//! second factor a browser may be given a cookie that lets it skip that
//! factor for `trust_cookie_age`. The cookie holds, signed with the server
//! secret, a list of (fingerprint, issued at) pairs; the fingerprint is a
//! MAC of the user's id, password hash and authenticators, so that any
//! change to them (a new password, an authenticator added or removed,
//! recovery codes regenerated) ends the trust.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::app::security::codes::{self, keyed_mac};
use crate::app::security::secrets::hex;
use crate::db::authenticators::Authenticator;
use crate::db::users::User;

/// The signer's salt for the cookie.
const SALT: &str = "mfa-trust";

/// The fingerprint of `user`'s security setup (`authenticators` by id).
pub fn fingerprint(secret: &str, user: &User, authenticators: &[Authenticator]) -> String {
    let mut parts = vec![
        user.id.to_string(),
        user.password_hash.clone().unwrap_or_default(),
    ];
    let mut sorted: Vec<&Authenticator> = authenticators.iter().collect();
    sorted.sort_by_key(|a| a.id);
    for authenticator in sorted {
        parts.push(authenticator.id.to_string());
        parts.push(authenticator.type_.clone());
        // The seed changes when recovery codes are regenerated.
        if let Ok(data) = serde_json::from_str::<serde_json::Value>(&authenticator.data) {
            if let Some(seed) = data.get("seed").and_then(|s| s.as_str()) {
                parts.push(seed.to_owned());
            }
        }
    }
    hex(&keyed_mac(
        secret,
        "mfa-trust-fingerprint",
        parts.join("|").as_bytes(),
    ))
}

/// The live (fingerprint, issued at) pairs of a cookie value; nothing for
/// a value that is not ours or was tampered with.
pub fn decode(
    secret: &str,
    value: Option<&str>,
    age_secs: u64,
    now_secs: i64,
) -> Vec<(String, i64)> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Vec::new();
    };
    let Ok(payload) = codes::unsign(secret, SALT, value, i64::MAX / 2, now_secs) else {
        return Vec::new();
    };
    let Ok(json) = URL_SAFE_NO_PAD.decode(payload) else {
        return Vec::new();
    };
    let entries: Vec<(String, i64)> = serde_json::from_slice(&json).unwrap_or_default();
    let age = i64::try_from(age_secs).unwrap_or(i64::MAX);
    entries
        .into_iter()
        .filter(|(_, at)| at.saturating_add(age) > now_secs)
        .collect()
}

/// A cookie value holding `entries`.
pub fn encode(secret: &str, entries: &[(String, i64)], now_secs: i64) -> String {
    let json = serde_json::to_vec(entries).unwrap_or_default();
    codes::sign(secret, SALT, &URL_SAFE_NO_PAD.encode(json), now_secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-for-trust-cookies-0123456789-abcdefghijklmn";

    #[test]
    fn cookie_round_trip_and_expiry() {
        let value = encode(SECRET, &[("fp".into(), 1000)], 1000);
        assert_eq!(
            decode(SECRET, Some(&value), 100, 1050),
            vec![("fp".into(), 1000)]
        );
        assert!(decode(SECRET, Some(&value), 100, 1100).is_empty());
        assert!(decode(
            "another-secret-0123456789-abcdefghijklmnopqrstuv",
            Some(&value),
            100,
            1050
        )
        .is_empty());
        assert!(decode(SECRET, Some("garbage"), 100, 1050).is_empty());
        assert!(decode(SECRET, None, 100, 1050).is_empty());
    }
}
