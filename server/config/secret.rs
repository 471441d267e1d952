//! `Secret`: a configuration value whose `Debug` and `Display` never print it.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

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

/// Reads a secret given by one of `secret`, `secret_file` (its content,
/// without the trailing newline) or `secret_env` (an environment
/// variable) into `secret`; more than one of them is refused. `key` names
/// the setting in errors.
pub(super) fn resolve_secret_source(
    key: &str,
    secret: &mut Option<Secret>,
    file: Option<&std::path::Path>,
    env: Option<&str>,
) -> Result<(), super::ConfigError> {
    resolve_named_secret_source(key, "secret", secret, file, env)
}

/// [`resolve_secret_source`] for a secret whose keys are `{name}`,
/// `{name}_file` and `{name}_env` in the table `key` (such as
/// `sms.twilio_auth_token`).
pub(super) fn resolve_named_secret_source(
    key: &str,
    name: &str,
    secret: &mut Option<Secret>,
    file: Option<&std::path::Path>,
    env: Option<&str>,
) -> Result<(), super::ConfigError> {
    use super::ConfigError;
    let given = [secret.is_some(), file.is_some(), env.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(ConfigError::inconsistent(
            format!("{key}.{name}"),
            format!("give one of {name}, {name}_file and {name}_env"),
        ));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::inconsistent(
                format!("{key}.{name}_file"),
                format!("{}: {e}", path.display()),
            )
        })?;
        *secret = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
    } else if let Some(var) = env {
        let value = std::env::var(var).map_err(|_| {
            ConfigError::inconsistent(format!("{key}.{name}_env"), format!("${var} is not set"))
        })?;
        *secret = Some(Secret::new(value));
    }
    Ok(())
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::testing::load;

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
            [socialaccount.providers.google]
            app = { client_id = "cid", secret = "s3cr3t-provider" }
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
        let app = c.socialaccount.providers["google"].app.as_ref().unwrap();
        assert_eq!(app.secret(), "s3cr3t-provider");
    }
}
