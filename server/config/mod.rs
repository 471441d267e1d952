//! Typed server configuration: one struct per concern, loaded from an optional TOML file with an `ALLAUTH_…` environment overlay, defaults equal to django-allauth's.
//!
//! Layering is figment's: the built-in defaults (every struct is
//! `#[serde(default)]`), then the TOML file, then environment variables
//! (`ALLAUTH_` prefix, `__` between nesting levels, values parsed TOML-ish:
//! `ALLAUTH_ACCOUNT__LOGIN_METHODS='["email"]'`). Every struct denies unknown
//! keys, so a typo stops start-up with an error naming the dotted key and where
//! it came from. After extraction [`Config::validate`] applies the cross-field
//! rules django-allauth's system checks apply (and a few of our own, each
//! documented at the check).
//!
//! The full table of settings lives in `docs/settings.md`; the annotated
//! example in `allauth-server.example.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that overlay the file.
pub const ENV_PREFIX: &str = "ALLAUTH_";
/// Separator between nesting levels in environment variable names.
pub const ENV_SEPARATOR: &str = "__";

/// The top-level sections, i.e. the fields of [`Config`].
pub const SECTIONS: [&str; 11] = [
    "server",
    "database",
    "account",
    "headless",
    "mfa",
    "socialaccount",
    "usersessions",
    "email",
    "cors",
    "session",
    "csrf",
];

/// Whether an environment variable (name without the `ALLAUTH_` prefix) is
/// meant as a setting: it contains `__` or starts with a section name. Other
/// `ALLAUTH_*` variables (tooling of your own) are not
/// ours and are ignored; a mistyped setting still contains `__` and is
/// reported as an unknown key.
pub fn is_setting_env_var(name_without_prefix: &str) -> bool {
    let name = name_without_prefix.trim().to_ascii_lowercase();
    name.contains(ENV_SEPARATOR) || SECTIONS.iter().any(|s| name.starts_with(s))
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why the configuration could not be loaded. `Display` is one line naming the
/// offending key (dotted, e.g. `account.email_verification`) and, where known,
/// the file or environment variable it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named by the configuration (or on the command line) could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    /// A key is unknown, or its value has the wrong type or an unknown value.
    #[error("{key}: {message} (in {origin})")]
    Invalid {
        key: String,
        message: String,
        origin: String,
    },
    /// Values that are fine one by one but not together (or out of range).
    #[error("{key}: {message}")]
    Inconsistent { key: String, message: String },
}

impl ConfigError {
    /// The dotted key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } | ConfigError::Inconsistent { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    fn inconsistent(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Inconsistent {
            key: key.into(),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Secret
// ---------------------------------------------------------------------------

/// A configuration value that must never be printed: `Debug` and `Display`
/// both write `[redacted]`. Read it with [`Secret::expose`].
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Keep the borrow short and never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            // An environment value such as `123456` or `true` is parsed by
            // figment as a number or a boolean; a secret is text all the same.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

// ---------------------------------------------------------------------------
// Top level
// ---------------------------------------------------------------------------

/// The whole configuration. Built once at start-up and passed through the
/// server context; never a global.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub account: AccountConfig,
    pub headless: HeadlessConfig,
    pub mfa: MfaConfig,
    pub socialaccount: SocialAccountConfig,
    pub usersessions: UserSessionsConfig,
    pub email: EmailConfig,
    pub cors: CorsConfig,
    pub session: SessionCookieConfig,
    pub csrf: CsrfConfig,
}

impl Config {
    /// File (if given) then environment. Errors name the key.
    ///
    /// A file that is given must exist. Environment variables starting with
    /// `ALLAUTH_` are all taken as settings: an unrelated one is an unknown key.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                what: "configuration file",
                path: path.to_owned(),
                source,
            })?;
            check_toml_syntax(&text, &format!("configuration file {}", path.display()))?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env_provider(ENV_PREFIX));
        Self::extract(&figment, &|name| {
            std::env::vars_os().any(|(k, _)| k.to_string_lossy().eq_ignore_ascii_case(name))
        })
    }

    /// Same from a TOML string with an explicit env map (for tests; no process env).
    ///
    /// `env` holds `(name, value)` pairs exactly as the process environment
    /// would: names without the `ALLAUTH_` prefix are ignored.
    pub fn from_sources(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        check_toml_syntax(toml, "configuration")?;
        let vars: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let figment = Figment::new()
            .merge(Toml::string(toml))
            .merge(EnvList { vars: vars.clone() });
        Self::extract(&figment, &|name| {
            vars.iter()
                .any(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        })
    }

    fn extract(figment: &Figment, env_has: &dyn Fn(&str) -> bool) -> Result<Config, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| error_from_figment(e, env_has))?;
        config.finalize();
        config.validate()?;
        Ok(config)
    }

    /// Recomputes the values derived from several settings (the effective rate
    /// limits, whose `confirm_email` default depends on
    /// `account.email_verification_by_code_enabled`; provider names defaulting
    /// to their id). The loaders call it; call it again after changing a
    /// loaded `Config` in code.
    pub fn finalize(&mut self) {
        let by_code = self.account.email_verification_by_code_enabled;
        self.account.rate_limits.resolve(by_code);
        self.mfa.rate_limits.resolve(by_code);
        for provider in &mut self.socialaccount.providers {
            if provider.name.is_empty() {
                provider.name = provider.id.clone();
            }
        }
    }

    /// Cross-field validation (called by both loaders). Mirrors the
    /// `Critical` checks of django-allauth's `account/checks.py` and
    /// `mfa/checks.py`, plus rules for settings allauth leaves to Django or to
    /// the deployment (CORS, cookies, JWT keys). Returns the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.database.validate()?;
        self.account.validate()?;
        self.headless.validate()?;
        self.mfa.validate(&self.account)?;
        self.socialaccount.validate()?;
        self.email.validate()?;
        self.cors.validate()?;
        self.session.validate()?;
        self.csrf.validate(&self.session)?;
        Ok(())
    }

    /// Non-fatal remarks worth logging at start-up (Django/allauth warnings).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(key) = &self.server.secret_key {
            let distinct: BTreeSet<char> = key.expose().chars().collect();
            if key.expose().chars().count() < 50 || distinct.len() < 5 {
                // Django's security.W009.
                out.push(
                    "server.secret_key: shorter than 50 characters or fewer than 5 distinct ones; \
                     use a long random value (or leave it out to have one generated)"
                        .to_owned(),
                );
            }
        }
        if self.server.secret_key.is_none()
            && self.database.backend() == Some(DatabaseBackend::Postgres)
        {
            out.push(
                "server.secret_key: not set, so this instance generates its own in data_dir; \
                 every instance sharing this database must have the same key, or links, codes \
                 and HS256 tokens made by one are refused by the others"
                    .to_owned(),
            );
        }
        if self.mfa.webauthn_allow_insecure_origin {
            out.push(
                "mfa.webauthn_allow_insecure_origin: WebAuthn accepts http:// origins; for development only"
                    .to_owned(),
            );
        }
        out
    }
}

// ---------------------------------------------------------------------------
// [server]
// ---------------------------------------------------------------------------

/// `[server]`: listening, files, client address, logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (`IP:PORT`; checked by `validate`, read
    /// it parsed with [`ServerConfig::bind_addr`]).
    pub bind: String,
    /// Where the server keeps its own files (generated secret key, mail, SQLite).
    pub data_dir: PathBuf,
    /// Django `SECRET_KEY`: signs email-confirmation keys, password-reset
    /// tokens, HS256 JWTs. When absent the server generates one and persists
    /// it in `data_dir`.
    pub secret_key: Option<Secret>,
    /// Largest accepted request body.
    pub request_body_max_bytes: usize,
    /// How many reverse proxies in front of us append to `client_ip_header`;
    /// 0 = ignore the header and use the socket's peer address.
    pub trusted_proxy_count: usize,
    /// Header carrying the client chain when `trusted_proxy_count > 0`.
    pub client_ip_header: String,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or directives).
    pub log_level: String,
    /// Seconds between two runs of the housekeeping task, which deletes
    /// expired sessions, refresh tokens and rate-limit windows (it also runs
    /// at start-up).
    pub housekeeping_interval: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8000".to_owned(),
            data_dir: PathBuf::from("./data"),
            secret_key: None,
            request_body_max_bytes: 65536,
            trusted_proxy_count: 0,
            client_ip_header: "X-Forwarded-For".to_owned(),
            log_level: "info".to_owned(),
            housekeeping_interval: 300,
        }
    }
}

