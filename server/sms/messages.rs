//! The text messages of the phone flows, one [`SmsMessage`] variant each, and the masking of numbers for logs.
//!
//! The set follows django-allauth's phone messages (a verification code, a
//! login code, and the two enumeration-prevention notices); the wording is
//! ours and short, to fit one SMS segment. When a frontend URL is
//! configured its host (`crate::email::messages::site_name`) starts the
//! text, so the reader knows who sends it.

use crate::config::Config;

/// One text message, with the values it needs.
#[derive(Clone, PartialEq, Eq)]
pub enum SmsMessage {
    /// Confirm a phone number by entering a code.
    VerificationCode { code: String },
    /// Sign in by entering a code.
    LoginCode { code: String },
    /// A code was asked for a number that has no account (enumeration
    /// prevention answers the request as if it had one).
    UnknownAccount,
    /// Someone signed up with a number that already has an account.
    AccountAlreadyExists,
}

impl std::fmt::Debug for SmsMessage {
    /// The kind only: the codes stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmsMessage::{}", self.kind())
    }
}

impl SmsMessage {
    /// A short stable name, stored with the row and used in logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SmsMessage::VerificationCode { .. } => "verification_code",
            SmsMessage::LoginCode { .. } => "login_code",
            SmsMessage::UnknownAccount => "unknown_account",
            SmsMessage::AccountAlreadyExists => "account_already_exists",
        }
    }

    /// The text, prefixed with `"{site}: "` when there is a site name.
    pub fn render(&self, site: Option<&str>) -> String {
        let text = match self {
            SmsMessage::VerificationCode { code } => {
                format!("{code} is your verification code. Never share it with anyone.")
            }
            SmsMessage::LoginCode { code } => {
                format!("{code} is your sign-in code. Never share it with anyone.")
            }
            SmsMessage::UnknownAccount => "A sign-in code was asked for with this number, \
                but no account uses it. If that was not you, ignore this message."
                .to_owned(),
            SmsMessage::AccountAlreadyExists => "Someone tried to sign up with this number, \
                which already has an account. If that was you, sign in instead."
                .to_owned(),
        };
        match site {
            Some(site) => format!("{site}: {text}"),
            None => text,
        }
    }

    /// [`SmsMessage::render`] with the site of `config`.
    pub fn render_for(&self, config: &Config) -> String {
        self.render(crate::email::messages::site_name(config))
    }
}

/// Whether `number` is E.164: `+`, then 6 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (6..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A phone number fit for logs and the console: the `+` and first two
/// digits, six stars, the last four digits (`+49******5678`); shorter
/// numbers keep only their last two digits. The number of stars is fixed so
/// that the length is not told either.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.trim().chars().collect();
    let digits: Vec<char> = chars
        .iter()
        .copied()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let n = digits.len();
    if n >= 8 {
        let head: String = digits[..2].iter().collect();
        let tail: String = digits[n - 4..].iter().collect();
        format!("+{head}******{tail}")
    } else if n >= 4 {
        let tail: String = digits[n - 2..].iter().collect();
        format!("+******{tail}")
    } else {
        "+******".to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask_number("+4915112345678"), "+49******5678");
        assert_eq!(mask_number("+15005550006"), "+15******0006");
        assert_eq!(mask_number("+12345"), "+******45");
        assert_eq!(mask_number("12"), "+******");
        assert!(!mask_number("+4915112345678").contains("151123"));
    }

    #[test]
    fn e164() {
        assert!(is_e164("+4915112345678"));
        assert!(is_e164("+15005550006"));
        for bad in [
            "4915112345678",
            "+049151",
            "+49 151 123",
            "+1234567890123456",
            "+12",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn texts_carry_the_code_and_the_site() {
        let m = SmsMessage::VerificationCode {
            code: "123456".into(),
        };
        assert_eq!(
            m.render(Some("app.example")),
            "app.example: 123456 is your verification code. Never share it with anyone."
        );
        assert!(SmsMessage::LoginCode {
            code: "987654".into()
        }
        .render(None)
        .starts_with("987654 "));
        assert!(!format!("{m:?}").contains("123456"));
        for m in [SmsMessage::UnknownAccount, SmsMessage::AccountAlreadyExists] {
            assert!(m.render(None).len() <= 160, "{}", m.kind());
        }
    }
}
