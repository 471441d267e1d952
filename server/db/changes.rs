//! The change feed: which sessions and users a committed write touched, for
//! caches of what the database holds (the session cache,
//! `crate::app::sessions::session_cache`).
//!
//! Three tables decide a session lookup: `sessions`, `users` and
//! `email_addresses` (the primary address). Triggers on them report every
//! write as a [`Change`]:
//!
//! * **SQLite** (one process owns the database): each pooled connection gets
//!   `TEMP` triggers that call a function of ours, `allauth_cache_changed`,
//!   which notes the change on the calling thread. [`Db::run`] hands the
//!   notes to the [`ChangeSink`] when its closure has returned, so after the
//!   commit and before the caller goes on. Only the server's own
//!   connections have the triggers: tools that write the file while the
//!   server runs (the `users` and `sessions` commands, `sqlite3`) are seen by
//!   a poll of `PRAGMA data_version` (see [`SQLITE_POLL`]), which empties
//!   the caches.
//! * **PostgreSQL** (several instances may share it): permanent triggers
//!   (migrations `change_notify` and `change_notify_last_login`) send
//!   `NOTIFY allauth_changes` with `s<id>` or `u<id>`. Each instance has
//!   one listening connection (`super::listener`). Before a cache answers a request,
//!   [`Db::caught_up`] makes it exact: the listener sends an empty query
//!   on its connection and waits for the answer. PostgreSQL hands a
//!   listening connection every notification it has been signalled for
//!   before it reads the next query, and a notifying transaction signals
//!   before its client hears of the commit; so every change committed
//!   before the request arrived has been applied by then. One round trip
//!   serves every request that arrived before it was sent.
//!
//! [`Db::run`]: super::Db::run
//! [`Db::caught_up`]: super::Db::caught_up

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};

/// The channel of the PostgreSQL triggers.
pub const CHANNEL: &str = "allauth_changes";

/// How often the SQLite watcher looks for writes by other processes.
pub const SQLITE_POLL: Duration = Duration::from_millis(200);

/// What a write touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The session row with this id (updated or deleted).
    Session(i64),
    /// The user with this id, or one of their addresses.
    User(i64),
    /// Anything: changes may have been missed.
    Everything,
}

impl Change {
    /// What a trigger reports: kind `s` (a session row) or `u` (a user).
    fn of(kind: &str, id: i64) -> Option<Change> {
        match kind {
            "s" => Some(Change::Session(id)),
            "u" => Some(Change::User(id)),
            _ => None,
        }
    }

    /// A PostgreSQL trigger's payload: `s<id>` or `u<id>`.
    pub(super) fn parse(payload: &str) -> Option<Change> {
        let (kind, id) = payload.split_at_checked(1)?;
        Change::of(kind, id.parse().ok()?)
    }
}

/// Where the feed delivers changes (the session cache).
pub trait ChangeSink: Send + Sync + 'static {
    fn apply(&self, changes: &[Change]);
}

thread_local! {
    /// Changes the SQLite triggers reported on this thread, not yet handed
    /// to the sink.
    static NOTED: RefCell<Vec<Change>> = const { RefCell::new(Vec::new()) };
}

/// At most this many changes are kept per thread between two hand-overs;
/// beyond, one [`Change::Everything`] stands for all of them.
const MAX_NOTED: usize = 4096;

fn note(change: Change) {
    NOTED.with(|noted| {
        let mut noted = noted.borrow_mut();
        if noted.len() >= MAX_NOTED {
            noted.clear();
            noted.push(Change::Everything);
        } else if noted.last() != Some(&change) {
            noted.push(change);
        }
    });
}

/// Takes the changes noted on this thread.
pub(super) fn take_noted() -> Vec<Change> {
    NOTED.with(|noted| std::mem::take(&mut *noted.borrow_mut()))
}

diesel::define_sql_function! {
    /// Called by the SQLite `TEMP` triggers: notes a change (kind `s` or
    /// `u`) on the calling thread.
    fn allauth_cache_changed(kind: diesel::sql_types::Text, id: diesel::sql_types::BigInt) -> diesel::sql_types::Integer;
}

/// Registers [`allauth_cache_changed`] on a SQLite connection.
pub(super) fn register_sqlite_function(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    allauth_cache_changed_utils::register_impl(conn, |kind: String, id: i64| {
        note(Change::of(&kind, id).unwrap_or(Change::Everything));
        0
    })
}

