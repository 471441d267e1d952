//! Storage layer: the connection pool over SQLite or PostgreSQL, embedded migrations, and one module per table.
//!
//! Conventions shared by every table:
//!
//! * Timestamps are `BIGINT` unix epoch **milliseconds** (UTC), `i64` in Rust;
//!   see [`now_millis`].
//! * Ids are 64-bit integers handed out by the database
//!   (`INTEGER PRIMARY KEY AUTOINCREMENT` on SQLite, `BIGSERIAL` on PostgreSQL).
//! * Secrets never reach a table: sessions keep only the SHA-256 of their
//!   token, users only a password hash.
//! * Queries are plain functions taking `&mut DbConnection`, written once for
//!   both backends; the few that need backend-specific SQL (`ON CONFLICT`)
//!   match on the connection inside their own module.
//!
//! Diesel is blocking: run queries through [`Db::run`] or [`Db::transaction`],
//! which move the work to tokio's blocking pool.

/// The queries the delivery loop (`crate::outbox`) runs on an outbox table,
/// written once for `mail_outbox`, `sms_outbox` and `webhook_outbox`: `by_id`,
/// `due` (rows not sent whose next attempt is at or before `now`, in
/// `due_order`, at most `limit`), `claim` (a lease: pushes a due row's next
/// attempt to `lease_until`, true for exactly one of several concurrent
/// callers, so a sender that dies leaves the row to be taken again after
/// the lease), `mark_sent` and `mark_failed` (both count the attempt).
/// `sent` is the table's column of when the row went out.
macro_rules! outbox_queries {
    (table: $table:ident, row: $row:ty, sent: $sent:ident, due_order: $order:expr) => {
        /// The row with `id`.
        pub fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<$row>, DbError> {
            Ok($table::table
                .find(id)
                .select(<$row>::as_select())
                .first(conn)
                .optional()?)
        }

        /// Rows not sent yet whose next attempt is at or before `now`, at most `limit`.
        pub fn due(conn: &mut DbConnection, now: i64, limit: i64) -> Result<Vec<$row>, DbError> {
            Ok($table::table
                .filter($table::$sent.is_null())
                .filter($table::next_attempt_at.le(now))
                .order($order)
                .limit(limit)
                .select(<$row>::as_select())
                .load(conn)?)
        }

        /// Takes a due row by pushing its next attempt to `lease_until`: true
        /// for exactly one of several concurrent callers; false when it was
        /// sent, claimed by someone else or is not due at `now`.
        pub fn claim(
            conn: &mut DbConnection,
            id: i64,
            now: i64,
            lease_until: i64,
        ) -> Result<bool, DbError> {
            let n = diesel::update(
                $table::table
                    .find(id)
                    .filter($table::$sent.is_null())
                    .filter($table::next_attempt_at.le(now)),
            )
            .set($table::next_attempt_at.eq(lease_until))
            .execute(conn)?;
            Ok(n > 0)
        }

        /// Records a successful attempt at `at`.
        pub fn mark_sent(conn: &mut DbConnection, id: i64, at: i64) -> Result<bool, DbError> {
            let n = diesel::update($table::table.find(id))
                .set((
                    $table::$sent.eq(Some(at)),
                    $table::attempts.eq($table::attempts + 1),
                    $table::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
            Ok(n > 0)
        }

        /// Records a failed attempt, with its error, and when to try again.
        pub fn mark_failed(
            conn: &mut DbConnection,
            id: i64,
            next_attempt_at: i64,
            error: &str,
        ) -> Result<bool, DbError> {
            let n = diesel::update($table::table.find(id))
                .set((
                    $table::next_attempt_at.eq(next_attempt_at),
                    $table::attempts.eq($table::attempts + 1),
                    $table::last_error.eq(Some(error)),
                ))
                .execute(conn)?;
            Ok(n > 0)
        }
    };
}

pub mod authenticators;
pub mod changes;
pub mod email_addresses;
pub mod import;
mod listener;
pub use listener::ListenerKind;
pub mod mail_outbox;
pub mod phone_numbers;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod schema;
pub mod sessions;
pub mod sms_outbox;
pub mod social_accounts;
pub mod testing;
pub mod users;
pub mod webhook_outbox;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, R2D2Connection};
use diesel::result::DatabaseErrorKind;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Migrations for SQLite, embedded at compile time.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Migrations for PostgreSQL, embedded at compile time.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Session settings applied to every pooled SQLite connection.
///
/// `busy_timeout` comes first so that the switch to WAL waits for a
/// concurrent opener instead of failing with `SQLITE_BUSY`.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA foreign_keys = ON; \
     PRAGMA synchronous = NORMAL;";

/// How long [`Db::run`] waits for a free pooled connection.
const POOL_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Key for `pg_advisory_xact_lock`, so that several instances starting at
/// once apply the migrations one after the other.
const PG_MIGRATION_LOCK: i64 = 0x616c_6c61_7574_6801; // "allauth" + 1

/// One connection type for both backends; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl DbConnection {
    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgresql(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// The database engine behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything that can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The first connection could not be opened (unreachable server, bad credentials…).
    #[error("database connection: {0}")]
    Connection(#[from] diesel::result::ConnectionError),
    /// No connection could be had from the pool in time.
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// A query failed; the Diesel error says how.
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    /// Applying the embedded migrations failed.
    #[error("database migration: {0}")]
    Migration(String),
    /// The blocking task running the closure panicked or was cancelled.
    #[error("database task: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The database URL could not be used (bad scheme, parent directory not creatable…).
    #[error("database configuration: {0}")]
    Config(String),
}

impl DbError {
    fn kind(&self) -> Option<&DatabaseErrorKind> {
        match self {
            DbError::Query(diesel::result::Error::DatabaseError(kind, _)) => Some(kind),
            _ => None,
        }
    }

    /// A unique constraint or unique index refused the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self.kind(), Some(DatabaseErrorKind::UniqueViolation))
    }

    /// A foreign key refused the write (the referenced row does not exist).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self.kind(), Some(DatabaseErrorKind::ForeignKeyViolation))
    }

    /// A CHECK or NOT NULL constraint refused the write.
    pub fn is_check_violation(&self) -> bool {
        matches!(
            self.kind(),
            Some(DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation)
        )
    }

    /// A query expecting exactly one row found none.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DbError::Query(diesel::result::Error::NotFound))
    }
}

