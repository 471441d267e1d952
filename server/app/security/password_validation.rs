//! Password rules: Django's four stock validators as configured by `account.password_validators`, or allauth's own minimum length when none is.
//!
//! allauth's `clean_password` applies `ACCOUNT_PASSWORD_MIN_LENGTH` (default
//! 6) only when Django's `AUTH_PASSWORD_VALIDATORS` is empty, then Django's
//! validators. Here the list is `account.password_validators`; the
//! `minimum_length` validator takes its minimum from
//! `account.password_min_length` (see
//! [`AccountConfig::effective_password_min_length`]). Validators run in the
//! configured order and every failing one adds its error, as Django's
//! `validate_password` does. Codes and messages are Django's:
//!
//! | validator | code | message |
//! |---|---|---|
//! | `minimum_length` | `password_too_short` | This password is too short. It must contain at least %d characters. |
//! | `user_attribute_similarity` | `password_too_similar` | The password is too similar to the %(verbose_name)s. |
//! | `common_password` | `password_too_common` | This password is too common. |
//! | `numeric_password` | `password_entirely_numeric` | This password is entirely numeric. |
//!
//! Errors come back with `param: None`; the caller sets the field name
//! (`password`, `new_password`, …) it validated.
//!
//! Differences from Python that can only matter for exotic input: "entirely
//! numeric" uses Rust's `char::is_numeric` (Unicode Nd, Nl, No) where Python's
//! `str.isdigit` takes Nd and the digit-like part of No; splitting attribute
//! values on `\W+` takes a word character to be alphanumeric or `_`.

use std::collections::HashSet;
use std::io::Read as _;
use std::sync::OnceLock;

use crate::app::FieldError;
use crate::config::{AccountConfig, PasswordValidator};

/// Django's `UserAttributeSimilarityValidator` default `max_similarity`.
pub const MAX_SIMILARITY: f64 = 0.7;

/// Django's list of 20,000 common passwords (19,640 after deduplication),
/// lowercased: `django/contrib/auth/common-passwords.txt.gz` from Django
/// 5.2.19, compiled by Royce Williams
/// (<https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce>),
/// © Django Software Foundation and contributors, BSD 3-Clause licence —
/// the notice is in `data/common-passwords.LICENSE`.
static COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("data/common-passwords.txt.gz");

/// One attribute of the user a password must not resemble: Django's
/// `verbose_name` (used in the message) and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAttribute<'a> {
    pub verbose_name: &'a str,
    pub value: &'a str,
}

impl<'a> UserAttribute<'a> {
    /// Django's `DEFAULT_USER_ATTRIBUTES` are username, first name, last
    /// name and email; these build them with Django's verbose names.
    pub fn username(value: &'a str) -> Self {
        UserAttribute {
            verbose_name: "username",
            value,
        }
    }

    pub fn first_name(value: &'a str) -> Self {
        UserAttribute {
            verbose_name: "first name",
            value,
        }
    }

    pub fn last_name(value: &'a str) -> Self {
        UserAttribute {
            verbose_name: "last name",
            value,
        }
    }

    pub fn email(value: &'a str) -> Self {
        UserAttribute {
            verbose_name: "email address",
            value,
        }
    }
}

