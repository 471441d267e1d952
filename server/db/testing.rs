//! Throwaway databases for tests: a temporary SQLite file, or a fresh PostgreSQL database dropped on `Drop`.
//!
//! Tests that should run on every backend iterate [`TestDatabase::all`]:
//! SQLite always, PostgreSQL too when [`TEST_DATABASE_URL`] names an admin
//! connection (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), through
//! which a database `allauth_test_<random>` is created and later dropped,
//! also when the test panics.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;

use super::{Backend, Db, DbError};

/// Environment variable holding the PostgreSQL admin URL for tests.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// Prefix of every database and directory made here.
const PREFIX: &str = "allauth_test_";

/// A database that exists for as long as this value does.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Directory(PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDatabase {
    /// An empty SQLite database in a new temporary directory.
    pub fn sqlite() -> Result<TestDatabase, DbError> {
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}", random_suffix()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| DbError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let url = format!("sqlite://{}", dir.join("db.sqlite3").display());
        Ok(TestDatabase {
            backend: Backend::Sqlite,
            url,
            cleanup: Cleanup::Directory(dir),
        })
    }

    /// A new, empty PostgreSQL database created through `admin_url`.
    pub fn postgres(admin_url: &str) -> Result<TestDatabase, DbError> {
        let name = format!("{PREFIX}{}", random_suffix());
        let url = with_database_name(admin_url, &name)?;
        let mut admin = PgConnection::establish(admin_url).map_err(|e| {
            DbError::Config(format!("cannot reach the PostgreSQL admin database: {e}"))
        })?;
        // `name` is ours: lowercase letters, digits and underscores only.
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(TestDatabase {
            backend: Backend::Postgres,
            url,
            cleanup: Cleanup::Database {
                admin_url: admin_url.to_owned(),
                name,
            },
        })
    }

    /// Same as [`TestDatabase::postgres`].
    pub fn create(admin_url: &str) -> Result<TestDatabase, DbError> {
        TestDatabase::postgres(admin_url)
    }

    /// One fresh database per backend available to this test run: SQLite,
    /// and PostgreSQL when [`TEST_DATABASE_URL`] is set.
    pub fn all() -> Result<Vec<TestDatabase>, DbError> {
        let mut all = vec![TestDatabase::sqlite()?];
        if let Some(admin_url) = std::env::var(TEST_DATABASE_URL)
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            all.push(TestDatabase::postgres(admin_url.trim())?);
        }
        Ok(all)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL to hand to [`Db::connect`] (or to the server's configuration).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool on this database, not migrated.
    pub fn connect(&self, max_connections: u32) -> Result<Db, DbError> {
        Db::connect(&self.url, max_connections)
    }

    /// A pool on this database with the migrations applied.
    pub async fn migrated(&self, max_connections: u32) -> Result<Db, DbError> {
        let url = self.url.clone();
        let db = tokio::task::spawn_blocking(move || Db::connect(&url, max_connections)).await??;
        db.migrate().await?;
        Ok(db)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                // FORCE ends the connections pools may still hold (PostgreSQL 13+).
                let dropped = PgConnection::establish(admin_url)
                    .map_err(|e| e.to_string())
                    .and_then(|mut admin| {
                        admin
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = dropped {
                    eprintln!("warning: could not drop test database {name}: {e}");
                }
            }
        }
    }
}

/// `admin_url` with its database name replaced by `name` (query kept).
fn with_database_name(admin_url: &str, name: &str) -> Result<String, DbError> {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| DbError::Config(format!("{TEST_DATABASE_URL} must be a postgres:// URL")))?;
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

/// 16 hex digits, different on every call and in every process.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            ("postgres://h:1", "postgres://h:1/x"),
            (
                "postgresql://u:p@h/db?sslmode=disable",
                "postgresql://u:p@h/x?sslmode=disable",
            ),
        ];
        for (admin, want) in cases {
            assert_eq!(with_database_name(admin, "x").unwrap(), want);
        }
        assert!(with_database_name("nonsense", "x").is_err());
    }

    #[test]
    fn suffixes_differ() {
        let a = random_suffix();
        let b = random_suffix();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
