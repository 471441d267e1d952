//! `[account]`: django-allauth's `ACCOUNT_*` settings, their defaults, and the checks of allauth's `account/checks.py`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::checks::positive;
use super::{AccountRateLimitOverrides, ConfigError, RateLimit, RateLimits};

/// `ACCOUNT_LOGIN_METHODS` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginMethod {
    Email,
    Username,
    Phone,
}

impl PartialEq<str> for LoginMethod {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl LoginMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Email => "email",
            LoginMethod::Username => "username",
            LoginMethod::Phone => "phone",
        }
    }

    /// The signup field that carries this login identifier.
    pub fn signup_field(self) -> SignupFieldName {
        match self {
            LoginMethod::Email => SignupFieldName::Email,
            LoginMethod::Username => SignupFieldName::Username,
            LoginMethod::Phone => SignupFieldName::Phone,
        }
    }
}

/// `ACCOUNT_EMAIL_VERIFICATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailVerification {
    /// No verification mail at signup.
    None,
    /// Mail sent, login allowed meanwhile.
    #[default]
    Optional,
    /// Login blocked (pending `verify_email` stage) until verified.
    Mandatory,
}

/// `ACCOUNT_PREVENT_ENUMERATION`: `true`, `false` or `"strict"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreventEnumeration {
    Disabled,
    #[default]
    Enabled,
    /// Also pretend success on signup with a taken email when verification is not mandatory.
    Strict,
}

impl PreventEnumeration {
    pub fn is_enabled(self) -> bool {
        !matches!(self, PreventEnumeration::Disabled)
    }
    pub fn is_strict(self) -> bool {
        matches!(self, PreventEnumeration::Strict)
    }
}