/// The current time as unix epoch milliseconds, the unit of every timestamp column.
pub fn now_millis() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A file path, or `:memory:`.
    Sqlite(String),
    Postgres(String),
}

const SQLITE_MEMORY: &str = ":memory:";

impl Target {
    fn parse(url: &str) -> Result<Target, DbError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(DbError::Config(format!("no database path in {url:?}")));
        }
        if path.contains("://") {
            return Err(DbError::Config(format!(
                "unsupported database URL scheme in {url:?} (use sqlite://, postgres:// or a path)"
            )));
        }
        Ok(Target::Sqlite(path.to_owned()))
    }

    fn backend(&self) -> Backend {
        match self {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Opens connections for the pool, choosing the backend from the URL rather
/// than trying each one in turn.
#[derive(Debug)]
struct Manager {
    target: Target,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match &self.target {
            Target::Sqlite(path) => SqliteConnection::establish(path).map(DbConnection::Sqlite),
            Target::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgresql),
        }
        .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // Also true when a panicking closure left a transaction open.
        conn.is_broken()
    }
}

/// Applies [`SQLITE_PRAGMAS`] to every SQLite connection the pool opens.
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        match conn {
            DbConnection::Sqlite(conn) => {
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(diesel::r2d2::Error::QueryError)?;
                changes::register_sqlite_function(conn).map_err(diesel::r2d2::Error::QueryError)
            }
            DbConnection::Postgresql(_) => Ok(()),
        }
    }
}