impl ServerConfig {
    /// `bind` parsed.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.trim().parse().map_err(|_| {
            ConfigError::inconsistent(
                "server.bind",
                format!(
                    "{:?} is not an IP:PORT socket address (e.g. 127.0.0.1:8000)",
                    self.bind
                ),
            )
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if let Some(key) = &self.secret_key {
            if key.expose().trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    "server.secret_key",
                    "must not be empty (leave it out to have one generated)",
                ));
            }
        }
        positive(
            "server.request_body_max_bytes",
            self.request_body_max_bytes as u64,
        )?;
        header_name("server.client_ip_header", &self.client_ip_header)?;
        positive("server.housekeeping_interval", self.housekeeping_interval)?;
        if self.log_level.trim().is_empty() {
            return Err(ConfigError::inconsistent(
                "server.log_level",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// [database]
// ---------------------------------------------------------------------------

/// `[database]`. The URL selects the backend: `sqlite://…` or `postgres://…`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (`sqlite://./rel`, `sqlite:///abs`, `sqlite::memory:`) or
    /// `postgres://user:password@host/db` (`postgresql://` too).
    pub url: String,
    /// Connection pool size.
    pub max_connections: u32,
}

/// The database engine a [`DatabaseConfig::url`] selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseBackend {
    Sqlite,
    Postgres,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://./data/allauth.sqlite3".to_owned(),
            max_connections: 8,
        }
    }
}

impl DatabaseConfig {
    /// The backend the URL selects, `None` for an unknown scheme (refused by `validate`).
    pub fn backend(&self) -> Option<DatabaseBackend> {
        let url = self.url.trim();
        if url.starts_with("sqlite:") {
            Some(DatabaseBackend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DatabaseBackend::Postgres)
        } else {
            None
        }
    }

    /// For SQLite, the database file (`:memory:` for an in-memory database).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.trim().strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let rest = rest.split('?').next().unwrap_or(rest);
        Some(PathBuf::from(rest))
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted_url(&self) -> String {
        let url = &self.url;
        let Some(scheme_end) = url.find("://") else {
            return url.clone();
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => format!(
                "{}{}:[redacted]{}",
                &url[..scheme_end + 3],
                &authority[..colon],
                &rest[at..]
            ),
            _ => url.clone(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self.backend() {
            None => {
                return Err(ConfigError::inconsistent(
                    "database.url",
                    format!(
                        "unsupported URL {:?}: expected sqlite://PATH or postgres://…",
                        self.redacted_url()
                    ),
                ))
            }
            Some(DatabaseBackend::Sqlite) => {
                if self.sqlite_path().is_none_or(|p| p.as_os_str().is_empty()) {
                    return Err(ConfigError::inconsistent(
                        "database.url",
                        "sqlite URL names no file (e.g. sqlite://./data/allauth.sqlite3)",
                    ));
                }
            }
            Some(DatabaseBackend::Postgres) => {}
        }
        positive("database.max_connections", u64::from(self.max_connections))
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// [account]
// ---------------------------------------------------------------------------

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
    /// `None` = allauth's default, `"[<site name>] "`.
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

    fn validate(&self) -> Result<(), ConfigError> {
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

// ---------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------

/// What a rate limit counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RateLimitPer {
    /// Client IP address.
    Ip,
    /// Authenticated user.
    User,
    /// An action-specific key (e.g. the email address asked for).
    Key,
}

impl RateLimitPer {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitPer::Ip => "ip",
            RateLimitPer::User => "user",
            RateLimitPer::Key => "key",
        }
    }
}

/// At most `amount` hits per `period_secs` seconds, counted per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub amount: u32,
    pub period_secs: u64,
    pub per: RateLimitPer,
}

impl RateLimit {
    pub const fn new(amount: u32, period_secs: u64, per: RateLimitPer) -> Self {
        RateLimit {
            amount,
            period_secs,
            per,
        }
    }

    /// Parses allauth's syntax: `"5/m/user"`, `"20/m/ip,5/m/key"`,
    /// `"5/300s/key"`, `"10/m"` (per ip). Periods: `s`, `m`, `h`, `d`,
    /// optionally preceded by a count (`300s`, `2h`, `1.5m`). An empty string
    /// means no limit.
    pub fn parse_list(text: &str) -> Result<Vec<RateLimit>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|part| RateLimit::parse(part.trim()))
            .collect()
    }

    fn parse(text: &str) -> Result<RateLimit, String> {
        let bad = |why: &str| {
            format!(
                "invalid rate limit {text:?}: {why} (expected e.g. \"5/m/ip\" or \"5/300s/key\")"
            )
        };
        let parts: Vec<&str> = text.split('/').collect();
        let (amount, period, per) = match parts.as_slice() {
            [amount, period] => (*amount, *period, "ip"),
            [amount, period, per] => (*amount, *period, *per),
            _ => return Err(bad("wrong number of / separated parts")),
        };
        let amount: u32 = amount
            .trim()
            .parse()
            .map_err(|_| bad("the amount is not a whole number"))?;
        if amount == 0 {
            return Err(bad("the amount must be at least 1 (use false to disable)"));
        }
        let period = period.trim();
        let (count, unit) = period.split_at(period.len().saturating_sub(1));
        let unit_secs: f64 = match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad("the period unit must be s, m, h or d")),
        };
        let count: f64 = if count.is_empty() {
            1.0
        } else {
            count
                .parse()
                .map_err(|_| bad("the period count is not a number"))?
        };
        let secs = count * unit_secs;
        if !(secs.is_finite() && secs >= 1.0 && secs.fract() == 0.0 && secs <= 1e12) {
            return Err(bad(
                "the period must be a whole, positive number of seconds",
            ));
        }
        let per = match per.trim() {
            "ip" => RateLimitPer::Ip,
            "user" => RateLimitPer::User,
            "key" => RateLimitPer::Key,
            _ => return Err(bad("the last part must be ip, user or key")),
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let period_secs = secs as u64;
        Ok(RateLimit {
            amount,
            period_secs,
            per,
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}s/{}",
            self.amount,
            self.period_secs,
            self.per.as_str()
        )
    }
}

/// One action's configured rates: a rate string, or `false` / `""` for none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRule(pub Vec<RateLimit>);

impl<'de> Deserialize<'de> for RateRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RateRule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate limit string like \"5/m/ip\", or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RateRule, E> {
                if v {
                    Err(E::invalid_value(de::Unexpected::Bool(true), &self))
                } else {
                    Ok(RateRule(Vec::new()))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RateRule, E> {
                RateLimit::parse_list(v).map(RateRule).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A set of rate-limited actions with allauth's defaults.
pub trait RateLimitActions: Default + fmt::Debug + Clone {
    /// allauth's default per action. `email_verification_by_code` selects the
    /// `confirm_email` default, as allauth does.
    fn defaults(email_verification_by_code: bool) -> Vec<(&'static str, Vec<RateLimit>)>;
    /// The configured overrides (`None` = keep the default).
    fn overrides(&self) -> Vec<(&'static str, Option<&RateRule>)>;
}

/// A `rate_limits` setting: `false` (every limit off) or overrides merged
/// over the defaults. Its `Debug` shows the effective limits.
#[derive(Clone)]
pub struct RateLimits<A: RateLimitActions> {
    /// `None` = disabled (`rate_limits = false`).
    pub overrides: Option<A>,
    effective: BTreeMap<String, Vec<RateLimit>>,
}

impl<A: RateLimitActions> RateLimits<A> {
    /// Effective limits (see [`AccountConfig::rate_limits`]).
    pub fn effective(&self) -> &BTreeMap<String, Vec<RateLimit>> {
        &self.effective
    }

    pub fn is_disabled(&self) -> bool {
        self.overrides.is_none()
    }

    fn from_overrides(overrides: Option<A>) -> Self {
        let mut this = RateLimits {
            overrides,
            effective: BTreeMap::new(),
        };
        this.resolve(false);
        this
    }

    fn resolve(&mut self, email_verification_by_code: bool) {
        self.effective.clear();
        let Some(overrides) = &self.overrides else {
            return;
        };
        let mut map: BTreeMap<String, Vec<RateLimit>> = A::defaults(email_verification_by_code)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (action, rule) in overrides.overrides() {
            if let Some(rule) = rule {
                map.insert(action.to_owned(), rule.0.clone());
            }
        }
        map.retain(|_, v| !v.is_empty());
        self.effective = map;
    }
}

impl<A: RateLimitActions> Default for RateLimits<A> {
    fn default() -> Self {
        RateLimits::from_overrides(Some(A::default()))
    }
}

impl<A: RateLimitActions> fmt::Debug for RateLimits<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.effective.iter().map(|(k, v)| {
                let rates: Vec<String> = v.iter().map(ToString::to_string).collect();
                (k, rates.join(","))
            }))
            .finish()
    }
}

impl<'de, A: RateLimitActions + Deserialize<'de>> Deserialize<'de> for RateLimits<A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<A>(PhantomData<A>);
        impl<'de, A: RateLimitActions + Deserialize<'de>> Visitor<'de> for V<A> {
            type Value = RateLimits<A>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("false, or a table of action = \"rate\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RateLimits::from_overrides(if v {
                    Some(A::default())
                } else {
                    None
                }))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                let overrides = A::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RateLimits::from_overrides(Some(overrides)))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