impl<'de> Deserialize<'de> for PreventEnumeration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PreventEnumeration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"strict\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(if v {
                    PreventEnumeration::Enabled
                } else {
                    PreventEnumeration::Disabled
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "strict" {
                    Ok(PreventEnumeration::Strict)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Names allowed in `ACCOUNT_SIGNUP_FIELDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignupFieldName {
    Email,
    /// Email typed twice.
    Email2,
    Username,
    Password1,
    /// Password typed twice.
    Password2,
    Phone,
}

impl SignupFieldName {
    const ALL: [SignupFieldName; 6] = [
        SignupFieldName::Email,
        SignupFieldName::Email2,
        SignupFieldName::Username,
        SignupFieldName::Password1,
        SignupFieldName::Password2,
        SignupFieldName::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignupFieldName::Email => "email",
            SignupFieldName::Email2 => "email2",
            SignupFieldName::Username => "username",
            SignupFieldName::Password1 => "password1",
            SignupFieldName::Password2 => "password2",
            SignupFieldName::Phone => "phone",
        }
    }
}

/// One `ACCOUNT_SIGNUP_FIELDS` entry: `"email"` (optional) or `"email*"` (required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignupField {
    pub name: SignupFieldName,
    pub required: bool,
}

impl SignupField {
    /// Parses `"name"` / `"name*"`.
    pub fn parse(text: &str) -> Result<SignupField, String> {
        let (name, required) = match text.strip_suffix('*') {
            Some(name) => (name, true),
            None => (text, false),
        };
        if name == "password" {
            // allauth's checks call out this frequent mistake explicitly.
            return Err(format!(
                "{text:?} is not a signup field, use \"password1{}\"",
                if required { "*" } else { "" }
            ));
        }
        SignupFieldName::ALL
            .into_iter()
            .find(|n| n.as_str() == name)
            .map(|name| SignupField { name, required })
            .ok_or_else(|| {
                format!(
                    "unknown signup field {text:?}, expected one of email, email2, username, \
                     password1, password2, phone (with a trailing * when required)"
                )
            })
    }
}

impl fmt::Display for SignupField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        if self.required {
            f.write_str("*")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for SignupField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SignupField::parse(&text).map_err(de::Error::custom)
    }
}

/// Django's four stock password validators (`AUTH_PASSWORD_VALIDATORS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordValidator {
    UserAttributeSimilarity,
    MinimumLength,
    CommonPassword,
    NumericPassword,
}

/// A setting that allauth takes as `True`/`False` or a number: `true`
/// stands for 2, `false` for 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CountOrFlag {
    Flag(bool),
    Count(u32),
}

impl CountOrFlag {
    pub fn count(self) -> u32 {
        match self {
            CountOrFlag::Flag(true) => 2,
            CountOrFlag::Flag(false) => 0,
            CountOrFlag::Count(n) => n,
        }
    }
}

/// `[account]`: django-allauth's `ACCOUNT_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountConfig {
    pub login_methods: Vec<LoginMethod>,
    pub signup_fields: Vec<SignupField>,
    pub email_verification: EmailVerification,
    pub email_verification_by_code_enabled: bool,
    pub email_verification_by_code_max_attempts: u32,
    /// Seconds.
    pub email_verification_by_code_timeout: u64,
    /// allauth's `EMAIL_VERIFICATION_MAX_RESEND_COUNT` (from
    /// `EMAIL_VERIFICATION_SUPPORTS_RESEND`: `false` = 0, `true` = 2): new
    /// codes a pending verification by code may ask for.
    pub email_verification_max_resend_count: u32,
    pub email_confirmation_expire_days: u32,
    pub login_on_email_confirmation: bool,
    pub login_on_password_reset: bool,
    pub login_by_code_enabled: bool,
    pub login_by_code_max_attempts: u32,
    /// Seconds.
    pub login_by_code_timeout: u64,
    pub login_by_code_required: bool,
    /// allauth's `PHONE_VERIFICATION_ENABLED`: a login (or signup) whose
    /// phone number is not verified waits in `verify_phone`.
    pub phone_verification_enabled: bool,
    pub phone_verification_max_attempts: u32,
    /// Seconds a phone verification code stays valid.
    pub phone_verification_timeout: u64,
    /// allauth's `PHONE_VERIFICATION_SUPPORTS_CHANGE`: `false` (0), `true`
    /// (2) or a number: how often the number may be changed while a signup
    /// waits in `verify_phone`.
    pub phone_verification_supports_change: CountOrFlag,
    /// allauth's `PHONE_VERIFICATION_SUPPORTS_RESEND`: `false` (0), `true`
    /// (2) or a number of new codes `verify_phone` may ask for.
    pub phone_verification_supports_resend: CountOrFlag,
    /// Ours: the region (ISO 3166 code, e.g. `"DE"`) of numbers typed
    /// without a country code. Unset: numbers must start with `+`, as
    /// allauth's headless API requires.
    pub phone_default_region: Option<String>,
    /// allauth's `LOGIN_BY_CODE_MAX_RESEND_COUNT` (from `LOGIN_BY_CODE_SUPPORTS_RESEND`:
    /// `false` = 0, `true` = 2): new codes a pending login by code may ask for.
    pub login_by_code_max_resend_count: u32,
    pub password_reset_by_code_enabled: bool,
    pub password_reset_by_code_max_attempts: u32,
    /// Seconds.
    pub password_reset_by_code_timeout: u64,
    /// Seconds a staged (pending) login stays valid.
    pub login_timeout: u64,
    /// Seconds.
    pub reauthentication_timeout: u64,
    pub reauthentication_required: bool,
    pub prevent_enumeration: PreventEnumeration,
    /// allauth applies it when `password_validators` is empty; the
    /// `minimum_length` validator uses it too.
    pub password_min_length: u32,
    /// Ours: longer passwords are refused before hashing (DoS guard).
    pub password_max_length: u32,
    pub password_validators: Vec<PasswordValidator>,
    /// The account adapter's `is_open_for_signup`.
    pub signup_open: bool,
    pub username_min_length: u32,
    /// Django's `User.username` max_length.
    pub username_max_length: u32,
    pub username_blacklist: Vec<String>,
    pub preserve_username_casing: bool,
    pub unique_email: bool,
    pub email_max_length: u32,
    pub change_email: bool,
    pub max_email_addresses: Option<u32>,
    pub email_unknown_accounts: bool,
    pub email_notifications: bool,
    pub logout_on_password_change: bool,
    /// `None` = allauth's default, `"[<site name>] "`, the site being the
    /// host of the first configured frontend URL (none configured: no prefix).
    pub email_subject_prefix: Option<String>,
    /// `false`, or a table of action → `"5/m/user"`-style rates merged over
    /// allauth's defaults. Read the effective limits with
    /// [`AccountConfig::rate_limits`].
    pub rate_limits: RateLimits<AccountRateLimitOverrides>,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            login_methods: vec![LoginMethod::Username],
            signup_fields: vec![
                SignupField {
                    name: SignupFieldName::Email,
                    required: false,
                },
                SignupField {
                    name: SignupFieldName::Username,
                    required: true,
                },
                SignupField {
                    name: SignupFieldName::Password1,
                    required: true,
                },
                SignupField {
                    name: SignupFieldName::Password2,
                    required: true,
                },
            ],
            email_verification: EmailVerification::Optional,
            email_verification_by_code_enabled: false,
            email_verification_by_code_max_attempts: 3,
            email_verification_by_code_timeout: 900,
            email_verification_max_resend_count: 0,
            email_confirmation_expire_days: 3,
            login_on_email_confirmation: false,
            login_on_password_reset: false,
            login_by_code_enabled: false,
            login_by_code_max_attempts: 3,
            login_by_code_timeout: 180,
            login_by_code_required: false,
            login_by_code_max_resend_count: 0,
            phone_verification_enabled: true,
            phone_verification_max_attempts: 3,
            phone_verification_timeout: 900,
            phone_verification_supports_change: CountOrFlag::Flag(false),
            phone_verification_supports_resend: CountOrFlag::Flag(false),
            phone_default_region: None,
            password_reset_by_code_enabled: false,
            password_reset_by_code_max_attempts: 3,
            password_reset_by_code_timeout: 180,
            login_timeout: 900,
            reauthentication_timeout: 300,
            reauthentication_required: false,
            prevent_enumeration: PreventEnumeration::Enabled,
            password_min_length: 6,
            password_max_length: 4096,
            password_validators: Vec::new(),
            signup_open: true,
            username_min_length: 1,
            username_max_length: 150,
            username_blacklist: Vec::new(),
            preserve_username_casing: true,
            unique_email: true,
            email_max_length: 254,
            change_email: false,
            max_email_addresses: None,
            email_unknown_accounts: true,
            email_notifications: false,
            logout_on_password_change: false,
            email_subject_prefix: None,
            rate_limits: RateLimits::default(),
        }
    }
}