/// A pool of database connections; cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    /// Where the database is (for the change feed's own connection).
    target: Arc<Target>,
    /// Which sessions and users committed writes touched (see [`changes`]).
    feed: Arc<changes::Feed>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: leave it out.
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Db {
    /// Opens a pool of at most `max_connections` connections.
    ///
    /// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite://path`,
    /// `sqlite:path`, a bare path, `:memory:` or `sqlite::memory:` select
    /// SQLite (the file's parent directory is created when missing).
    /// An in-memory SQLite database lives in one connection, so its pool
    /// holds exactly one connection, kept for the pool's lifetime.
    ///
    /// Blocks while the first connection is opened: call it at start-up or
    /// off the async executor.
    pub fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        Db::connect_keeping_probe(url, max_connections).map(|(db, _)| db)
    }

    /// [`Db::connect`], and on PostgreSQL the connection that checked the
    /// URL, for the caller to use once (the pool opens its own meanwhile).
    fn connect_keeping_probe(
        url: &str,
        max_connections: u32,
    ) -> Result<(Db, Option<DbConnection>), DbError> {
        let target = Target::parse(url)?;
        let backend = target.backend();
        let max = max_connections.max(1);
        let builder = Pool::builder()
            .connection_timeout(POOL_CHECKOUT_TIMEOUT)
            .test_on_check_out(false);
        let builder = match &target {
            Target::Sqlite(path) if path == SQLITE_MEMORY => builder
                .max_size(1)
                .min_idle(Some(1))
                .idle_timeout(None)
                .max_lifetime(None)
                .connection_customizer(Box::new(SqlitePragmas)),
            Target::Sqlite(path) => {
                if let Some(parent) = Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            DbError::Config(format!("cannot create {}: {e}", parent.display()))
                        })?;
                    }
                }
                builder
                    .max_size(max)
                    .min_idle(Some(1))
                    .connection_customizer(Box::new(SqlitePragmas))
            }
            Target::Postgres(_) => builder.max_size(max).min_idle(Some(1)),
        };
        let manager = Manager {
            target: target.clone(),
        };
        // Open one connection first: a bad URL or an unreachable server is
        // reported at once, not after the pool's checkout timeout.
        let probe = manager.connect().map_err(|e| match e {
            diesel::r2d2::Error::ConnectionError(e) => DbError::Connection(e),
            diesel::r2d2::Error::QueryError(e) => DbError::Query(e),
        })?;
        let db = |pool| Db {
            pool,
            backend,
            target: Arc::new(target),
            feed: Arc::default(),
        };
        Ok(match probe {
            // The pool opens its first connection in the background while
            // the caller uses this one.
            probe @ DbConnection::Postgresql(_) => {
                (db(builder.build_unchecked(manager)), Some(probe))
            }
            DbConnection::Sqlite(_) => {
                drop(probe);
                (db(builder.build(manager)?), None)
            }
        })
    }

    /// [`Db::connect`] and [`Db::migrate`], as start-up needs them. On
    /// PostgreSQL the migrations run on the connection that checked the
    /// URL while the pool opens its own, so that start-up waits for one
    /// new connection, not two. Blocking, like [`Db::connect`].
    pub fn open(url: &str, max_connections: u32) -> Result<Db, DbError> {
        let (db, probe) = Db::connect_keeping_probe(url, max_connections)?;
        match probe {
            Some(mut conn) => run_migrations(&mut conn)?,
            None => run_migrations(&mut *db.pool.get()?)?,
        }
        db.feed.migrated();
        Ok(db)
    }

    /// Sends the changes of committed writes to `sink` from now on (see
    /// [`changes`]): on PostgreSQL through a listening connection of this
    /// instance, on SQLite from this process's connections and, for other
    /// processes writing the file, a poll of its `data_version`. An
    /// in-memory SQLite database has no other process. Once per pool.
    pub fn watch(&self, sink: Arc<dyn changes::ChangeSink>) -> Result<(), DbError> {
        if !self.feed.set_sink(sink.clone()) {
            return Err(DbError::Config("the change feed has a sink already".into()));
        }
        let spawned = match &*self.target {
            Target::Postgres(url) => {
                let listener = listener::Listener::new(url.clone());
                self.feed.start_listener(listener.clone());
                listener.spawn(Arc::downgrade(&self.feed), sink)
            }
            Target::Sqlite(path) if path == SQLITE_MEMORY => Ok(()),
            Target::Sqlite(path) => {
                self.feed.watch_sqlite_file(path);
                changes::spawn_sqlite_watcher(path.clone(), Arc::downgrade(&self.feed), sink)
            }
        };
        spawned.map_err(|e| DbError::Config(format!("change feed thread: {e}")))
    }

    /// Whether every change committed before this call has reached the
    /// sink given to [`Db::watch`], so that a cache of the database may
    /// answer: at once on SQLite; on PostgreSQL after a round trip through
    /// the listening connection, shared by the calls waiting at that time.
    /// False when it cannot tell (no listener, or one that is down).
    pub async fn caught_up(&self) -> bool {
        self.feed.sink().is_some() && self.feed.caught_up().await
    }

    /// How the PostgreSQL change feed holds its listening connection (see
    /// [`Db::watch`]); `None` on SQLite and before `watch`.
    pub fn change_listener(&self) -> Option<ListenerKind> {
        self.feed.listener_kind()
    }

    /// Which backend this pool talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool.
    ///
    /// A connection the database server closed (a restart, a failover, an
    /// idle timeout, `pg_terminate_backend`) fails only when used; then it is
    /// marked broken, so that the pool drops it, and `f` runs again on
    /// another connection (at most the pool's size of times), so that no
    /// caller sees the error. Work on a connection that died before its
    /// commit was not committed, so running it again is safe; only a
    /// connection lost while its `COMMIT` was in flight leaves that unknown.
    ///
    /// The returned future does not borrow `self`, so it may be spawned.
    pub fn run<T, F>(&self, f: F) -> impl Future<Output = Result<T, DbError>> + Send + 'static
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Clone + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let feed = self.feed.clone();
        // Only SQLite connections get triggers of their own.
        let watch_connections = self.backend == Backend::Sqlite && feed.sink().is_some();
        let max_lost = pool.max_size();
        async move {
            tokio::task::spawn_blocking(move || {
                // Each lost connection is discarded, so this ends: at worst
                // every pooled connection was dead, then a new one is opened.
                let mut lost = 0;
                let result = loop {
                    let mut conn = pool.get()?;
                    if watch_connections {
                        watch_sqlite_connection(&mut conn, &feed);
                    }
                    match f.clone()(&mut conn) {
                        Err(error) if connection_lost(&error) && lost <= max_lost => {
                            lost += 1;
                            forget(&mut conn);
                            tracing::warn!(%error, "database connection lost; retrying on another");
                        }
                        result => break result,
                    }
                };
                // After the commit, before the caller goes on.
                feed.deliver_noted();
                result
            })
            .await?
        }
    }

    /// Like [`Db::run`], with `f` inside a transaction (see [`transaction`]):
    /// committed when `f` returns `Ok`, rolled back when it returns `Err`.
    pub fn transaction<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, DbError>> + Send + 'static
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| transaction(conn, f))
    }

    /// Applies the embedded migrations of this backend that are not applied yet.
    /// Safe to call again, and from several instances at once.
    pub fn migrate(&self) -> impl Future<Output = Result<(), DbError>> + Send + 'static {
        let feed = self.feed.clone();
        let migrated = self.run(run_migrations);
        async move {
            migrated.await?;
            feed.migrated();
            Ok(())
        }
    }
}

