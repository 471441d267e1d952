//! User codes (mailed login, verification and reset codes), opaque session tokens, and signed expiring keys — all stored or compared only as hashes and MACs.
//!
//! * **User codes** follow allauth's `cryptokit.generate_user_code`: by
//!   default 8 characters of [`USER_CODE_ALPHABET`] (RFC 8628's consonants,
//!   no vowels so no words, no look-alike digits) shown as `XXXX-XXXX`;
//!   numeric codes are 9 digits shown `XXX-XXX-XXX`. A code given back is
//!   normalized first — punctuation and whitespace dropped, case folded
//!   ([`normalize_user_code`]) — as allauth's `compare_user_code` does.
//!   Flows keep only [`hash_code`] of a code (an HMAC keyed with the server
//!   secret, so a leaked table cannot be brute-forced offline without the
//!   secret) and check a submission with [`verify_code_hash`].
//! * **Tokens** ([`new_token`]) are Django session keys: 32 characters of
//!   `[a-z0-9]` (about 165 bits). The `sessions` table keeps
//!   [`token_hash`], the SHA-256 hex digest.
//! * **Signed keys** ([`sign`]/[`unsign`]) play the part of Django's
//!   `TimestampSigner` for email-verification links and password-reset keys:
//!   `value:timestamp:mac`, the MAC an HMAC-SHA256 under a key derived from
//!   the server secret and a per-purpose salt. Same behaviour (tamper
//!   detection, expiry, salts separate purposes); not byte-compatible.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::secrets::{constant_time_eq, hex, random_string};

type HmacSha256 = Hmac<Sha256>;

/// allauth's alphabet for letter codes (RFC 8628 §6.1: consonants only).
pub const USER_CODE_ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";

/// Characters of a session token (Django's `VALID_KEY_CHARS`).
const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a session token (Django's session keys).
pub const TOKEN_LENGTH: usize = 32;

/// How a user code looks (allauth's `UserCodeFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCodeFormat {
    /// `None`: 8 for letter codes, 9 for numeric ones (allauth's defaults).
    pub length: Option<usize>,
    pub numeric: bool,
    /// Split into 2 groups (8 characters or fewer) or 3 (more) joined by `-`.
    pub dashed: bool,
}

impl Default for UserCodeFormat {
    /// allauth's `USER_CODE_FORMAT` default: 8 letters, dashed.
    fn default() -> Self {
        UserCodeFormat {
            length: None,
            numeric: false,
            dashed: true,
        }
    }
}

/// A new code in allauth's default format, e.g. `KZTB-QWPD`.
pub fn generate_user_code() -> String {
    generate_user_code_with(UserCodeFormat::default())
}

/// A new code in `format`.
pub fn generate_user_code_with(format: UserCodeFormat) -> String {
    let (alphabet, default_length) = if format.numeric {
        ("0123456789", 9)
    } else {
        (USER_CODE_ALPHABET, 8)
    };
    let length = format.length.unwrap_or(default_length);
    let code = random_string(alphabet.as_bytes(), length);
    if !format.dashed || length == 0 {
        return code;
    }
    let parts = if length <= 8 { 2 } else { 3 };
    let chunk = length.div_ceil(parts);
    let groups: Vec<&str> = code
        .as_bytes()
        .chunks(chunk)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    groups.join("-")
}

/// A code as typed, reduced to what is compared: ASCII punctuation and all
/// whitespace removed, upper case (`" kztb-qwpd "` → `"KZTBQWPD"`).
pub fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_ascii_punctuation() && !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether two codes are the same once normalized, compared in constant
/// time. An empty expected code matches nothing (allauth's `compare_user_code`).
pub fn user_codes_equal(expected: &str, given: &str) -> bool {
    let expected = normalize_user_code(expected);
    let given = normalize_user_code(given);
    !expected.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes())
}

