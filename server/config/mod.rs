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
//!
//! This file holds the root [`Config`], the loaders and the environment
//! overlay. Each section has a file of its own with its structs, defaults,
//! validation and unit tests (`server.rs` for `[server]`, `account.rs` for
//! `[account]`, … `csrf.rs`); `sms.rs` for `[sms]`; `ratelimits.rs` the rate-limit settings of
//! `[account]` and `[mfa]`. Shared by all: `error.rs` ([`ConfigError`] and
//! figment's errors turned into it), `secret.rs` ([`Secret`]) and `checks.rs`
//! (validation helpers). Every public item is re-exported here, so users name
//! `crate::config::X` whatever file `X` lives in.

mod account;
mod checks;
mod cors;
mod csrf;
mod database;
mod email;
mod error;
mod headless;
mod mfa;
mod ratelimits;
mod secret;
mod server;
mod session;
mod sms;
mod socialaccount;
mod usersessions;
mod webhooks;

use std::collections::BTreeSet;
use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;

pub use account::{
    AccountConfig, CountOrFlag, EmailVerification, LoginMethod, PasswordValidator,
    PreventEnumeration, SignupField, SignupFieldName,
};
pub use cors::CorsConfig;
pub use csrf::CsrfConfig;
pub use database::{DatabaseBackend, DatabaseConfig};
pub use email::{EmailBackend, EmailConfig, SmtpTls};
pub use error::ConfigError;
pub use headless::{FrontendUrls, HeadlessClient, HeadlessConfig, JwtAlgorithm, TokenStrategy};
pub use mfa::{MfaConfig, MfaType};
pub use ratelimits::{
    AccountRateLimitOverrides, MfaRateLimitOverrides, RateLimit, RateLimitActions, RateLimitPer,
    RateLimits, RateRule,
};
pub use secret::Secret;
pub use server::ServerConfig;
pub use session::{SameSite, SessionCookieConfig};
pub use sms::{SmsBackend, SmsConfig};
pub use socialaccount::{
    AppConfig, AppSettings, FieldMap, ProviderSettings, SocialAccountConfig, VerifiedEmail,
};
pub use usersessions::UserSessionsConfig;
pub use webhooks::{WebhookEndpoint, WebhooksConfig, EVENT_TYPES};

use error::error_from_figment;

/// Prefix of the environment variables that overlay the file.
pub const ENV_PREFIX: &str = "ALLAUTH_";
/// Separator between nesting levels in environment variable names.
pub const ENV_SEPARATOR: &str = "__";

/// The top-level sections, i.e. the fields of [`Config`].
pub const SECTIONS: [&str; 13] = [
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
    "webhooks",
    "sms",
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
    pub webhooks: WebhooksConfig,
    pub sms: SmsConfig,
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
        config.socialaccount.resolve_secrets()?;
        config.webhooks.resolve_secrets()?;
        config.sms.resolve_secrets()?;
        config.validate()?;
        Ok(config)
    }

    /// Recomputes the values derived from several settings (the effective rate
    /// limits, whose `confirm_email` default depends on
    /// `account.email_verification_by_code_enabled`). The loaders call it; call it again after changing a
    /// loaded `Config` in code.
    pub fn finalize(&mut self) {
        let by_code = self.account.email_verification_by_code_enabled;
        self.account.rate_limits.resolve(by_code);
        self.mfa.rate_limits.resolve(by_code);
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
        self.webhooks.validate()?;
        self.sms.validate()?;
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
        if self.socialaccount.enabled && self.socialaccount.providers.contains_key("dummy") {
            out.push(
                "socialaccount.providers.dummy: anyone can log in as any identity they type; \
                 for development only"
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

/// The loaders the unit tests of every section use.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod testing {
    use super::{Config, ConfigError};

    pub(super) fn load(toml: &str) -> Config {
        Config::from_sources(toml, &[]).unwrap()
    }

    pub(super) fn load_err(toml: &str, env: &[(&str, &str)]) -> ConfigError {
        Config::from_sources(toml, env).unwrap_err()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::ratelimits::rl;
    use super::testing::{load, load_err};
    use super::*;
    use figment::error::Kind;

    const EXAMPLE: &str = include_str!("../../allauth-server.example.toml");

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