/// Validates `password` for a user with `user_attributes` (empty when there
/// is no user to compare with). `Err` holds one error per failing validator,
/// each with `param: None`.
pub fn validate_password(
    config: &AccountConfig,
    password: &str,
    user_attributes: &[UserAttribute<'_>],
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if config.password_validators.is_empty() {
        errors.extend(minimum_length(password, config.password_min_length));
    }
    for validator in &config.password_validators {
        errors.extend(match validator {
            PasswordValidator::MinimumLength => {
                minimum_length(password, config.password_min_length)
            }
            PasswordValidator::UserAttributeSimilarity => {
                user_attribute_similarity(password, user_attributes, MAX_SIMILARITY)
            }
            PasswordValidator::CommonPassword => common_password(password),
            PasswordValidator::NumericPassword => numeric_password(password),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Django's `MinimumLengthValidator`: at least `min_length` characters
/// (Unicode scalar values, as Python's `len`).
pub fn minimum_length(password: &str, min_length: u32) -> Option<FieldError> {
    let length = password.chars().count();
    if u32::try_from(length).is_ok_and(|n| n >= min_length) {
        return None;
    }
    let noun = if min_length == 1 {
        "character"
    } else {
        "characters"
    };
    Some(FieldError::new(
        "password_too_short",
        None,
        format!("This password is too short. It must contain at least {min_length} {noun}."),
    ))
}

/// Django's `UserAttributeSimilarityValidator`: the password (lowercased)
/// must not have a `SequenceMatcher.quick_ratio` of `max_similarity` or more
/// with any attribute (lowercased) or any of its parts split on non-word
/// characters. Values too short relative to the password to reach the
/// threshold are skipped, as in Django. The first similar attribute names
/// the error.
pub fn user_attribute_similarity(
    password: &str,
    user_attributes: &[UserAttribute<'_>],
    max_similarity: f64,
) -> Option<FieldError> {
    let password: Vec<char> = password.to_lowercase().chars().collect();
    for attribute in user_attributes {
        if attribute.value.is_empty() {
            continue;
        }
        let value = attribute.value.to_lowercase();
        let mut parts = split_non_word(&value);
        parts.push(&value);
        for part in parts {
            let part: Vec<char> = part.chars().collect();
            if exceeds_maximum_length_ratio(password.len(), max_similarity, part.len()) {
                continue;
            }
            if quick_ratio(&password, &part) >= max_similarity {
                return Some(FieldError::new(
                    "password_too_similar",
                    None,
                    format!(
                        "The password is too similar to the {}.",
                        attribute.verbose_name
                    ),
                ));
            }
        }
    }
    None
}

/// Django's `CommonPasswordValidator`: the lowercased, trimmed password is
/// not in Django's list.
pub fn common_password(password: &str) -> Option<FieldError> {
    if common_passwords().contains(password.to_lowercase().trim()) {
        return Some(FieldError::new(
            "password_too_common",
            None,
            "This password is too common.",
        ));
    }
    None
}

/// Django's `NumericPasswordValidator`: not made of digits only (an empty
/// password is not numeric, as `"".isdigit()` is false).
pub fn numeric_password(password: &str) -> Option<FieldError> {
    if !password.is_empty() && password.chars().all(char::is_numeric) {
        return Some(FieldError::new(
            "password_entirely_numeric",
            None,
            "This password is entirely numeric.",
        ));
    }
    None
}

/// Django's `exceeds_maximum_length_ratio`: a value at most a tenth of the
/// password's length, and shorter than `max_similarity / 2` of it, cannot
/// reach the threshold (`quick_ratio` ≤ 2·len(value)/len(password)).
fn exceeds_maximum_length_ratio(
    password_len: usize,
    max_similarity: f64,
    value_len: usize,
) -> bool {
    let length_bound_similarity = max_similarity / 2.0 * password_len as f64;
    password_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// Python's `difflib.SequenceMatcher(a=a, b=b).quick_ratio()`: twice the
/// size of the multiset intersection of the characters over the total
/// length; 1.0 for two empty sequences.
fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let mut available: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    for &c in b {
        *available.entry(c).or_insert(0) += 1;
    }
    let mut matches = 0usize;
    for c in a {
        if let Some(n) = available.get_mut(c) {
            if *n > 0 {
                *n -= 1;
                matches += 1;
            }
        }
    }
    2.0 * matches as f64 / total as f64
}

/// Python's `re.split(r"\W+", text)`: the pieces between runs of non-word
/// characters, with an empty piece at either end when the text starts or
/// ends with such a run.
fn split_non_word(text: &str) -> Vec<&str> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_separator = false;
    for (i, c) in text.char_indices() {
        if is_word(c) {
            if in_separator {
                start = i;
                in_separator = false;
            }
        } else if !in_separator {
            parts.push(&text[start..i]);
            in_separator = true;
        }
    }
    parts.push(if in_separator { "" } else { &text[start..] });
    parts
}

/// The common-password set, decompressed on first use.
fn common_passwords() -> &'static HashSet<Box<str>> {
    static SET: OnceLock<HashSet<Box<str>>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut text = String::new();
        if let Err(error) =
            flate2::read::GzDecoder::new(COMMON_PASSWORDS_GZ).read_to_string(&mut text)
        {
            // Cannot happen with the embedded file (a test reads it).
            tracing::error!(%error, "the embedded common-password list is unreadable");
        }
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(Box::from)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(result: Result<(), Vec<FieldError>>) -> Vec<&'static str> {
        result
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.code)
            .collect()
    }

    fn with(validators: &[PasswordValidator], min: u32) -> AccountConfig {
        AccountConfig {
            password_validators: validators.to_vec(),
            password_min_length: min,
            ..AccountConfig::default()
        }
    }

    #[test]
    fn allauth_minimum_without_validators() {
        let config = AccountConfig::default();
        assert_eq!(
            codes(validate_password(&config, "12345", &[])),
            ["password_too_short"]
        );
        // Nothing but the length is checked.
        assert!(validate_password(&config, "123456", &[]).is_ok());
        assert!(
            validate_password(&config, "password", &[UserAttribute::username("password")]).is_ok()
        );
        let errors = validate_password(&config, "abc", &[]).unwrap_err();
        assert_eq!(
            errors[0].message,
            "This password is too short. It must contain at least 6 characters."
        );
        assert_eq!(errors[0].param, None);
        // Characters, not bytes.
        assert!(validate_password(&config, "ééééé", &[]).is_err());
        assert!(validate_password(&config, "éééééé", &[]).is_ok());
    }

    #[test]
    fn minimum_length_messages() {
        assert_eq!(
            minimum_length("", 1).unwrap().message,
            "This password is too short. It must contain at least 1 character."
        );
        assert!(minimum_length("", 0).is_none());
        assert!(minimum_length("12345678", 8).is_none());
        assert!(minimum_length("1234567", 8).is_some());
    }

    #[test]
    fn all_four_in_order() {
        use PasswordValidator::*;
        let config = with(
            &[
                UserAttributeSimilarity,
                MinimumLength,
                CommonPassword,
                NumericPassword,
            ],
            8,
        );
        let errors =
            validate_password(&config, "123456", &[UserAttribute::username("123456")]).unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| e.code).collect();
        assert_eq!(
            got,
            [
                "password_too_similar",
                "password_too_short",
                "password_too_common",
                "password_entirely_numeric"
            ]
        );
        assert!(validate_password(
            &config,
            "Tr0ub4dor&3-horse",
            &[UserAttribute::username("alice")]
        )
        .is_ok());
        // Only the listed validators run.
        let config = with(&[NumericPassword], 100);
        assert!(validate_password(&config, "short", &[]).is_ok());
        assert_eq!(
            codes(validate_password(&config, "20240101", &[])),
            ["password_entirely_numeric"]
        );
    }

    #[test]
    fn similarity() {
        let attrs = [
            UserAttribute::username("testclient"),
            UserAttribute::email("testclient@example.com"),
            UserAttribute::first_name(""),
        ];
        let check = |pw: &str| user_attribute_similarity(pw, &attrs, MAX_SIMILARITY);
        // Django's own test cases (test_validators.py).
        let error = check("testclient").unwrap();
        assert_eq!(error.code, "password_too_similar");
        assert_eq!(
            error.message,
            "The password is too similar to the username."
        );
        assert_eq!(
            user_attribute_similarity(
                "example.com",
                &[UserAttribute::email("testclient@example.com")],
                MAX_SIMILARITY
            )
            .unwrap()
            .message,
            "The password is too similar to the email address."
        );
        assert!(check("TESTCLIENT").is_some(), "case-insensitive");
        assert!(check("client").is_some());
        assert!(check("example").is_some());
        assert!(check("a totally different password").is_none());
        assert!(check("").is_none());
        assert!(user_attribute_similarity(
            "testclient",
            &[UserAttribute::last_name("Doe")],
            MAX_SIMILARITY
        )
        .is_none());
        assert!(user_attribute_similarity(
            "foobar",
            &[UserAttribute::first_name("Foo Bar")],
            MAX_SIMILARITY
        )
        .is_some());
        // max_similarity 1.0 needs the same multiset of characters.
        assert!(user_attribute_similarity("tneilctset", &attrs[..1], 1.0).is_some());
        assert!(user_attribute_similarity("tneilctsex", &attrs[..1], 1.0).is_none());
    }

    #[test]
    fn quick_ratio_matches_python() {
        let r = |a: &str, b: &str| {
            let a: Vec<char> = a.chars().collect();
            let b: Vec<char> = b.chars().collect();
            quick_ratio(&a, &b)
        };
        // Values from CPython's difflib.
        assert_eq!(r("abcd", "bcde"), 0.75);
        assert_eq!(r("", ""), 1.0);
        assert_eq!(r("a", ""), 0.0);
        assert!((r("A", &"A".repeat(10)) - 0.181_818_181_818_181_82).abs() < 1e-15);
        assert!((r("password", "passport") - 0.75).abs() < 1e-15);
        assert_eq!(r("aab", "abb"), 2.0 * 2.0 / 6.0);
    }

    #[test]
    fn splitting_like_python() {
        assert_eq!(split_non_word("a.b@c"), ["a", "b", "c"]);
        assert_eq!(split_non_word("a..b"), ["a", "b"]);
        assert_eq!(split_non_word("@a"), ["", "a"]);
        assert_eq!(split_non_word("a@"), ["a", ""]);
        assert_eq!(split_non_word(""), [""]);
        assert_eq!(split_non_word("ab_c"), ["ab_c"]);
        assert_eq!(split_non_word("jöhn dœ"), ["jöhn", "dœ"]);
    }

    #[test]
    fn length_ratio_shortcut() {
        // Django: a 1-character value is skipped for a 10-character password…
        assert!(exceeds_maximum_length_ratio(10, 0.7, 1));
        // …but not a 2-character one for a 19-character password.
        assert!(!exceeds_maximum_length_ratio(19, 0.7, 2));
        // An empty password against an empty part: Django compares (ratio 1.0).
        assert!(!exceeds_maximum_length_ratio(0, 0.7, 0));
    }

    #[test]
    fn common() {
        assert_eq!(common_passwords().len(), 19_640);
        for pw in [
            "password",
            "PASSWORD",
            " qwerty ",
            "123456",
            "friend of emily",
        ] {
            assert_eq!(
                common_password(pw).map(|e| e.code),
                Some("password_too_common"),
                "{pw:?}"
            );
        }
        assert_eq!(
            common_password("password").unwrap().message,
            "This password is too common."
        );
        assert!(common_password("correct horse battery staple 42").is_none());
    }

    #[test]
    fn numeric() {
        assert_eq!(
            numeric_password("1234567890").unwrap().message,
            "This password is entirely numeric."
        );
        assert!(
            numeric_password("١٢٣٤").is_some(),
            "Arabic-Indic digits are digits"
        );
        assert!(numeric_password("12345a").is_none());
        assert!(numeric_password("").is_none());
        assert!(numeric_password("12 34").is_none());
    }
}