/// What a flow stores instead of a code: the lowercase hex HMAC-SHA256 of
/// the normalized code under a key derived from the server `secret`.
pub fn hash_code(secret: &str, code: &str) -> String {
    let mut mac = hmac_with_key(&derive_key(secret, "user-code"));
    mac.update(normalize_user_code(code).as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Whether `given` is the code whose [`hash_code`] is `stored_hash`
/// (constant-time; an empty code never matches).
pub fn verify_code_hash(secret: &str, stored_hash: &str, given: &str) -> bool {
    if normalize_user_code(given).is_empty() {
        return false;
    }
    constant_time_eq(hash_code(secret, given).as_bytes(), stored_hash.as_bytes())
}

/// A new opaque session token: 32 characters of `[a-z0-9]` from the OS RNG.
pub fn new_token() -> String {
    random_string(TOKEN_ALPHABET, TOKEN_LENGTH)
}

/// The lowercase hex SHA-256 of a token: what `sessions.key_hash` stores.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Why [`unsign`] refused a signed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Malformed, tampered with, or signed with another secret or salt.
    #[error("bad signature")]
    Bad,
    /// Authentic, but older than the allowed age.
    #[error("signature expired")]
    Expired,
}

/// `value.timestamp.mac` — `timestamp` is `now_secs` in base 62, `mac` the
/// URL-safe unpadded base64 HMAC-SHA256 of `value.timestamp` under a key
/// derived from `secret` and `salt` (give every purpose its own salt, e.g.
/// `"email-verification"`, `"password-reset"`). `value` may contain `.`.
/// The separator, base64url and base 62 are unreserved URL characters, so
/// a key made of them goes into a link's path as it is, unescaped (as
/// allauth's reset keys do); `value` is the caller's to keep so.
pub fn sign(secret: &str, salt: &str, value: &str, now_secs: i64) -> String {
    let payload = format!("{value}.{}", to_base62(now_secs.max(0).unsigned_abs()));
    let mac = URL_SAFE_NO_PAD.encode(signing_mac(secret, salt, &payload));
    format!("{payload}.{mac}")
}

/// Separators of a signed value: `.` now, `:` in keys made before links
/// carried keys unescaped (still accepted until they expire).
const SEPARATORS: [char; 2] = ['.', ':'];

/// The value [`sign`] signed, if the MAC is right (checked in constant time)
/// and the signature is at most `max_age_secs` old at `now_secs`.
pub fn unsign(
    secret: &str,
    salt: &str,
    signed: &str,
    max_age_secs: i64,
    now_secs: i64,
) -> Result<String, SignError> {
    let (payload, mac) = signed.rsplit_once(SEPARATORS).ok_or(SignError::Bad)?;
    let given = URL_SAFE_NO_PAD.decode(mac).map_err(|_| SignError::Bad)?;
    let expected = signing_mac(secret, salt, payload);
    if !constant_time_eq(&given, &expected) {
        return Err(SignError::Bad);
    }
    let (value, timestamp) = payload.rsplit_once(SEPARATORS).ok_or(SignError::Bad)?;
    let timestamp = from_base62(timestamp).ok_or(SignError::Bad)?;
    let timestamp = i64::try_from(timestamp).map_err(|_| SignError::Bad)?;
    if now_secs.saturating_sub(timestamp) > max_age_secs {
        return Err(SignError::Expired);
    }
    Ok(value.to_owned())
}

fn signing_mac(secret: &str, salt: &str, payload: &str) -> Vec<u8> {
    let mut mac = hmac_with_key(&derive_key(secret, &format!("signer:{salt}")));
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA256 of `data` under the key for `purpose` (see [`derive_key`]).
pub fn keyed_mac(secret: &str, purpose: &str, data: &[u8]) -> [u8; 32] {
    let mut mac = hmac_with_key(&derive_key(secret, purpose));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A 32-byte key for one purpose, so that a MAC made for one use (a code
/// hash, a reset key) is never valid for another.
pub fn derive_key(secret: &str, purpose: &str) -> [u8; 32] {
    let mut mac = hmac_with_key(secret.as_bytes());
    mac.update(b"allauth-server:");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 keyed with `key` of any length, without the fallible
/// `new_from_slice`: this is HMAC's own key preparation (a key longer than
/// the 64-byte block is hashed first, then zero-padded to the block).
fn hmac_with_key(key: &[u8]) -> HmacSha256 {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <HmacSha256 as KeyInit>::new(&block.into())
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn to_base62(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(BASE62[usize::try_from(n % 62).unwrap_or(0)]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn from_base62(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 11 {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        let digit = BASE62.iter().position(|&d| d == b)?;
        acc.checked_mul(62)?.checked_add(u64::try_from(digit).ok()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-long-test-secret-that-is-not-used-anywhere-else-0123456789";

    #[test]
    fn user_code_format() {
        for _ in 0..200 {
            let code = generate_user_code();
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(&code[4..5], "-");
            assert!(code
                .chars()
                .filter(|&c| c != '-')
                .all(|c| USER_CODE_ALPHABET.contains(c)));
        }
        let numeric = generate_user_code_with(UserCodeFormat {
            numeric: true,
            ..UserCodeFormat::default()
        });
        assert_eq!(numeric.len(), 11, "{numeric}");
        assert_eq!(
            numeric.split('-').map(str::len).collect::<Vec<_>>(),
            [3, 3, 3]
        );
        assert!(numeric.chars().all(|c| c == '-' || c.is_ascii_digit()));
        let plain = generate_user_code_with(UserCodeFormat {
            length: Some(6),
            numeric: true,
            dashed: false,
        });
        assert_eq!(plain.len(), 6);
        assert!(plain.chars().all(|c| c.is_ascii_digit()));
        let ten = generate_user_code_with(UserCodeFormat {
            length: Some(10),
            ..UserCodeFormat::default()
        });
        // allauth: ceil(10 / 3) = 4 → "XXXX-XXXX-XX".
        assert_eq!(ten.split('-').map(str::len).collect::<Vec<_>>(), [4, 4, 2]);
        assert_ne!(generate_user_code(), generate_user_code());
    }

    #[test]
    fn normalization_and_comparison() {
        assert_eq!(normalize_user_code(" kztb-qwpd\n"), "KZTBQWPD");
        assert_eq!(normalize_user_code("KZ TB.QW_PD"), "KZTBQWPD");
        assert!(user_codes_equal("KZTB-QWPD", "kztbqwpd"));
        assert!(user_codes_equal("KZTB-QWPD", " kz-tb qw-pd "));
        assert!(!user_codes_equal("KZTB-QWPD", "KZTB-QWPB"));
        assert!(!user_codes_equal("KZTB-QWPD", "KZTB-QWP"));
        assert!(!user_codes_equal("", ""));
        assert!(!user_codes_equal("-", ""));
    }

    #[test]
    fn code_hashes() {
        let code = generate_user_code();
        let stored = hash_code(SECRET, &code);
        assert_eq!(stored.len(), 64);
        assert!(!stored.contains(&normalize_user_code(&code)));
        assert!(verify_code_hash(SECRET, &stored, &code));
        assert!(verify_code_hash(
            SECRET,
            &stored,
            &code.to_lowercase().replace('-', " ")
        ));
        assert!(!verify_code_hash(SECRET, &stored, "BBBB-BBBB"));
        assert!(!verify_code_hash("another secret", &stored, &code));
        assert!(!verify_code_hash(SECRET, &hash_code(SECRET, ""), ""));
        // Same code, same secret: same hash (it is looked up, not salted).
        assert_eq!(
            hash_code(SECRET, "kztb-qwpd"),
            hash_code(SECRET, "KZTBQWPD")
        );
    }

    #[test]
    fn tokens() {
        let t = new_token();
        assert_eq!(t.len(), TOKEN_LENGTH);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(new_token(), new_token());
        // SHA-256("abc"), FIPS 180-2.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 (short key) and 6 (key longer than the block).
        let mut mac = hmac_with_key(b"Jefe");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut mac = hmac_with_key(&[0xaa; 131]);
        mac.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signing_round_trip_and_expiry() {
        let now = 1_700_000_000;
        let signed = sign(SECRET, "email-verification", "42:a@example.com", now);
        assert!(signed.starts_with("42:a@example.com."));
        assert!(!signed.contains(['=', '+', '/']));
        let max_age = 3 * 86400;
        assert_eq!(
            unsign(SECRET, "email-verification", &signed, max_age, now).as_deref(),
            Ok("42:a@example.com")
        );
        assert_eq!(
            unsign(
                SECRET,
                "email-verification",
                &signed,
                max_age,
                now + max_age
            )
            .as_deref(),
            Ok("42:a@example.com")
        );
        assert_eq!(
            unsign(
                SECRET,
                "email-verification",
                &signed,
                max_age,
                now + max_age + 1
            ),
            Err(SignError::Expired)
        );
        assert_eq!(
            unsign(SECRET, "", &sign(SECRET, "", "", 0), 10, 5).as_deref(),
            Ok("")
        );
    }

    #[test]
    fn signing_detects_tampering() {
        let now = 1_700_000_000;
        let signed = sign(SECRET, "password-reset", "7", now);
        let unsign_at = |s: &str| unsign(SECRET, "password-reset", s, 60, now);
        assert!(unsign_at(&signed).is_ok());
        // Another salt or secret.
        assert_eq!(
            unsign(SECRET, "email-verification", &signed, 60, now),
            Err(SignError::Bad)
        );
        assert_eq!(
            unsign("other", "password-reset", &signed, 60, now),
            Err(SignError::Bad)
        );
        // Changed value, changed timestamp, changed or cut MAC.
        let (payload, mac) = signed.rsplit_once('.').unwrap();
        let (value, ts) = payload.rsplit_once('.').unwrap();
        assert_eq!(unsign_at(&format!("8.{ts}.{mac}")), Err(SignError::Bad));
        assert_eq!(
            unsign_at(&format!("{value}.{}.{mac}", to_base62(now as u64 + 100))),
            Err(SignError::Bad)
        );
        let mut flipped = mac.as_bytes().to_vec();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            unsign_at(&format!("{payload}.{flipped}")),
            Err(SignError::Bad)
        );
        assert_eq!(
            unsign_at(&format!("{payload}.{}", &mac[..mac.len() - 2])),
            Err(SignError::Bad)
        );
        for junk in ["", "7", "7:abc", ":::", "...", "7.zzzzzzzzzzzzz.AAAA"] {
            assert_eq!(unsign_at(junk), Err(SignError::Bad), "{junk:?}");
        }
    }

    #[test]
    fn signed_values_need_no_escaping_in_a_url() {
        let signed = sign(SECRET, "password-reset", "117.c4a6", 1_700_000_000);
        assert!(
            signed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
            "{signed}"
        );
        // A key made with the old `:` separator still verifies.
        let (payload, _) = signed.rsplit_once('.').unwrap();
        let (value, ts) = payload.rsplit_once('.').unwrap();
        let old_payload = format!("{value}:{ts}");
        let mac = URL_SAFE_NO_PAD.encode(signing_mac(SECRET, "password-reset", &old_payload));
        let old = format!("{old_payload}:{mac}");
        assert_eq!(
            unsign(SECRET, "password-reset", &old, 60, 1_700_000_000).as_deref(),
            Ok("117.c4a6")
        );
    }

    #[test]
    fn base62() {
        for n in [0, 1, 61, 62, 3843, 1_700_000_000, u64::MAX] {
            assert_eq!(from_base62(&to_base62(n)), Some(n), "{n}");
        }
        assert_eq!(to_base62(61), "z");
        assert_eq!(to_base62(62), "10");
        assert_eq!(from_base62(""), None);
        assert_eq!(from_base62("-1"), None);
        assert_eq!(from_base62("zzzzzzzzzzz"), None); // overflows u64
    }
}