const fn rl(amount: u32, period_secs: u64, per: RateLimitPer) -> RateLimit {
    RateLimit::new(amount, period_secs, per)
}

/// `[account.rate_limits]`: `ACCOUNT_RATE_LIMITS` actions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountRateLimitOverrides {
    pub change_password: Option<RateRule>,
    pub change_phone: Option<RateRule>,
    pub manage_email: Option<RateRule>,
    pub reset_password: Option<RateRule>,
    pub reauthenticate: Option<RateRule>,
    pub reset_password_from_key: Option<RateRule>,
    pub signup: Option<RateRule>,
    pub login: Option<RateRule>,
    pub request_login_code: Option<RateRule>,
    pub login_failed: Option<RateRule>,
    pub confirm_email: Option<RateRule>,
    pub verify_phone: Option<RateRule>,
}

impl RateLimitActions for AccountRateLimitOverrides {
    fn defaults(by_code: bool) -> Vec<(&'static str, Vec<RateLimit>)> {
        use RateLimitPer::{Ip, Key, User};
        vec![
            ("change_password", vec![rl(5, 60, User)]),
            ("change_phone", vec![rl(1, 60, User)]),
            ("manage_email", vec![rl(10, 60, User)]),
            ("reset_password", vec![rl(20, 60, Ip), rl(5, 60, Key)]),
            ("reauthenticate", vec![rl(10, 60, User)]),
            ("reset_password_from_key", vec![rl(20, 60, Ip)]),
            ("signup", vec![rl(20, 60, Ip)]),
            ("login", vec![rl(30, 60, Ip)]),
            ("request_login_code", vec![rl(20, 60, Ip), rl(3, 60, Key)]),
            ("login_failed", vec![rl(10, 60, Ip), rl(5, 300, Key)]),
            (
                "confirm_email",
                vec![if by_code {
                    rl(1, 10, Key)
                } else {
                    rl(1, 180, Key)
                }],
            ),
            ("verify_phone", vec![rl(1, 30, Key), rl(3, 60, Ip)]),
        ]
    }

    fn overrides(&self) -> Vec<(&'static str, Option<&RateRule>)> {
        vec![
            ("change_password", self.change_password.as_ref()),
            ("change_phone", self.change_phone.as_ref()),
            ("manage_email", self.manage_email.as_ref()),
            ("reset_password", self.reset_password.as_ref()),
            ("reauthenticate", self.reauthenticate.as_ref()),
            (
                "reset_password_from_key",
                self.reset_password_from_key.as_ref(),
            ),
            ("signup", self.signup.as_ref()),
            ("login", self.login.as_ref()),
            ("request_login_code", self.request_login_code.as_ref()),
            ("login_failed", self.login_failed.as_ref()),
            ("confirm_email", self.confirm_email.as_ref()),
            ("verify_phone", self.verify_phone.as_ref()),
        ]
    }
}

/// `[mfa.rate_limits]`: `MFA_RATE_LIMITS` actions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaRateLimitOverrides {
    /// Passwordless (passkey) logins.
    pub webauthn_login: Option<RateRule>,
}

impl RateLimitActions for MfaRateLimitOverrides {
    fn defaults(_by_code: bool) -> Vec<(&'static str, Vec<RateLimit>)> {
        vec![("webauthn_login", vec![rl(10, 60, RateLimitPer::Ip)])]
    }

    fn overrides(&self) -> Vec<(&'static str, Option<&RateRule>)> {
        vec![("webauthn_login", self.webauthn_login.as_ref())]
    }
}

// ---------------------------------------------------------------------------
// [headless]
// ---------------------------------------------------------------------------

/// `HEADLESS_CLIENTS` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadlessClient {
    Browser,
    App,
}

impl HeadlessClient {
    pub fn as_str(self) -> &'static str {
        match self {
            HeadlessClient::Browser => "browser",
            HeadlessClient::App => "app",
        }
    }
}

impl PartialEq<str> for HeadlessClient {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// `HEADLESS_TOKEN_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStrategy {
    /// Opaque `X-Session-Token` (allauth's `SessionTokenStrategy`).
    #[default]
    Session,
    /// JWT access + refresh tokens (allauth's `JWTTokenStrategy`).
    Jwt,
}

/// `HEADLESS_JWT_ALGORITHM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum JwtAlgorithm {
    #[default]
    RS256,
    HS256,
}

/// `HEADLESS_FRONTEND_URLS`: links put in mails; `{key}` is replaced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontendUrls {
    /// Must contain `{key}`.
    pub account_confirm_email: Option<String>,
    pub account_reset_password: Option<String>,
    /// Must contain `{key}`.
    pub account_reset_password_from_key: Option<String>,
    pub account_signup: Option<String>,
    pub socialaccount_login_error: Option<String>,
}

/// `[headless]`: django-allauth's `HEADLESS_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadlessConfig {
    pub clients: Vec<HeadlessClient>,
    pub token_strategy: TokenStrategy,
    pub jwt_algorithm: JwtAlgorithm,
    /// PEM file with the JWT signing key.
    pub jwt_private_key_file: Option<PathBuf>,
    /// The JWT signing key inline (PEM for RS256, any string for HS256).
    pub jwt_private_key: Option<Secret>,
    /// Seconds.
    pub jwt_access_token_expires_in: u64,
    /// Seconds.
    pub jwt_refresh_token_expires_in: u64,
    pub jwt_rotate_refresh_token: bool,
    pub jwt_stateful_validation_enabled: bool,
    pub jwt_authorization_header_scheme: String,
    pub frontend_urls: FrontendUrls,
    /// Serve `openapi.json`/`openapi.yaml`/`openapi.html`.
    pub serve_specification: bool,
    /// Ours: when set, `openapi.html` loads its renderer from these local
    /// files (served by us) instead of a CDN.
    pub specification_assets_dir: Option<PathBuf>,
}

impl Default for HeadlessConfig {
    fn default() -> Self {
        HeadlessConfig {
            clients: vec![HeadlessClient::Browser, HeadlessClient::App],
            token_strategy: TokenStrategy::Session,
            jwt_algorithm: JwtAlgorithm::RS256,
            jwt_private_key_file: None,
            jwt_private_key: None,
            jwt_access_token_expires_in: 300,
            jwt_refresh_token_expires_in: 86400,
            jwt_rotate_refresh_token: true,
            jwt_stateful_validation_enabled: false,
            jwt_authorization_header_scheme: "Bearer".to_owned(),
            frontend_urls: FrontendUrls::default(),
            serve_specification: false,
            specification_assets_dir: None,
        }
    }
}

impl HeadlessConfig {
    pub fn has_client(&self, client: HeadlessClient) -> bool {
        self.clients.contains(&client)
    }