/// The `TEMP` triggers of one SQLite connection. A new session row or user
/// cannot be in a cache yet, so their inserts are left out; an address
/// insert may change a user's primary address. The users' update trigger
/// is [`sqlite_user_update_trigger`].
const SQLITE_TRIGGERS: &str = "\
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_session_update
  AFTER UPDATE OF key_hash, user_id, data, expires_at, version ON main.sessions
  BEGIN SELECT allauth_cache_changed('s', OLD.id); END;
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_session_delete
  AFTER DELETE ON main.sessions
  BEGIN SELECT allauth_cache_changed('s', OLD.id); END;
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_user_delete
  AFTER DELETE ON main.users
  BEGIN SELECT allauth_cache_changed('u', OLD.id); END;
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_address_insert
  AFTER INSERT ON main.email_addresses
  BEGIN SELECT allauth_cache_changed('u', NEW.user_id); END;
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_address_update
  AFTER UPDATE ON main.email_addresses
  BEGIN SELECT allauth_cache_changed('u', OLD.user_id); SELECT allauth_cache_changed('u', NEW.user_id); END;
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_address_delete
  AFTER DELETE ON main.email_addresses
  BEGIN SELECT allauth_cache_changed('u', OLD.user_id); END;";

/// Creates the `TEMP` triggers on a SQLite connection; fails while the
/// tables do not exist yet (before the migrations).
pub(super) fn install_sqlite_triggers(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let columns = diesel::sql_query("SELECT name FROM pragma_table_info('users')")
        .load::<Column>(conn)?
        .into_iter()
        .map(|column| column.name)
        .collect::<Vec<_>>();
    conn.batch_execute(SQLITE_TRIGGERS)?;
    conn.batch_execute(&sqlite_user_update_trigger(&columns))
}

/// The column a login writes and no session lookup reads: updating it
/// alone reports nothing, so a login does not make the cache read the
/// user's other sessions again (on PostgreSQL the migration
/// `change_notify_last_login` does the same).
const UNREPORTED_USER_COLUMN: &str = "last_login";