impl AccountConfig {
    /// Effective rate limits per action (allauth's defaults with the
    /// configured overrides applied). Empty when `rate_limits = false`; an
    /// action that is absent (or set to `false`/`""`) is not limited.
    pub fn rate_limits(&self) -> &BTreeMap<String, Vec<RateLimit>> {
        self.rate_limits.effective()
    }

    /// The signup field entry for `name`, if it is listed.
    pub fn signup_field(&self, name: SignupFieldName) -> Option<&SignupField> {
        self.signup_fields.iter().find(|f| f.name == name)
    }

    /// `name` is a signup field and required (`"name*"`).
    pub fn signup_field_required(&self, name: SignupFieldName) -> bool {
        self.signup_field(name).is_some_and(|f| f.required)
    }

    /// allauth's `USERNAME_REQUIRED`, derived from `signup_fields`.
    pub fn username_required(&self) -> bool {
        self.signup_field_required(SignupFieldName::Username)
    }

    /// allauth's `EMAIL_REQUIRED`, derived from `signup_fields`.
    pub fn email_required(&self) -> bool {
        self.signup_field_required(SignupFieldName::Email)
    }

    pub fn has_login_method(&self, method: LoginMethod) -> bool {
        self.login_methods.contains(&method)
    }

    /// The minimum password length in force: `password_min_length` when no
    /// validator is configured (allauth) or when `minimum_length` is one of
    /// them; `None` otherwise.
    pub fn effective_password_min_length(&self) -> Option<u32> {
        if self.password_validators.is_empty()
            || self
                .password_validators
                .contains(&PasswordValidator::MinimumLength)
        {
            Some(self.password_min_length)
        } else {
            None
        }
    }

    /// allauth's `PHONE_VERIFICATION_MAX_CHANGE_COUNT`.
    pub fn phone_verification_max_change_count(&self) -> u32 {
        self.phone_verification_supports_change.count()
    }

