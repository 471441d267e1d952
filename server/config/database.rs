//! `[database]`: the URL that selects the backend (SQLite or PostgreSQL), and the pool size.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::checks::positive;
use super::ConfigError;

/// `[database]`. The URL selects the backend: `sqlite://…` or `postgres://…`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (`sqlite://./rel`, `sqlite:///abs`, `sqlite::memory:`) or
    /// `postgres://user:password@host/db` (`postgresql://` too).
    pub url: String,
    /// Connection pool size.
    pub max_connections: u32,
    /// At most this many session lookups are kept in the exact session
    /// cache (0: no cache, every lookup reads the database).
    pub session_cache_entries: usize,
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
            session_cache_entries: 10_000,
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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
            .field("session_cache_entries", &self.session_cache_entries)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::testing::load;

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        assert_eq!(c.database.url, "sqlite://./data/allauth.sqlite3");
        assert_eq!(c.database.backend(), Some(DatabaseBackend::Sqlite));
        assert_eq!(
            c.database.sqlite_path(),
            Some(PathBuf::from("./data/allauth.sqlite3"))
        );
        assert_eq!(c.database.max_connections, 8);
        assert_eq!(c.database.session_cache_entries, 10_000);
    }
}