/// Gives a pooled SQLite connection its change triggers (see [`changes`])
/// if it does not have them for the current schema. Before the tables
/// exist this fails, and is tried again on the next use.
fn watch_sqlite_connection(
    conn: &mut diesel::r2d2::PooledConnection<Manager>,
    feed: &changes::Feed,
) {
    let generation = feed.schema_generation.load(Ordering::Acquire);
    let watched = diesel::r2d2::PooledConnection::extensions(conn)
        .get::<changes::Watched>()
        .is_some_and(|w| w.0 == generation);
    if watched {
        return;
    }
    let DbConnection::Sqlite(inner) = &mut **conn else {
        return;
    };
    if changes::install_sqlite_triggers(inner).is_ok() {
        diesel::r2d2::PooledConnection::extensions_mut(conn).insert(changes::Watched(generation));
    }
}

/// Marks `conn` broken, so that the pool drops it instead of handing it
/// out again ([`Manager::has_broken`]).
fn forget(conn: &mut DbConnection) {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        DbConnection::Postgresql(pg) => {
            AnsiTransactionManager::transaction_manager_status_mut(pg).set_in_error();
        }
        DbConnection::Sqlite(lite) => {
            AnsiTransactionManager::transaction_manager_status_mut(lite).set_in_error();
        }
    }
}