    /// allauth's `PHONE_VERIFICATION_MAX_RESEND_COUNT`.
    pub fn phone_verification_max_resend_count(&self) -> u32 {
        self.phone_verification_supports_resend.count()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(region) = &self.phone_default_region {
            if region.parse::<phonenumber::country::Id>().is_err() {
                return Err(ConfigError::inconsistent(
                    "account.phone_default_region",
                    format!("{region:?} is not a region code such as \"US\" or \"DE\""),
                ));
            }
        }
        if self.login_methods.is_empty() {
            return Err(ConfigError::inconsistent(
                "account.login_methods",
                "must name at least one of \"email\", \"username\", \"phone\"",
            ));
        }
        let mut seen = BTreeSet::new();
        for field in &self.signup_fields {
            if !seen.insert(field.name) {
                return Err(ConfigError::inconsistent(
                    "account.signup_fields",
                    format!("{:?} is listed twice", field.name.as_str()),
                ));
            }
        }
        if self.signup_field(SignupFieldName::Password2).is_some()
            && self.signup_field(SignupFieldName::Password1).is_none()
        {
            return Err(ConfigError::inconsistent(
                "account.signup_fields",
                "\"password2\" needs \"password1\"",
            ));
        }
        if self.signup_field(SignupFieldName::Email2).is_some()
            && self.signup_field(SignupFieldName::Email).is_none()
        {
            return Err(ConfigError::inconsistent(
                "account.signup_fields",
                "\"email2\" needs \"email\"",
            ));
        }
        // Ours, stricter than allauth: every login method needs its identifier
        // collected at signup, else nobody can ever log in that way.
        for method in &self.login_methods {
            if self.signup_field(method.signup_field()).is_none() {
                return Err(ConfigError::inconsistent(
                    "account.signup_fields",
                    format!(
                        "login method {:?} (account.login_methods) needs {:?} in account.signup_fields",
                        method.as_str(),
                        method.as_str()
                    ),
                ));
            }
        }
        // allauth account.W001 (a warning there, refused here): at least one
        // login identifier must be required at signup, else accounts without
        // any way to log in can be created.
        if !self
            .login_methods
            .iter()
            .any(|m| self.signup_field_required(m.signup_field()))
        {
            return Err(ConfigError::inconsistent(
                "account.signup_fields",
                "conflicts with account.login_methods: none of the login methods is a required \
                 signup field (mark one with *, e.g. \"email*\")",
            ));
        }
        // allauth: "Using email as a login method requires ACCOUNT_UNIQUE_EMAIL".
        if self.has_login_method(LoginMethod::Email) && !self.unique_email {
            return Err(ConfigError::inconsistent(
                "account.unique_email",
                "must be true when \"email\" is in account.login_methods",
            ));
        }
        // allauth: mandatory verification requires 'email*'.
        if self.email_verification == EmailVerification::Mandatory && !self.email_required() {
            return Err(ConfigError::inconsistent(
                "account.email_verification",
                "\"mandatory\" requires \"email*\" in account.signup_fields",
            ));
        }
        // allauth: ACCOUNT_EMAIL_VERIFICATION_BY_CODE requires mandatory verification.
        if self.email_verification_by_code_enabled
            && self.email_verification != EmailVerification::Mandatory
        {
            return Err(ConfigError::inconsistent(
                "account.email_verification_by_code_enabled",
                "requires account.email_verification = \"mandatory\"",
            ));
        }
        // allauth: ACCOUNT_MAX_EMAIL_ADDRESSES must be None or > 0.
        if self.max_email_addresses == Some(0) {
            return Err(ConfigError::inconsistent(
                "account.max_email_addresses",
                "must be left out (no limit) or at least 1",
            ));
        }
        // allauth: ACCOUNT_CHANGE_EMAIL only with MAX_EMAIL_ADDRESSES None or 2.
        if self.change_email && !matches!(self.max_email_addresses, None | Some(2)) {
            return Err(ConfigError::inconsistent(
                "account.max_email_addresses",
                "must be left out or 2 when account.change_email = true",
            ));
        }
        for (key, value) in [
            (
                "account.email_verification_by_code_max_attempts",
                u64::from(self.email_verification_by_code_max_attempts),
            ),
            (
                "account.email_verification_by_code_timeout",
                self.email_verification_by_code_timeout,
            ),
            (
                "account.email_confirmation_expire_days",
                u64::from(self.email_confirmation_expire_days),
            ),
            (
                "account.login_by_code_max_attempts",
                u64::from(self.login_by_code_max_attempts),
            ),
            ("account.login_by_code_timeout", self.login_by_code_timeout),
            (
                "account.password_reset_by_code_max_attempts",
                u64::from(self.password_reset_by_code_max_attempts),
            ),
            (
                "account.password_reset_by_code_timeout",
                self.password_reset_by_code_timeout,
            ),
            ("account.login_timeout", self.login_timeout),
            (
                "account.reauthentication_timeout",
                self.reauthentication_timeout,
            ),
            (
                "account.password_max_length",
                u64::from(self.password_max_length),
            ),
            (
                "account.username_max_length",
                u64::from(self.username_max_length),
            ),
            ("account.email_max_length", u64::from(self.email_max_length)),
        ] {
            positive(key, value)?;
        }
        if self.password_min_length > self.password_max_length {
            return Err(ConfigError::inconsistent(
                "account.password_min_length",
                format!(
                    "{} is more than account.password_max_length ({})",
                    self.password_min_length, self.password_max_length
                ),
            ));
        }
        if self.username_min_length > self.username_max_length {
            return Err(ConfigError::inconsistent(
                "account.username_min_length",
                format!(
                    "{} is more than account.username_max_length ({})",
                    self.username_min_length, self.username_max_length
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::testing::load;
    use crate::config::Config;

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        let a = &c.account;
        assert_eq!(a.login_methods, vec![LoginMethod::Username]);
        let fields: Vec<String> = a.signup_fields.iter().map(ToString::to_string).collect();
        assert_eq!(fields, ["email", "username*", "password1*", "password2*"]);
        assert_eq!(a.email_verification, EmailVerification::Optional);
        assert!(!a.email_verification_by_code_enabled);
        assert_eq!(a.email_verification_by_code_max_attempts, 3);
        assert_eq!(a.email_verification_by_code_timeout, 900);
        assert_eq!(a.email_confirmation_expire_days, 3);
        assert!(!a.login_on_email_confirmation && !a.login_on_password_reset);
        assert!(!a.login_by_code_enabled && !a.login_by_code_required);
        assert_eq!(
            (a.login_by_code_max_attempts, a.login_by_code_timeout),
            (3, 180)
        );
        assert!(!a.password_reset_by_code_enabled);
        assert_eq!(
            (
                a.password_reset_by_code_max_attempts,
                a.password_reset_by_code_timeout
            ),
            (3, 180)
        );
        assert_eq!((a.login_timeout, a.reauthentication_timeout), (900, 300));
        assert!(!a.reauthentication_required);
        assert_eq!(a.prevent_enumeration, PreventEnumeration::Enabled);
        assert_eq!((a.password_min_length, a.password_max_length), (6, 4096));
        assert_eq!(a.effective_password_min_length(), Some(6));
        assert!(a.password_validators.is_empty() && a.signup_open);
        assert_eq!((a.username_min_length, a.username_max_length), (1, 150));
        assert!(a.username_blacklist.is_empty());
        assert!(a.preserve_username_casing && a.unique_email);
        assert_eq!(a.email_max_length, 254);
        assert!(!a.change_email && a.max_email_addresses.is_none());
        assert!(a.email_unknown_accounts && !a.email_notifications && !a.logout_on_password_change);
        assert!(a.email_subject_prefix.is_none());
        assert!(a.username_required() && !a.email_required());

        let limits = a.rate_limits();
        let get = |k: &str| {
            limits
                .get(k)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(limits.len(), 12);
        assert_eq!(get("change_password"), "5/60s/user");
        assert_eq!(get("change_phone"), "1/60s/user");
        assert_eq!(get("manage_email"), "10/60s/user");
        assert_eq!(get("reset_password"), "20/60s/ip,5/60s/key");
        assert_eq!(get("reauthenticate"), "10/60s/user");
        assert_eq!(get("reset_password_from_key"), "20/60s/ip");
        assert_eq!(get("signup"), "20/60s/ip");
        assert_eq!(get("login"), "30/60s/ip");
        assert_eq!(get("request_login_code"), "20/60s/ip,3/60s/key");
        assert_eq!(get("login_failed"), "10/60s/ip,5/300s/key");
        assert_eq!(get("confirm_email"), "1/180s/key");
        assert_eq!(get("verify_phone"), "1/30s/key,3/60s/ip");
    }

    #[test]
    fn prevent_enumeration_forms() {
        assert_eq!(
            load("[account]\nprevent_enumeration = false")
                .account
                .prevent_enumeration,
            PreventEnumeration::Disabled
        );
        assert_eq!(
            load("[account]\nprevent_enumeration = true")
                .account
                .prevent_enumeration,
            PreventEnumeration::Enabled
        );
        assert_eq!(
            load("[account]\nprevent_enumeration = \"strict\"")
                .account
                .prevent_enumeration,
            PreventEnumeration::Strict
        );
        let c = Config::from_sources("", &[("ALLAUTH_ACCOUNT__PREVENT_ENUMERATION", "strict")])
            .unwrap();
        assert!(c.account.prevent_enumeration.is_strict());
    }
}
