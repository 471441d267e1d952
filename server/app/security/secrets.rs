//! Small helpers for secret material: constant-time comparison, OS randomness, and the redacting string wrapper.
//!
//! [`SecretString`] is the configuration's [`Secret`](crate::config::Secret)
//! (its `Debug` and `Display` print `[redacted]`), re-exported so that the
//! whole server has one such type.

use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use subtle::ConstantTimeEq;

pub use crate::config::Secret as SecretString;

/// Whether `a` and `b` are equal, in time that depends only on their
/// lengths (never on where they first differ). Different lengths are unequal.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Fills `buf` from the operating system's random source.
///
/// Should the OS source fail (it does not on any supported platform), the
/// bytes come from rand's thread-local CSPRNG, itself seeded from the OS.
pub fn fill_random(buf: &mut [u8]) {
    if let Err(error) = OsRng.try_fill_bytes(buf) {
        tracing::error!(%error, "OS random source failed; using the thread-local CSPRNG");
        rand::rng().fill_bytes(buf);
    }
}

/// `N` random bytes from [`fill_random`].
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    fill_random(&mut buf);
    buf
}

/// A string of `length` characters drawn uniformly from `alphabet` (ASCII,
/// 1 to 256 distinct bytes), without modulo bias: bytes that would favour
/// the first characters are rejected and drawn again.
pub fn random_string(alphabet: &[u8], length: usize) -> String {
    let n = alphabet.len();
    if n == 0 {
        return String::new();
    }
    // The largest multiple of n that fits in a byte's 256 values.
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(length);
    let mut pool = [0u8; 64];
    while out.len() < length {
        fill_random(&mut pool);
        for &byte in &pool {
            if usize::from(byte) < limit {
                out.push(char::from(alphabet[usize::from(byte) % n]));
                if out.len() == length {
                    break;
                }
            }
        }
    }
    out
}

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn randomness() {
        let a: [u8; 32] = random_bytes();
        let b: [u8; 32] = random_bytes();
        assert_ne!(a, b);
        let s = random_string(b"ab", 1000);
        assert_eq!(s.len(), 1000);
        assert!(s.contains('a') && s.contains('b'));
        assert!(s.chars().all(|c| c == 'a' || c == 'b'));
        assert_eq!(random_string(b"xyz", 0), "");
        assert_eq!(random_string(b"", 5), "");
        // Every character of a 36-letter alphabet turns up, in about equal numbers.
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let s = random_string(alphabet, 36_000);
        for &c in alphabet {
            let count = s.bytes().filter(|&b| b == c).count();
            assert!((700..1300).contains(&count), "{} {count}", char::from(c));
        }
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn secret_string_is_redacted() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }
}
