//! Secrets kept in the database but needed in the clear later (TOTP
//! secrets, recovery-code seeds): sealed with XChaCha20-Poly1305 under a key
//! derived from `server.secret_key` and the value's purpose, so that a copy
//! of the database alone reveals nothing, and a sealed value moved to
//! another purpose or row type does not open.
//!
//! A sealed value reads `sealed:v1:<base64url(nonce ‖ ciphertext)>`; the
//! nonce is 24 random bytes, so nonces never repeat in practice. A value
//! without that prefix is taken as stored in the clear (as a
//! django-allauth database keeps them, its adapter's `encrypt` being the
//! identity), so imported rows work before they are sealed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::codes::derive_key;
use super::secrets::random_bytes;

const PREFIX: &str = "sealed:v1:";
const NONCE_LENGTH: usize = 24;

fn cipher(secret: &str, purpose: &str) -> XChaCha20Poly1305 {
    let key = derive_key(secret, &format!("seal:{purpose}"));
    XChaCha20Poly1305::new(&key.into())
}

/// `plain` sealed for `purpose`.
pub fn seal(secret: &str, purpose: &str, plain: &str) -> String {
    let nonce: [u8; NONCE_LENGTH] = random_bytes();
    let sealed = cipher(secret, purpose)
        .encrypt(&XNonce::from(nonce), plain.as_bytes())
        .unwrap_or_default();
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The clear text of a value [`seal`]ed for `purpose` (or of a value stored
/// in the clear); `None` when it does not open (another secret key, another
/// purpose, tampering).
pub fn open(secret: &str, purpose: &str, stored: &str) -> Option<String> {
    let Some(encoded) = stored.strip_prefix(PREFIX) else {
        return Some(stored.to_owned());
    };
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    if bytes.len() < NONCE_LENGTH {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LENGTH);
    let nonce: [u8; NONCE_LENGTH] = nonce.try_into().ok()?;
    let plain = cipher(secret, purpose)
        .decrypt(&XNonce::from(nonce), sealed)
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-for-sealing-only-0123456789-abcdefghijklmnop";

    #[test]
    fn round_trip_and_refusals() {
        let sealed = seal(SECRET, "totp", "JBSWY3DPEHPK3PXP");
        assert!(sealed.starts_with("sealed:v1:"));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(open(SECRET, "totp", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        // A fresh nonce each time.
        assert_ne!(sealed, seal(SECRET, "totp", "JBSWY3DPEHPK3PXP"));
        // Another purpose or key does not open it; nor does a changed byte.
        assert_eq!(open(SECRET, "recovery-codes", &sealed), None);
        assert_eq!(
            open(
                "another-secret-entirely-0123456789-abcdefghijklmn",
                "totp",
                &sealed
            ),
            None
        );
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(open(SECRET, "totp", &tampered), None);
        assert_eq!(open(SECRET, "totp", "sealed:v1:"), None);
        assert_eq!(open(SECRET, "totp", "sealed:v1:!!"), None);
        // Values stored in the clear (imported from django-allauth) read as they are.
        assert_eq!(
            open(SECRET, "totp", "JBSWY3DPEHPK3PXP").unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
    }
}