    /// The configured JWT key: the inline one, else the file's contents, else
    /// `None` (HS256 then signs with `server.secret_key`, as allauth does with
    /// Django's `SECRET_KEY`).
    pub fn jwt_private_key_material(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(key) = &self.jwt_private_key {
            return Ok(Some(key.clone()));
        }
        match &self.jwt_private_key_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| Some(Secret(text)))
                .map_err(|source| ConfigError::Read {
                    what: "headless.jwt_private_key_file",
                    path: path.clone(),
                    source,
                }),
            None => Ok(None),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.clients.is_empty() {
            return Err(ConfigError::inconsistent(
                "headless.clients",
                "must name at least one of \"browser\", \"app\"",
            ));
        }
        if self.clients.len() != self.clients.iter().collect::<BTreeSet<_>>().len() {
            return Err(ConfigError::inconsistent(
                "headless.clients",
                "lists a client twice",
            ));
        }
        if self.jwt_private_key.is_some() && self.jwt_private_key_file.is_some() {
            return Err(ConfigError::inconsistent(
                "headless.jwt_private_key",
                "set either headless.jwt_private_key or headless.jwt_private_key_file, not both",
            ));
        }
        if let Some(key) = &self.jwt_private_key {
            if key.expose().trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    "headless.jwt_private_key",
                    "must not be empty",
                ));
            }
            if self.jwt_algorithm == JwtAlgorithm::RS256 && !key.expose().contains("-----BEGIN") {
                return Err(ConfigError::inconsistent(
                    "headless.jwt_private_key",
                    "RS256 needs a PEM-encoded RSA private key (-----BEGIN PRIVATE KEY-----…)",
                ));
            }
        }
        if self.token_strategy == TokenStrategy::Jwt
            && self.jwt_algorithm == JwtAlgorithm::RS256
            && self.jwt_private_key.is_none()
            && self.jwt_private_key_file.is_none()
        {
            // allauth loads HEADLESS_JWT_PRIVATE_KEY as PEM for RS*; only HS*
            // falls back to SECRET_KEY.
            return Err(ConfigError::inconsistent(
                "headless.jwt_private_key",
                "token_strategy \"jwt\" with RS256 needs headless.jwt_private_key or \
                 headless.jwt_private_key_file (or jwt_algorithm = \"HS256\")",
            ));
        }
        positive(
            "headless.jwt_access_token_expires_in",
            self.jwt_access_token_expires_in,
        )?;
        positive(
            "headless.jwt_refresh_token_expires_in",
            self.jwt_refresh_token_expires_in,
        )?;
        let scheme = &self.jwt_authorization_header_scheme;
        if scheme.is_empty() || !scheme.chars().all(is_token_char) {
            return Err(ConfigError::inconsistent(
                "headless.jwt_authorization_header_scheme",
                "must be a single word such as \"Bearer\"",
            ));
        }
        // allauth's render_url refuses a template lacking a placeholder it has a value for.
        for (key, url) in [
            (
                "headless.frontend_urls.account_confirm_email",
                &self.frontend_urls.account_confirm_email,
            ),
            (
                "headless.frontend_urls.account_reset_password_from_key",
                &self.frontend_urls.account_reset_password_from_key,
            ),
        ] {
            if let Some(url) = url {
                if !url.contains("{key}") {
                    return Err(ConfigError::inconsistent(
                        key,
                        "must contain the {key} placeholder",
                    ));
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// [mfa]
// ---------------------------------------------------------------------------

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
    pub trust_enabled: bool,
    /// Seconds.
    pub trust_cookie_age: u64,
    pub webauthn_allow_insecure_origin: bool,
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
            trust_enabled: false,
            trust_cookie_age: 14 * 24 * 3600,
            webauthn_allow_insecure_origin: false,
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

    fn validate(&self, account: &AccountConfig) -> Result<(), ConfigError> {
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
        if !(4..=20).contains(&self.recovery_code_digits) {
            return Err(ConfigError::inconsistent(
                "mfa.recovery_code_digits",
                "must be between 4 and 20",
            ));
        }
        positive("mfa.trust_cookie_age", self.trust_cookie_age)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// [socialaccount]
// ---------------------------------------------------------------------------

/// One `[[socialaccount.providers]]` entry (an OAuth2/OpenID Connect app).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Provider id used in URLs and in the API (`provider` field).
    pub id: String,
    /// Display name; defaults to `id`.
    #[serde(default)]
    pub name: String,
    pub client_id: String,
    pub secret: Secret,
    /// OpenID Connect discovery document
    /// (`https://…/.well-known/openid-configuration`).
    #[serde(default)]
    pub openid_configuration_url: Option<String>,
    #[serde(default)]
    pub scope: Vec<String>,
}

/// `[socialaccount]`: django-allauth's `SOCIALACCOUNT_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocialAccountConfig {
    /// `allauth.socialaccount` in `INSTALLED_APPS`.
    pub enabled: bool,
    pub auto_signup: bool,
    pub email_authentication: bool,
    pub email_authentication_auto_connect: bool,
    pub providers: Vec<ProviderConfig>,
}

impl Default for SocialAccountConfig {
    fn default() -> Self {
        SocialAccountConfig {
            enabled: true,
            auto_signup: true,
            email_authentication: false,
            email_authentication_auto_connect: false,
            providers: Vec::new(),
        }
    }
}

impl SocialAccountConfig {
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let key = |field: &str| format!("socialaccount.providers.{i}.{field}");
            if p.id.is_empty()
                || !p
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(ConfigError::inconsistent(
                    key("id"),
                    format!(
                        "{:?} must be non-empty letters, digits, '_', '-' or '.'",
                        p.id
                    ),
                ));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(ConfigError::inconsistent(
                    key("id"),
                    format!("provider {:?} is configured twice", p.id),
                ));
            }
            if p.client_id.trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    key("client_id"),
                    "must not be empty",
                ));
            }
            if let Some(url) = &p.openid_configuration_url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::inconsistent(
                        key("openid_configuration_url"),
                        "must be an http(s):// URL",
                    ));
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// [usersessions]
// ---------------------------------------------------------------------------

/// `[usersessions]`: django-allauth's `USERSESSIONS_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserSessionsConfig {
    /// `allauth.usersessions` in `INSTALLED_APPS`.
    pub enabled: bool,
    /// Keep last-seen time and IP of each session.
    pub track_activity: bool,
}

impl Default for UserSessionsConfig {
    fn default() -> Self {
        UserSessionsConfig {
            enabled: true,
            track_activity: false,
        }
    }
}

// ---------------------------------------------------------------------------
// [email]
// ---------------------------------------------------------------------------

/// Where mail goes (Django `EMAIL_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailBackend {
    /// Written to standard output.
    #[default]
    Console,
    Smtp,
    /// One file per message in `file_path`.
    File,
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (Django's default: neither `EMAIL_USE_TLS` nor `EMAIL_USE_SSL`).
    #[default]
    None,
    /// `EMAIL_USE_TLS`.
    Starttls,
    /// `EMAIL_USE_SSL` (implicit TLS).
    Tls,
}

/// `[email]`: Django's `EMAIL_*` / `DEFAULT_FROM_EMAIL`, plus our retry queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub backend: EmailBackend,
    /// Django `DEFAULT_FROM_EMAIL`.
    pub from: String,
    /// Django `EMAIL_FILE_PATH` (file backend).
    pub file_path: PathBuf,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// Seconds.
    pub smtp_timeout: u64,
    /// Ours: delivery attempts before a mail is dropped.
    pub retry_max_attempts: u32,
    /// Ours: seconds before the first retry (doubling after).
    pub retry_backoff_secs: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            backend: EmailBackend::Console,
            from: "webmaster@localhost".to_owned(),
            file_path: PathBuf::from("./data/mail"),
            smtp_host: "localhost".to_owned(),
            smtp_port: 25,
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            smtp_timeout: 10,
            retry_max_attempts: 10,
            retry_backoff_secs: 30,
        }
    }
}

impl EmailConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.from.contains('@') {
            return Err(ConfigError::inconsistent(
                "email.from",
                format!("{:?} is not an email address", self.from),
            ));
        }
        if self.backend == EmailBackend::Smtp {
            if self.smtp_host.trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    "email.smtp_host",
                    "must not be empty",
                ));
            }
            positive("email.smtp_port", u64::from(self.smtp_port))?;
        }
        if self.smtp_password.is_some() && self.smtp_username.is_none() {
            return Err(ConfigError::inconsistent(
                "email.smtp_password",
                "is set but email.smtp_username is not",
            ));
        }
        positive("email.smtp_timeout", self.smtp_timeout)?;
        positive(
            "email.retry_max_attempts",
            u64::from(self.retry_max_attempts),
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// [cors]
// ---------------------------------------------------------------------------

/// `[cors]`: cross-origin access for SPAs on another origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), or `["*"]`; empty = no CORS headers.
    pub allowed_origins: Vec<String>,
    /// `Access-Control-Allow-Credentials` (cookies); refused with `"*"`.
    pub allow_credentials: bool,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allowed_origins: Vec::new(),
            allow_credentials: true,
            max_age: 86400,
        }
    }
}

