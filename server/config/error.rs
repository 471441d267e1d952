//! Why a configuration could not be loaded, and figment's errors turned into one line naming the dotted key and where it came from.

use std::path::PathBuf;

use figment::error::Kind;
use figment::Source;

use super::{ENV_PREFIX, ENV_SEPARATOR, SECTIONS};

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

    pub(super) fn inconsistent(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Inconsistent {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Turns figment's error into ours: dotted key, short message, origin.
pub(super) fn error_from_figment(
    error: figment::Error,
    env_has: &dyn Fn(&str) -> bool,
) -> ConfigError {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::testing::load_err;
    use crate::config::Config;

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
}
