//! Recovery codes as allauth's `mfa.recovery_codes` keeps them: not the
//! codes but a random seed (80 hex characters) from which the codes are
//! derived, and a bit mask of the used ones. Code `i` is the first
//! `digits / 2` bytes (at most 20) of an HMAC-SHA1 keyed with the seed over
//! the running input `"  0,  1,…  i,"`, as a big-endian number modulo
//! 10^digits, zero-padded — the same codes allauth derives, so an imported
//! authenticator keeps its codes. allauth's older `migrated_codes` (a plain
//! list, a used code removed from it) are read too.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use crate::app::security::secrets::{constant_time_eq, hex, random_bytes};

/// The `data` of a recovery-code authenticator (seed and codes sealed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryCodesData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(default)]
    pub used_mask: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_codes: Option<Vec<String>>,
    /// When the codes were first shown (seconds), for `recovery_codes_show_once`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewed_at: Option<f64>,
}

/// A new seed: 40 random bytes in hex (allauth's `token_hex(40)`).
pub fn generate_seed() -> String {
    let bytes: [u8; 40] = random_bytes();
    hex(&bytes)
}

/// The `count` codes of `seed`, `digits` digits each.
pub fn codes_of_seed(seed: &str, count: u32, digits: u32) -> Vec<String> {
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(seed.as_bytes()) else {
        return Vec::new();
    };
    let byte_count = usize::try_from(digits / 2).unwrap_or(20).min(20);
    let modulus = 10u128.pow(digits.min(38));
    (0..count)
        .map(|i| {
            mac.update(format!("{i:>3},").as_bytes());
            let digest = mac.clone().finalize().into_bytes();
            let value = digest[..byte_count]
                .iter()
                .fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
            let width = usize::try_from(digits).unwrap_or(8);
            format!("{:0width$}", value % modulus)
        })
        .collect()
}

/// The codes of a set and which are used, in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codes {
    /// Every code, in order (for a migrated set: the unused ones).
    pub all: Vec<String>,
    pub used_mask: u64,
    pub migrated: bool,
}

impl Codes {
    pub fn unused(&self) -> Vec<String> {
        self.all
            .iter()
            .enumerate()
            .filter(|(i, _)| self.migrated || !self.is_used(*i))
            .map(|(_, c)| c.clone())
            .collect()
    }

    fn is_used(&self, i: usize) -> bool {
        i < 64 && self.used_mask & (1u64 << i) != 0
    }

    /// The position of `given` among the unused codes, compared in
    /// constant time with each.
    pub fn find_unused(&self, given: &str) -> Option<usize> {
        let given = given.trim();
        let mut found = None;
        for (i, code) in self.all.iter().enumerate() {
            let unused = self.migrated || !self.is_used(i);
            if constant_time_eq(code.as_bytes(), given.as_bytes()) && unused && found.is_none() {
                found = Some(i);
            }
        }
        found
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_allauths() {
        // What allauth's RecoveryCodes.generate_codes gives for this seed
        // (computed with its algorithm in Python: 3 codes of 8 digits).
        let codes = codes_of_seed("seed", 3, 8);
        assert_eq!(codes, vec!["06091088", "53446901", "40345191"]);
        // Deterministic, and each prefix stays the same when the count grows.
        assert_eq!(codes_of_seed("seed", 3, 8), codes);
        assert_eq!(codes_of_seed("seed", 5, 8)[..3], codes[..]);
        assert_ne!(codes_of_seed("other", 3, 8), codes);
    }

    #[test]
    fn unused_and_lookup() {
        let set = Codes {
            all: vec!["11111111".into(), "22222222".into(), "33333333".into()],
            used_mask: 0b010,
            migrated: false,
        };
        assert_eq!(set.unused(), vec!["11111111", "33333333"]);
        assert_eq!(set.find_unused(" 33333333 "), Some(2));
        assert_eq!(set.find_unused("22222222"), None);
        assert_eq!(set.find_unused(""), None);
        assert_eq!(generate_seed().len(), 80);
    }
}