/// Whether `error` says the connection itself is gone (not the query):
/// libpq's "server closed the connection", "terminating connection due to
/// administrator command", "no connection to the server"…
fn connection_lost(error: &DbError) -> bool {
    use diesel::result::Error as E;
    match error {
        DbError::Query(E::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => true,
        DbError::Query(E::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)) => true,
        DbError::Query(E::DatabaseError(_, info)) => {
            let message = info.message();
            message.contains("terminating connection")
                || message.contains("server closed the connection")
                || message.contains("no connection to the server")
        }
        _ => false,
    }
}

/// Runs `f` inside a transaction on a connection already checked out.
///
/// On SQLite the outermost transaction is `BEGIN IMMEDIATE`: it takes the
/// write lock up front, so concurrent writers queue on `busy_timeout`
/// instead of failing with `SQLITE_BUSY` when a read lock is upgraded.
/// Nested calls use savepoints.
///
/// On PostgreSQL it is an ordinary `READ COMMITTED` transaction: a
/// read-then-write that must not race needs an atomic statement (as in
/// [`rate_limits::hit`]) or a conditional `UPDATE … WHERE` (as in
/// [`mail_outbox::claim`]), not a plain read before the write.
pub fn transaction<T, F>(conn: &mut DbConnection, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, DbError>,
{
    let inner = match conn {
        DbConnection::Sqlite(inner) => inner,
        DbConnection::Postgresql(_) => return conn.transaction(f),
    };
    let depth = AnsiTransactionManager::transaction_manager_status_mut(inner)
        .transaction_depth()
        .map_err(DbError::Query)?;
    if depth.is_some() {
        return conn.transaction(f);
    }
    AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
    let result = f(conn);
    let DbConnection::Sqlite(inner) = conn else {
        return Err(DbError::Config(
            "connection changed backend inside a transaction".into(),
        ));
    };
    match result {
        Ok(value) => {
            <AnsiTransactionManager as TransactionManager<SqliteConnection>>::commit_transaction(
                inner,
            )?;
            Ok(value)
        }
        Err(e) => {
            // The closure's error is the one worth reporting; a failed
            // rollback marks the connection broken and the pool drops it.
            let _ = <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(inner);
            Err(e)
        }
    }
}

/// How many embedded migrations of the connection's backend are not applied.
pub fn pending_migrations(conn: &mut DbConnection) -> Result<usize, DbError> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(conn) => conn
            .pending_migrations(SQLITE_MIGRATIONS)
            .map(|m| m.len())
            .map_err(migration_error),
        DbConnection::Postgresql(conn) => conn
            .pending_migrations(POSTGRES_MIGRATIONS)
            .map(|m| m.len())
            .map_err(migration_error),
    }
}

/// Applies the pending embedded migrations of the connection's backend, all
/// in one transaction (serialized across instances).
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), DbError> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(conn) => conn.immediate_transaction(|conn| {
            conn.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|_| ())
                .map_err(migration_error)
        }),
        DbConnection::Postgresql(conn) => conn.transaction(|conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(PG_MIGRATION_LOCK)
                .execute(conn)?;
            conn.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(migration_error)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_backend() {
        let cases = [
            (
                "postgres://u@h/db",
                Target::Postgres("postgres://u@h/db".into()),
            ),
            (
                "postgresql://u@h/db",
                Target::Postgres("postgresql://u@h/db".into()),
            ),
            ("sqlite://data/x.db", Target::Sqlite("data/x.db".into())),
            ("sqlite:///abs/x.db", Target::Sqlite("/abs/x.db".into())),
            ("sqlite:x.db", Target::Sqlite("x.db".into())),
            ("x.db", Target::Sqlite("x.db".into())),
            (":memory:", Target::Sqlite(":memory:".into())),
            ("sqlite::memory:", Target::Sqlite(":memory:".into())),
            ("sqlite://:memory:", Target::Sqlite(":memory:".into())),
        ];
        for (url, want) in cases {
            assert_eq!(Target::parse(url).unwrap(), want, "{url}");
        }
        assert!(Target::parse("mysql://h/db").is_err());
        assert!(Target::parse("sqlite://").is_err());
        assert!(Target::parse("").is_err());
    }
}