impl CorsConfig {
    pub fn allows_any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    pub fn is_enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.allows_any_origin() {
            if self.allowed_origins.len() > 1 {
                return Err(ConfigError::inconsistent(
                    "cors.allowed_origins",
                    "\"*\" must be the only entry",
                ));
            }
            if self.allow_credentials {
                // Browsers reject credentialed responses to a wildcard origin,
                // and echoing any origin with credentials would hand sessions
                // to every site.
                return Err(ConfigError::inconsistent(
                    "cors.allowed_origins",
                    "\"*\" cannot be combined with cors.allow_credentials = true; list the origins",
                ));
            }
            return Ok(());
        }
        for origin in &self.allowed_origins {
            if !is_origin(origin, false) {
                return Err(ConfigError::inconsistent(
                    "cors.allowed_origins",
                    format!(
                        "{origin:?} is not an origin (scheme://host[:port], no path or trailing /)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// [session] and [csrf]
// ---------------------------------------------------------------------------

/// Cookie `SameSite` attribute (Django `*_COOKIE_SAMESITE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum SameSite {
    #[default]
    #[serde(alias = "lax")]
    Lax,
    #[serde(alias = "strict")]
    Strict,
    #[serde(alias = "none")]
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// `[session]`: Django's `SESSION_COOKIE_*` (browser clients).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionCookieConfig {
    pub cookie_name: String,
    /// Seconds.
    pub cookie_age: u64,
    pub cookie_secure: bool,
    pub cookie_httponly: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    pub cookie_path: String,
}

impl Default for SessionCookieConfig {
    fn default() -> Self {
        SessionCookieConfig {
            cookie_name: "sessionid".to_owned(),
            cookie_age: 1_209_600,
            cookie_secure: false,
            cookie_httponly: true,
            cookie_samesite: SameSite::Lax,
            cookie_domain: None,
            cookie_path: "/".to_owned(),
        }
    }
}

impl SessionCookieConfig {
    /// When a session saved at `now_ms` expires (unix epoch milliseconds).
    pub fn expires_at(&self, now_ms: i64) -> i64 {
        let age_ms = i64::try_from(self.cookie_age)
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        now_ms.saturating_add(age_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        cookie_name("session.cookie_name", &self.cookie_name)?;
        positive("session.cookie_age", self.cookie_age)?;
        samesite_needs_secure("session", self.cookie_samesite, self.cookie_secure)?;
        if !self.cookie_path.starts_with('/') {
            return Err(ConfigError::inconsistent(
                "session.cookie_path",
                "must start with /",
            ));
        }
        Ok(())
    }
}

/// `[csrf]`: Django's `CSRF_*` (browser clients).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsrfConfig {
    pub cookie_name: String,
    /// Request header carrying the token (Django `CSRF_HEADER_NAME`, as a header name).
    pub header_name: String,
    pub cookie_secure: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    /// Origins trusted for unsafe requests besides our own (`https://*.example.com` allowed).
    pub trusted_origins: Vec<String>,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        CsrfConfig {
            cookie_name: "csrftoken".to_owned(),
            header_name: "X-CSRFToken".to_owned(),
            cookie_secure: false,
            cookie_samesite: SameSite::Lax,
            cookie_domain: None,
            trusted_origins: Vec::new(),
        }
    }
}

impl CsrfConfig {
    fn validate(&self, session: &SessionCookieConfig) -> Result<(), ConfigError> {
        cookie_name("csrf.cookie_name", &self.cookie_name)?;
        if self.cookie_name == session.cookie_name {
            return Err(ConfigError::inconsistent(
                "csrf.cookie_name",
                "must differ from session.cookie_name",
            ));
        }
        header_name("csrf.header_name", &self.header_name)?;
        samesite_needs_secure("csrf", self.cookie_samesite, self.cookie_secure)?;
        for origin in &self.trusted_origins {
            // Django 4.0's check: entries must start with a scheme.
            if !is_origin(origin, true) {
                return Err(ConfigError::inconsistent(
                    "csrf.trusted_origins",
                    format!("{origin:?} is not an origin (scheme://host[:port], e.g. https://*.example.com)"),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::inconsistent(key, "must be greater than 0"))
    } else {
        Ok(())
    }
}

/// RFC 9110 `tchar`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn header_name(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || !value.chars().all(is_token_char) {
        return Err(ConfigError::inconsistent(
            key,
            format!("{value:?} is not a valid HTTP header name"),
        ));
    }
    Ok(())
}

fn cookie_name(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || !value.chars().all(is_token_char) {
        return Err(ConfigError::inconsistent(
            key,
            format!("{value:?} is not a valid cookie name"),
        ));
    }
    Ok(())
}

fn samesite_needs_secure(
    section: &str,
    samesite: SameSite,
    secure: bool,
) -> Result<(), ConfigError> {
    if samesite == SameSite::None && !secure {
        // Browsers drop SameSite=None cookies that are not Secure.
        return Err(ConfigError::inconsistent(
            format!("{section}.cookie_samesite"),
            format!("\"None\" requires {section}.cookie_secure = true"),
        ));
    }
    Ok(())
}

/// `scheme://host[:port]` without path, query or trailing slash. With
/// `wildcard_host`, the host may start with `*.`.
fn is_origin(origin: &str, wildcard_host: bool) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    {
        return false;
    }
    let host_port = if wildcard_host {
        rest.strip_prefix("*.").unwrap_or(rest)
    } else {
        rest
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (host_port, None), // bare IPv6
        Some((h, p)) => (h, Some(p)),
        None => (host_port, None),
    };
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return false;
        }
    }
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
}

// ---------------------------------------------------------------------------
// Loading helpers
// ---------------------------------------------------------------------------

/// The process-environment overlay: `PREFIX` stripped, `__` → nesting.
fn env_provider(prefix: &str) -> Env {
    Env::prefixed(prefix)
        .filter(|k| is_setting_env_var(k.as_str()))
        .split(ENV_SEPARATOR)
}

/// Reports a TOML syntax error on one line, with its position.
fn check_toml_syntax(text: &str, origin: &str) -> Result<(), ConfigError> {
    match Toml::from_str::<Dict>(text) {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            let message = match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}: {detail}")
                }
                None => detail,
            };
            Err(ConfigError::Syntax {
                origin: origin.to_owned(),
                message,
            })
        }
    }
}

/// An explicit list of environment variables, mapped exactly like
/// `Env::prefixed(ENV_PREFIX).split(ENV_SEPARATOR)` maps the process's.
struct EnvList {
    vars: Vec<(String, String)>,
}