/// The users' update trigger: an update of any column of `columns` (the
/// table's, as the connection finds them) but [`UNREPORTED_USER_COLUMN`]
/// reports the user.
fn sqlite_user_update_trigger(columns: &[String]) -> String {
    let reported = columns
        .iter()
        .filter(|name| name.as_str() != UNREPORTED_USER_COLUMN)
        .map(|name| format!("\"{}\"", name.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_user_update \
           AFTER UPDATE OF {reported} ON main.users \
           BEGIN SELECT allauth_cache_changed('u', OLD.id); SELECT allauth_cache_changed('u', NEW.id); END;"
    )
}

/// Marks a pooled SQLite connection whose triggers are in place, for the
/// schema generation they were made under (a migration that rebuilds a
/// table drops its triggers).
#[derive(Debug, Clone, Copy)]
pub(super) struct Watched(pub u64);

/// The watched SQLite files of this process, with their feeds: several
/// pools on one file (as in tests that start two servers on it) all hear of
/// a write made through any of them.
static SQLITE_FEEDS: Mutex<Vec<(String, Weak<Feed>)>> = Mutex::new(Vec::new());

/// The feed of one [`super::Db`], shared by its clones.
#[derive(Default)]
pub(super) struct Feed {
    sink: OnceLock<Arc<dyn ChangeSink>>,
    /// The SQLite file this feed watches (registered in [`SQLITE_FEEDS`]).
    sqlite_path: OnceLock<String>,
    /// Bumped after migrations: SQLite connections make their triggers again.
    pub(super) schema_generation: AtomicU64,
    listener: OnceLock<Arc<super::listener::Listener>>,
}

impl Feed {
    pub(super) fn sink(&self) -> Option<&Arc<dyn ChangeSink>> {
        self.sink.get()
    }

    /// After migrations ran: a migration may have rebuilt a table and
    /// dropped its triggers (each connection installs them again), and
    /// what is cached of it is no longer known.
    pub(super) fn migrated(&self) {
        self.schema_generation.fetch_add(1, Ordering::AcqRel);
        if let Some(sink) = self.sink() {
            sink.apply(&[Change::Everything]);
        }
    }

    /// Hands changes noted on this thread to the sink (or drops them), and
    /// to the sinks of the other pools of this process on the same file.
    pub(super) fn deliver_noted(&self) {
        let noted = take_noted();
        if noted.is_empty() {
            return;
        }
        let Some(path) = self.sqlite_path.get() else {
            if let Some(sink) = self.sink.get() {
                sink.apply(&noted);
            }
            return;
        };
        let feeds: Vec<Arc<Feed>> = match SQLITE_FEEDS.lock() {
            Ok(mut feeds) => {
                feeds.retain(|(_, feed)| feed.strong_count() > 0);
                feeds
                    .iter()
                    .filter(|(p, _)| p == path)
                    .filter_map(|(_, feed)| feed.upgrade())
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for feed in feeds {
            if let Some(sink) = feed.sink.get() {
                sink.apply(&noted);
            }
        }
    }

    /// Registers this feed as one of the file's (see [`SQLITE_FEEDS`]).
    pub(super) fn watch_sqlite_file(self: &Arc<Self>, path: &str) {
        if self.sqlite_path.set(path.to_owned()).is_ok() {
            if let Ok(mut feeds) = SQLITE_FEEDS.lock() {
                feeds.push((path.to_owned(), Arc::downgrade(self)));
            }
        }
    }

    /// Sets the sink; false if one was set already.
    pub(super) fn set_sink(&self, sink: Arc<dyn ChangeSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    pub(super) fn start_listener(&self, listener: Arc<super::listener::Listener>) {
        let _ = self.listener.set(listener);
    }

    pub(super) fn listener_kind(&self) -> Option<super::listener::ListenerKind> {
        self.listener.get().map(|listener| listener.kind())
    }

    /// See [`super::Db::caught_up`].
    pub(super) async fn caught_up(&self) -> bool {
        match self.listener.get() {
            Some(listener) => listener.caught_up().await,
            // SQLite: the sink has every change of this process already.
            None => true,
        }
    }
}

/// Watches a SQLite file for commits by other processes (its
/// `data_version` moves on every commit of another connection, ours too):
/// every [`SQLITE_POLL`] while `feed` lives, a move empties the caches.
pub(super) fn spawn_sqlite_watcher(
    path: String,
    feed: Weak<Feed>,
    sink: Arc<dyn ChangeSink>,
) -> std::io::Result<()> {
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        data_version: i64,
    }
    let version = |conn: &mut SqliteConnection| {
        diesel::sql_query("PRAGMA data_version")
            .get_result::<Version>(conn)
            .map(|v| v.data_version)
    };
    std::thread::Builder::new()
        .name("allauth-sqlite-watch".into())
        .spawn(move || {
            let mut conn = None;
            let mut last = None;
            while feed.strong_count() > 0 {
                if conn.is_none() {
                    conn = SqliteConnection::establish(&path).ok();
                    last = None;
                }
                match conn.as_mut().map(version) {
                    Some(Ok(now)) => {
                        if last.is_some_and(|last| last != now) {
                            sink.apply(&[Change::Everything]);
                        }
                        last = Some(now);
                    }
                    _ => {
                        // Unknown: do not trust the caches.
                        sink.apply(&[Change::Everything]);
                        conn = None;
                    }
                }
                std::thread::sleep(SQLITE_POLL);
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(Change::parse("s12"), Some(Change::Session(12)));
        assert_eq!(Change::parse("u7"), Some(Change::User(7)));
        assert_eq!(Change::parse("m1f.3"), None);
        assert_eq!(Change::parse("x1"), None);
        assert_eq!(Change::parse(""), None);
    }

    /// On SQLite the triggers note a user's change, except a write of
    /// `last_login` alone (a login), also on a column added later.
    #[test]
    fn a_login_alone_reports_nothing_on_sqlite() {
        let mut conn = SqliteConnection::establish(":memory:").expect("in memory");
        register_sqlite_function(&mut conn).expect("function");
        conn.batch_execute(
            "CREATE TABLE sessions (id INTEGER PRIMARY KEY, key_hash TEXT, user_id INTEGER, \
               data TEXT, expires_at INTEGER, version INTEGER); \
             CREATE TABLE email_addresses (id INTEGER PRIMARY KEY, user_id INTEGER); \
             CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, is_active INTEGER, \
               last_login INTEGER, \"added later\" TEXT); \
             INSERT INTO users VALUES (1, 'ann', 1, NULL, NULL);",
        )
        .expect("tables");
        install_sqlite_triggers(&mut conn).expect("triggers");
        let _ = take_noted();
        for (sql, noted) in [
            ("UPDATE users SET last_login = 5", vec![]),
            ("UPDATE users SET is_active = 0", vec![Change::User(1)]),
            (
                "UPDATE users SET \"added later\" = 'x'",
                vec![Change::User(1)],
            ),
            (
                "UPDATE users SET last_login = 6, username = 'bob'",
                vec![Change::User(1)],
            ),
        ] {
            conn.batch_execute(sql).expect(sql);
            assert_eq!(take_noted(), noted, "{sql}");
        }
    }

    #[test]
    fn notes_are_bounded() {
        let _ = take_noted();
        for id in 0..(MAX_NOTED as i64 + 10) {
            note(Change::Session(id));
        }
        let noted = take_noted();
        assert!(noted.len() <= MAX_NOTED);
        assert!(noted.contains(&Change::Everything));
        assert!(take_noted().is_empty());
    }
}