impl Provider for EnvList {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (name, value) in &self.vars {
            let name = name.trim();
            let Some(prefix) = name.get(..ENV_PREFIX.len()) else {
                continue;
            };
            if !prefix.eq_ignore_ascii_case(ENV_PREFIX)
                || !is_setting_env_var(&name[ENV_PREFIX.len()..])
            {
                continue;
            }
            let key = name[ENV_PREFIX.len()..].replace(ENV_SEPARATOR, ".");
            let key = key.trim().to_ascii_lowercase();
            let parts: Vec<&str> = key.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                continue;
            }
            let parsed: Value = match value.parse() {
                Ok(v) => v,
                Err(never) => match never {},
            };
            insert_nested(&mut dict, &parts, parsed);
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn insert_nested(dict: &mut Dict, parts: &[&str], value: Value) {
    match parts {
        [] => {}
        [last] => {
            dict.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Dict(Tag::Default, Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::Dict(Tag::Default, Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
}

/// Turns figment's error into ours: dotted key, short message, origin.
fn error_from_figment(error: figment::Error, env_has: &dyn Fn(&str) -> bool) -> ConfigError {
    let Some(error) = error.into_iter().next() else {
        return ConfigError::Invalid {
            key: String::new(),
            message: "unknown error".to_owned(),
            origin: "configuration".to_owned(),
        };
    };
    let mut path = error.path.clone();
    let mut message = match &error.kind {
        Kind::UnknownField(field, expected) => unknown_key_message(field, expected),
        Kind::MissingField(field) => {
            path.push(field.to_string());
            "missing required key".to_owned()
        }
        Kind::UnknownVariant(found, expected) => {
            format!("unknown value {found:?}, expected {}", one_of(expected))
        }
        Kind::InvalidType(actual, expected) => {
            format!("invalid type: found {actual}, expected {expected}")
        }
        Kind::InvalidValue(actual, expected) => {
            format!("invalid value {actual}, expected {expected}")
        }
        other => other.to_string(),
    };
    let mut is_env = false;
    let origin = match &error.metadata {
        Some(md) => match &md.source {
            Some(Source::File(file)) => format!("file {}", file.display()),
            _ if md.name.contains("environment variable") => {
                is_env = true;
                format!("environment variable {}", env_var_name(&path, env_has))
            }
            _ if md.name.contains("TOML") => "configuration text".to_owned(),
            _ => md.name.to_string(),
        },
        None => "configuration".to_owned(),
    };
    // `ALLAUTH_SERVER_BIND`: a single underscore where `__` was meant.
    if let (true, [only], Kind::UnknownField(..)) = (is_env, path.as_slice(), &error.kind) {
        if let Some(section) = SECTIONS
            .iter()
            .find(|s| only.len() > s.len() + 1 && only.starts_with(&format!("{s}_")))
        {
            let rest = &only[section.len() + 1..];
            message = format!(
                "unknown key (to set {section}.{rest} use {ENV_PREFIX}{}{ENV_SEPARATOR}{})",
                section.to_ascii_uppercase(),
                rest.to_ascii_uppercase()
            );
        }
    }
    let key = if path.is_empty() {
        "(top level)".to_owned()
    } else {
        path.join(".")
    };
    ConfigError::Invalid {
        key,
        message,
        origin,
    }
}

/// The environment variable that set `path`: the longest prefix of it that
/// names a variable which is set (a whole table can come from one variable).
fn env_var_name(path: &[String], env_has: &dyn Fn(&str) -> bool) -> String {
    let name_of = |parts: &[String]| {
        format!(
            "{ENV_PREFIX}{}",
            parts
                .iter()
                .map(|p| p.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(ENV_SEPARATOR)
        )
    };
    for len in (1..=path.len()).rev() {
        let name = name_of(&path[..len]);
        if env_has(&name) {
            return name;
        }
    }
    name_of(path)
}

fn one_of(expected: &[&str]) -> String {
    let quoted: Vec<String> = expected.iter().map(|e| format!("{e:?}")).collect();
    match quoted.len() {
        0 => "nothing".to_owned(),
        1 => quoted.concat(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

fn unknown_key_message(field: &str, expected: &[&str]) -> String {
    let suggestion = expected
        .iter()
        .map(|e| (edit_distance(field, e), *e))
        .filter(|(d, e)| *d <= 3.max(e.len() / 4))
        .min();
    match suggestion {
        Some((_, e)) => format!("unknown key (did you mean {e:?}?)"),
        None if expected.len() <= 16 => format!("unknown key, expected {}", one_of(expected)),
        None => "unknown key (see docs/settings.md)".to_owned(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../allauth-server.example.toml");

    fn load(toml: &str) -> Config {
        Config::from_sources(toml, &[]).unwrap()
    }

    fn load_err(toml: &str, env: &[(&str, &str)]) -> ConfigError {
        Config::from_sources(toml, env).unwrap_err()
    }

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

        let h = &c.headless;
        assert_eq!(
            h.clients,
            vec![HeadlessClient::Browser, HeadlessClient::App]
        );
        assert_eq!(h.token_strategy, TokenStrategy::Session);
        assert_eq!(h.jwt_algorithm, JwtAlgorithm::RS256);
        assert!(h.jwt_private_key.is_none() && h.jwt_private_key_file.is_none());
        assert_eq!(
            (
                h.jwt_access_token_expires_in,
                h.jwt_refresh_token_expires_in
            ),
            (300, 86400)
        );
        assert!(h.jwt_rotate_refresh_token && !h.jwt_stateful_validation_enabled);
        assert_eq!(h.jwt_authorization_header_scheme, "Bearer");
        assert!(h.frontend_urls.account_confirm_email.is_none());
        assert!(!h.serve_specification && h.specification_assets_dir.is_none());

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

        let s = &c.socialaccount;
        assert!(
            s.enabled
                && s.auto_signup
                && !s.email_authentication
                && !s.email_authentication_auto_connect
        );
        assert!(s.providers.is_empty());
        assert!(c.usersessions.enabled && !c.usersessions.track_activity);

        assert_eq!(
            c.server.bind_addr().unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(c.server.data_dir, PathBuf::from("./data"));
        assert!(c.server.secret_key.is_none());
        assert_eq!(c.server.request_body_max_bytes, 65536);
        assert_eq!(c.server.trusted_proxy_count, 0);
        assert_eq!(c.server.client_ip_header, "X-Forwarded-For");
        assert_eq!(c.server.log_level, "info");
        assert_eq!(c.database.url, "sqlite://./data/allauth.sqlite3");
        assert_eq!(c.database.backend(), Some(DatabaseBackend::Sqlite));
        assert_eq!(
            c.database.sqlite_path(),
            Some(PathBuf::from("./data/allauth.sqlite3"))
        );
        assert_eq!(c.database.max_connections, 8);

        let e = &c.email;
        assert_eq!(e.backend, EmailBackend::Console);
        assert_eq!(e.from, "webmaster@localhost");
        assert_eq!(e.file_path, PathBuf::from("./data/mail"));
        assert_eq!(
            (e.smtp_host.as_str(), e.smtp_port, e.smtp_tls),
            ("localhost", 25, SmtpTls::None)
        );
        assert!(e.smtp_username.is_none() && e.smtp_password.is_none());
        assert_eq!(
            (e.smtp_timeout, e.retry_max_attempts, e.retry_backoff_secs),
            (10, 10, 30)
        );

        assert!(c.cors.allowed_origins.is_empty() && c.cors.allow_credentials);
        assert_eq!(c.cors.max_age, 86400);
        let se = &c.session;
        assert_eq!(
            (se.cookie_name.as_str(), se.cookie_age),
            ("sessionid", 1_209_600)
        );
        assert!(!se.cookie_secure && se.cookie_httponly);
        assert_eq!(se.cookie_samesite, SameSite::Lax);
        assert!(se.cookie_domain.is_none());
        assert_eq!(se.cookie_path, "/");
        let cs = &c.csrf;
        assert_eq!(
            (cs.cookie_name.as_str(), cs.header_name.as_str()),
            ("csrftoken", "X-CSRFToken")
        );
        assert!(!cs.cookie_secure && cs.cookie_domain.is_none() && cs.trusted_origins.is_empty());
        assert_eq!(cs.cookie_samesite, SameSite::Lax);
    }

    #[test]
    fn empty_file_equals_default() {
        assert_eq!(
            format!("{:?}", load("")),
            format!("{:?}", Config::default())
        );
        assert_eq!(
            format!("{:?}", load("# nothing\n\n")),
            format!("{:?}", Config::default())
        );
        Config::default().validate().unwrap();
    }

    #[test]
    fn syntax_error_is_reported_with_position() {
        let err = load_err("[account\nlogin_methods = []", &[]);
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("line 1, column 9"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        let err = load_err("[server]\nbind = \n", &[]);
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let err = load_err("[account]\nlogin_method = [\"email\"]\n", &[]);
        assert_eq!(err.key(), Some("account.login_method"));
        let text = err.to_string();
        assert!(text.contains("did you mean \"login_methods\""), "{text}");
        let err = load_err("[acount]\n", &[]);
        assert_eq!(err.key(), Some("acount"));
        assert!(
            err.to_string().contains("did you mean \"account\""),
            "{err}"
        );
        let err = load_err("[headless.frontend_urls]\nconfirm = \"x\"\n", &[]);
        assert_eq!(err.key(), Some("headless.frontend_urls.confirm"));
    }

    #[test]
    fn unknown_key_in_env_is_named() {
        let err = load_err("", &[("ALLAUTH_SERVER__BINDD", "0.0.0.0:1")]);
        assert_eq!(err.key(), Some("server.bindd"));
        let text = err.to_string();
        assert!(
            text.contains("environment variable ALLAUTH_SERVER__BINDD"),
            "{text}"
        );
        // Mistyped settings are still settings.
        let err = load_err("", &[("ALLAUTH_SERVER_BIND", "0.0.0.0:1")]);
        assert_eq!(err.key(), Some("server_bind"));
        assert!(
            err.to_string().contains("use ALLAUTH_SERVER__BIND"),
            "{err}"
        );
        let err = load_err("", &[("ALLAUTH_SERVR__BIND", "0.0.0.0:1")]);
        assert_eq!(err.key(), Some("servr"));
        // Variables without the prefix, or tooling's own ALLAUTH_* variables
        // (no `__`, no section name), are not ours.
        Config::from_sources(
            "",
            &[
                ("PATH", "/bin"),
                ("ALLAUTHX", "1"),
                ("ALLAUTH_CODEGEN_SPEC", "x.yaml"),
            ],
        )
        .unwrap();
    }

    #[test]
    fn bad_enum_value_names_the_key() {
        let err = load_err("[account]\nemail_verification = \"sometimes\"\n", &[]);
        assert_eq!(err.key(), Some("account.email_verification"));
        let text = err.to_string();
        assert!(
            text.contains("\"sometimes\"") && text.contains("\"mandatory\""),
            "{text}"
        );
        let err = load_err("", &[("ALLAUTH_ACCOUNT__EMAIL_VERIFICATION", "always")]);
        assert_eq!(err.key(), Some("account.email_verification"));
        assert!(
            err.to_string()
                .contains("ALLAUTH_ACCOUNT__EMAIL_VERIFICATION"),
            "{err}"
        );
        let err = load_err("[account]\nlogin_methods = [\"email\", \"mail\"]\n", &[]);
        assert_eq!(err.key(), Some("account.login_methods.1"));
        let err = load_err(
            "[account]\nsignup_fields = [\"email*\", \"password*\"]\n",
            &[],
        );
        assert_eq!(err.key(), Some("account.signup_fields.1"));
        assert!(err.to_string().contains("password1*"), "{err}");
        let err = load_err("[account]\nprevent_enumeration = \"yes\"\n", &[]);
        assert_eq!(err.key(), Some("account.prevent_enumeration"));
        let err = load_err("[server]\nbind = \"localhost\"\n", &[]);
        assert_eq!(err.key(), Some("server.bind"));
        let err = load_err("[server]\nbind = 8000\n", &[]);
        assert_eq!(err.key(), Some("server.bind"));
        let err = load_err("[server]\nrequest_body_max_bytes = \"big\"\n", &[]);
        assert_eq!(err.key(), Some("server.request_body_max_bytes"));
        assert!(err.to_string().contains("configuration"), "{err}");
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

    #[test]
    fn env_overrides_file() {
        let toml = "[server]\nbind = \"127.0.0.1:1\"\nlog_level = \"debug\"\n[account]\nlogin_methods = [\"username\"]\n";
        let c = Config::from_sources(
            toml,
            &[
                ("ALLAUTH_SERVER__BIND", "0.0.0.0:9000"),
                (
                    "ALLAUTH_ACCOUNT__LOGIN_METHODS",
                    "[\"email\", \"username\"]",
                ),
                ("ALLAUTH_DATABASE__URL", "postgres://u:pw@db/allauth"),
                ("allauth_database__max_connections", "3"),
                ("ALLAUTH_SERVER__SECRET_KEY", "123456"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.server.bind_addr().unwrap(),
            "0.0.0.0:9000".parse().unwrap()
        );
        assert_eq!(
            c.server.log_level, "debug",
            "file value kept where env is silent"
        );
        assert_eq!(
            c.account.login_methods,
            vec![LoginMethod::Email, LoginMethod::Username]
        );
        assert_eq!(c.database.backend(), Some(DatabaseBackend::Postgres));
        assert_eq!(c.database.max_connections, 3);
        assert_eq!(c.server.secret_key.as_ref().unwrap().expose(), "123456");
        assert!(!format!("{:?}", c.database).contains("pw"));
    }

    #[test]
    fn process_env_provider_maps_like_the_explicit_one() {
        // The real loader's provider, on a prefix nobody else reads (a
        // concurrent `Config::load` must not see these).
        std::env::set_var("CFGTEST_ALLAUTH_SERVER__LOG_LEVEL", "warn");
        std::env::set_var(
            "CFGTEST_ALLAUTH_ACCOUNT__RATE_LIMITS__LOGIN",
            "20/m/ip,5/m/key",
        );
        std::env::set_var("CFGTEST_ALLAUTH_CODEGEN_SPEC", "ignored");
        let figment = Figment::new()
            .merge(Toml::string("[server]\nlog_level = \"debug\""))
            .merge(env_provider("CFGTEST_ALLAUTH_"));
        let c = Config::extract(&figment, &|_| false).unwrap();
        assert_eq!(c.server.log_level, "warn");
        assert_eq!(
            c.account.rate_limits()["login"],
            vec![rl(20, 60, RateLimitPer::Ip), rl(5, 60, RateLimitPer::Key)]
        );
        std::env::remove_var("CFGTEST_ALLAUTH_SERVER__LOG_LEVEL");
        std::env::remove_var("CFGTEST_ALLAUTH_ACCOUNT__RATE_LIMITS__LOGIN");
        std::env::remove_var("CFGTEST_ALLAUTH_CODEGEN_SPEC");
    }

    #[test]
    fn load_reads_a_file_and_refuses_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("allauth-cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[account]\nsignup_opne = false\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err();
        assert_eq!(err.key(), Some("account.signup_opne"));
        assert!(
            err.to_string()
                .contains(&format!("file {}", file.display())),
            "{err}"
        );
        std::fs::write(&file, "[account]\nsignup_open = false\n").unwrap();
        assert!(!Config::load(Some(&file)).unwrap().account.signup_open);
        let err = Config::load(Some(&dir.join("missing.toml"))).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rate_limits_false_disables_all() {
        let c = load("[account]\nrate_limits = false\n[mfa]\nrate_limits = false\n");
        assert!(c.account.rate_limits().is_empty());
        assert!(c.mfa.rate_limits().is_empty());
        let c = Config::from_sources("", &[("ALLAUTH_ACCOUNT__RATE_LIMITS", "false")]).unwrap();
        assert!(c.account.rate_limits().is_empty());
    }

    #[test]
    fn rate_limits_partial_table_merges_over_defaults() {
        let c = load("[account.rate_limits]\nlogin = \"5/m/user\"\nsignup = false\nconfirm_email = \"\"\nlogin_failed = \"3/2h/key,1/d\"\n");
        let rl_map = c.account.rate_limits();
        assert_eq!(rl_map["login"], vec![rl(5, 60, RateLimitPer::User)]);
        assert_eq!(
            rl_map["login_failed"],
            vec![
                rl(3, 7200, RateLimitPer::Key),
                rl(1, 86400, RateLimitPer::Ip)
            ]
        );
        assert!(!rl_map.contains_key("signup") && !rl_map.contains_key("confirm_email"));
        assert_eq!(
            rl_map["change_password"],
            vec![rl(5, 60, RateLimitPer::User)]
        );
        assert_eq!(rl_map.len(), 10);
    }

    #[test]
    fn rate_limit_errors_name_the_key() {
        let err = load_err("[account.rate_limits]\nlogn = \"5/m\"\n", &[]);
        assert_eq!(err.key(), Some("account.rate_limits.logn"));
        assert!(err.to_string().contains("did you mean \"login\""), "{err}");
        let err = load_err("[account.rate_limits]\nlogin = \"5/w/ip\"\n", &[]);
        assert_eq!(err.key(), Some("account.rate_limits.login"));
        assert!(err.to_string().contains("5/w/ip"), "{err}");
        let err = load_err("[mfa.rate_limits]\nwebauthn_login = \"x/m\"\n", &[]);
        assert_eq!(err.key(), Some("mfa.rate_limits.webauthn_login"));
        let err = load_err(
            "",
            &[("ALLAUTH_ACCOUNT__RATE_LIMITS__SIGNUP", "5/m/everyone")],
        );
        assert!(
            err.to_string()
                .contains("ALLAUTH_ACCOUNT__RATE_LIMITS__SIGNUP"),
            "{err}"
        );
    }

    #[test]
    fn rate_limit_syntax() {
        let p = |s| RateLimit::parse_list(s);
        assert_eq!(p("5/m/user").unwrap(), vec![rl(5, 60, RateLimitPer::User)]);
        assert_eq!(
            p("5/300s/key").unwrap(),
            vec![rl(5, 300, RateLimitPer::Key)]
        );
        assert_eq!(
            p(" 20/m/ip , 5/m/key ").unwrap(),
            vec![rl(20, 60, RateLimitPer::Ip), rl(5, 60, RateLimitPer::Key)]
        );
        assert_eq!(p("10/m").unwrap(), vec![rl(10, 60, RateLimitPer::Ip)]);
        assert_eq!(p("1/1.5m/ip").unwrap(), vec![rl(1, 90, RateLimitPer::Ip)]);
        assert_eq!(p("2/h/ip").unwrap()[0].period_secs, 3600);
        assert_eq!(p("2/d/ip").unwrap()[0].period_secs, 86400);
        assert!(p("").unwrap().is_empty());
        for bad in [
            "5",
            "5/m/ip/x",
            "x/m/ip",
            "0/m/ip",
            "5/0s/ip",
            "5/0.5s/ip",
            "5/ms/ip",
            "5/m/host",
            "5//ip",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn confirm_email_default_follows_verification_by_code() {
        let c = load("[account]\nemail_verification = \"mandatory\"\nemail_verification_by_code_enabled = true\nsignup_fields = [\"email*\", \"username*\", \"password1*\"]\n");
        assert_eq!(
            c.account.rate_limits()["confirm_email"],
            vec![rl(1, 10, RateLimitPer::Key)]
        );
    }

    #[test]
    fn cors_wildcard_with_credentials_is_refused() {
        let err = load_err("[cors]\nallowed_origins = [\"*\"]\n", &[]);
        assert_eq!(err.key(), Some("cors.allowed_origins"));
        assert!(err.to_string().contains("allow_credentials"), "{err}");
        let c = load("[cors]\nallowed_origins = [\"*\"]\nallow_credentials = false\n");
        assert!(c.cors.allows_any_origin());
        load(
            "[cors]\nallowed_origins = [\"https://app.example.com\", \"http://localhost:5173\"]\n",
        );
        let err = load_err(
            "[cors]\nallowed_origins = [\"https://app.example.com/\"]\n",
            &[],
        );
        assert_eq!(err.key(), Some("cors.allowed_origins"));
    }

    #[test]
    fn secrets_are_not_printed() {
        let toml = r#"
            [server]
            secret_key = "s3cr3t-server-key"
            [email]
            smtp_username = "mailer"
            smtp_password = "s3cr3t-smtp"
            [headless]
            jwt_algorithm = "HS256"
            jwt_private_key = "s3cr3t-jwt"
            [[socialaccount.providers]]
            id = "google"
            client_id = "cid"
            secret = "s3cr3t-provider"
        "#;
        let c = load(toml);
        let printed = format!("{c:?} {:#?}", c);
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("[redacted]"));
        assert_eq!(
            c.server.secret_key.as_ref().unwrap().to_string(),
            "[redacted]"
        );
        assert_eq!(
            c.email.smtp_password.as_ref().unwrap().expose(),
            "s3cr3t-smtp"
        );
        assert_eq!(
            c.headless
                .jwt_private_key_material()
                .unwrap()
                .unwrap()
                .expose(),
            "s3cr3t-jwt"
        );
        assert_eq!(c.socialaccount.provider("google").unwrap().name, "google");
    }

    #[test]
    fn allauth_checks_are_mirrored() {
        let cases: &[(&str, &str)] = &[
            // account/checks.py
            ("[account]\nemail_verification_by_code_enabled = true\n", "account.email_verification_by_code_enabled"),
            ("[account]\nemail_verification = \"mandatory\"\n", "account.email_verification"),
            ("[account]\nlogin_methods = [\"email\"]\nsignup_fields = [\"email*\", \"password1*\"]\nunique_email = false\n", "account.unique_email"),
            ("[account]\nmax_email_addresses = 0\n", "account.max_email_addresses"),
            ("[account]\nchange_email = true\nmax_email_addresses = 3\n", "account.max_email_addresses"),
            ("[account]\nlogin_methods = [\"email\"]\n", "account.signup_fields"),
            ("[account]\nlogin_methods = [\"phone\"]\n", "account.signup_fields"),
            ("[account]\nsignup_fields = [\"email\", \"username\", \"password1*\"]\n", "account.signup_fields"),
            ("[account]\nlogin_methods = []\n", "account.login_methods"),
            ("[account]\nsignup_fields = [\"username*\", \"username\"]\n", "account.signup_fields"),
            // mfa/checks.py
            ("[mfa]\npasskey_signup_enabled = true\nsupported_types = [\"webauthn\"]\n", "mfa.passkey_signup_enabled"),
            ("[mfa]\npasskey_login_enabled = true\n", "mfa.passkey_login_enabled"),
            // headless JWT keys
            ("[headless]\ntoken_strategy = \"jwt\"\n", "headless.jwt_private_key"),
            ("[headless]\njwt_private_key = \"not pem\"\n", "headless.jwt_private_key"),
            ("[headless.frontend_urls]\naccount_confirm_email = \"https://app/verify\"\n", "headless.frontend_urls.account_confirm_email"),
            // cookies
            ("[session]\ncookie_samesite = \"None\"\n", "session.cookie_samesite"),
            ("[csrf]\ntrusted_origins = [\"example.com\"]\n", "csrf.trusted_origins"),
            ("[csrf]\ncookie_name = \"sessionid\"\n", "csrf.cookie_name"),
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            ("[email]\nsmtp_password = \"x\"\n", "email.smtp_password"),
        ];
        for (toml, key) in cases {
            let err = load_err(toml, &[]);
            assert!(
                matches!(err, ConfigError::Inconsistent { .. }),
                "{toml}: {err:?}"
            );
            assert_eq!(err.key(), Some(*key), "{toml}: {err}");
        }
        // And the valid combinations.
        load("[headless]\ntoken_strategy = \"jwt\"\njwt_algorithm = \"HS256\"\n");
        load("[headless]\ntoken_strategy = \"jwt\"\njwt_private_key_file = \"/nonexistent/key.pem\"\n");
        load("[account]\nchange_email = true\nmax_email_addresses = 2\n");
        load("[account]\nlogin_methods = [\"email\", \"username\"]\nsignup_fields = [\"email*\", \"username\", \"password1*\"]\n");
        load(concat!(
            "[account]\nemail_verification = \"mandatory\"\nemail_verification_by_code_enabled = true\n",
            "login_methods = [\"email\"]\nsignup_fields = [\"email*\", \"password1*\"]\n",
            "[mfa]\nsupported_types = [\"recovery_codes\", \"totp\", \"webauthn\"]\npasskey_signup_enabled = true\n",
        ));
        load("[session]\ncookie_samesite = \"None\"\ncookie_secure = true\n[csrf]\ntrusted_origins = [\"https://*.example.com\"]\n");
    }

    #[test]
    fn provider_entries() {
        let c = load("[[socialaccount.providers]]\nid = \"oidc\"\nname = \"My IdP\"\nclient_id = \"c\"\nsecret = \"s\"\nopenid_configuration_url = \"https://idp/.well-known/openid-configuration\"\nscope = [\"openid\", \"email\"]\n");
        let p = c.socialaccount.provider("oidc").unwrap();
        assert_eq!((p.name.as_str(), p.scope.len()), ("My IdP", 2));
        let err = load_err(
            "[[socialaccount.providers]]\nid = \"oidc\"\nsecret = \"s\"\n",
            &[],
        );
        assert_eq!(err.key(), Some("socialaccount.providers.0.client_id"));
        let err = load_err("[[socialaccount.providers]]\nid = \"a\"\nclient_id = \"c\"\nsecret = \"s\"\n[[socialaccount.providers]]\nid = \"a\"\nclient_id = \"c\"\nsecret = \"s\"\n", &[]);
        assert_eq!(err.key(), Some("socialaccount.providers.1.id"));
    }

    #[test]
    fn example_file_loads() {
        let c = Config::from_sources(EXAMPLE, &[]).unwrap();
        assert!(c.headless.serve_specification);
        assert_eq!(
            c.mfa.supported_types,
            vec![MfaType::RecoveryCodes, MfaType::Totp, MfaType::Webauthn]
        );
        assert!(c.mfa.passkey_login_enabled && c.mfa.trust_enabled);
        assert!(c.account.login_by_code_enabled && c.account.password_reset_by_code_enabled);
    }

    /// Lines of the example of the form `# key = value` (exactly one space
    /// after `#`) are commented-out defaults; uncommenting any one of them
    /// must change nothing.
    #[test]
    fn example_commented_values_are_the_defaults() {
        let defaults = format!("{:?}", Config::default());
        let mut section = String::new();
        let mut checked = 0;
        for line in EXAMPLE.lines() {
            if line.starts_with('[') {
                section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
                continue;
            }
            let Some(setting) = line.strip_prefix("# ") else {
                continue;
            };
            let Some((key, _)) = setting.split_once(" = ") else {
                continue;
            };
            if !key.starts_with(|c: char| c.is_ascii_lowercase())
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                continue;
            }
            let toml = format!("[{section}]\n{setting}\n");
            if setting.ends_with("# example") {
                // A value for a setting unset by default: it must at least
                // have the right key and type.
                Figment::from(Toml::string(&toml))
                    .extract::<Config>()
                    .unwrap_or_else(|e| panic!("{toml}: {e}"));
                continue;
            }
            let c = Config::from_sources(&toml, &[]).unwrap_or_else(|e| panic!("{toml}: {e}"));
            assert_eq!(format!("{c:?}"), defaults, "{toml} is not the default");
            checked += 1;
        }
        assert!(checked > 80, "only {checked} commented defaults found");
    }

    /// Every key the structs accept is mentioned in the example file.
    #[test]
    fn example_mentions_every_key() {
        let mut mentioned = BTreeSet::new();
        let mut section = String::new();
        for line in EXAMPLE.lines() {
            if line.starts_with('[') {
                section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
                mentioned.insert(section.clone());
                continue;
            }
            let setting = line.strip_prefix("# ").unwrap_or(line);
            if let Some((key, _)) = setting.split_once(" = ") {
                if key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    mentioned.insert(format!("{section}.{key}"));
                }
            }
        }
        // figment's unknown-field error lists the accepted keys of a table.
        let keys_of = |table: &str| -> Vec<String> {
            let toml = if table.is_empty() {
                "zz_probe = 1".to_owned()
            } else {
                format!("[{table}]\nzz_probe = 1")
            };
            let err = Figment::from(Toml::string(&toml))
                .extract::<Config>()
                .unwrap_err();
            match &err.kind {
                Kind::UnknownField(_, expected) => {
                    expected.iter().map(|s| (*s).to_owned()).collect()
                }
                other => panic!("{table}: {other:?}"),
            }
        };
        let mut missing = Vec::new();
        for section in keys_of("") {
            for key in keys_of(&section) {
                let full = format!("{section}.{key}");
                if [
                    "account.rate_limits",
                    "mfa.rate_limits",
                    "headless.frontend_urls",
                ]
                .contains(&full.as_str())
                {
                    for sub in keys_of(&full) {
                        if !mentioned.contains(&format!("{full}.{sub}")) {
                            missing.push(format!("{full}.{sub}"));
                        }
                    }
                } else if full != "socialaccount.providers" && !mentioned.contains(&full) {
                    missing.push(full);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "not in allauth-server.example.toml: {missing:?}"
        );
    }

    #[test]
    fn sections_constant_matches_config() {
        let err = Figment::from(Toml::string("zz_probe = 1"))
            .extract::<Config>()
            .unwrap_err();
        match &err.kind {
            Kind::UnknownField(_, expected) => assert_eq!(expected.to_vec(), SECTIONS.to_vec()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn warnings_flag_a_generated_secret_with_postgres() {
        let shared = "[database]\nurl = \"postgres://db/allauth\"\n";
        assert!(load(shared)
            .warnings()
            .iter()
            .any(|w| w.contains("every instance sharing this database")));
        let key = "a-long-random-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
        let with_key = format!("{shared}[server]\nsecret_key = \"{key}\"\n");
        assert!(load(&with_key).warnings().is_empty());
        assert!(
            load("").warnings().is_empty(),
            "SQLite: one instance per file"
        );
    }

    #[test]
    fn warnings_flag_weak_secret() {
        let c = load("[server]\nsecret_key = \"short\"\n");
        assert!(c
            .warnings()
            .iter()
            .any(|w| w.starts_with("server.secret_key")));
    }
}
