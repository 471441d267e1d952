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
//!   (migration `session_cache_notify`) send `NOTIFY allauth_changes` with
//!   `s<id>` or `u<id>`. Each instance has one listening connection on a
//!   thread of its own. Before a cache answers a request,
//!   [`Db::caught_up`] makes it exact: the listener sends a marker of its own
//!   through the same channel and waits for it to come back. PostgreSQL
//!   delivers notifications in commit order, so every change committed
//!   before the request arrived has been applied by then. One marker serves
//!   every request that arrived before it was sent.
//!
//! [`Db::run`]: super::Db::run
//! [`Db::caught_up`]: super::Db::caught_up

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};

/// The channel of the PostgreSQL triggers and of the listeners' markers.
pub const CHANNEL: &str = "allauth_changes";

/// How long a request waits for its marker before it reads the database
/// itself.
const CATCH_UP_TIMEOUT: Duration = Duration::from_millis(250);

/// How often the listener looks at its socket while nothing is asked of it
/// (to keep its buffer short); while a marker is out it looks much more
/// often ([`MARKER_POLL`]).
const IDLE_DRAIN: Duration = Duration::from_millis(50);
const MARKER_POLL: Duration = Duration::from_micros(50);
/// A marker that has not come back in this long means a dead connection.
const MARKER_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before connecting again after the listener lost its connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

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
    fn parse(payload: &str) -> Option<Change> {
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
/// insert may change a user's primary address.
const SQLITE_TRIGGERS: &str = "\
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_session_update
  AFTER UPDATE OF key_hash, user_id, data, expires_at, version ON main.sessions
  BEGIN SELECT allauth_cache_changed('s', OLD.id); END;
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_session_delete
  AFTER DELETE ON main.sessions
  BEGIN SELECT allauth_cache_changed('s', OLD.id); END;
CREATE TEMP TRIGGER IF NOT EXISTS allauth_changes_user_update
  AFTER UPDATE ON main.users
  BEGIN SELECT allauth_cache_changed('u', OLD.id); SELECT allauth_cache_changed('u', NEW.id); END;
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
    conn.batch_execute(SQLITE_TRIGGERS)
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
    listener: OnceLock<Arc<Listener>>,
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

    pub(super) fn start_listener(&self, listener: Arc<Listener>) {
        let _ = self.listener.set(listener);
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

/// Marker bookkeeping between requests and the listener thread.
#[derive(Debug, Default)]
struct Markers {
    /// The highest marker a request waits for.
    wanted: u64,
    /// The highest marker sent.
    sent: u64,
    /// Whether the listener waits for a request to want a marker (only
    /// then does a request wake it: a wake is a system call).
    idle: bool,
}

/// The PostgreSQL listener of one instance.
pub(super) struct Listener {
    url: String,
    /// Tells this instance's markers from other instances'.
    instance: u64,
    markers: Mutex<Markers>,
    wake: Condvar,
    /// The highest marker that came back.
    back: tokio::sync::watch::Sender<u64>,
    /// Whether the listening connection is up (else requests do not wait).
    up: AtomicBool,
}

impl Listener {
    pub(super) fn new(url: String) -> Arc<Listener> {
        Arc::new(Listener {
            url,
            instance: rand::random(),
            markers: Mutex::default(),
            wake: Condvar::new(),
            back: tokio::sync::watch::Sender::new(0),
            up: AtomicBool::new(false),
        })
    }

    /// Runs the listener on a thread of its own while `feed` lives.
    pub(super) fn spawn(
        self: &Arc<Self>,
        feed: Weak<Feed>,
        sink: Arc<dyn ChangeSink>,
    ) -> std::io::Result<()> {
        let listener = self.clone();
        std::thread::Builder::new()
            .name("allauth-changes".into())
            .spawn(move || listener.run(&feed, &*sink))
            .map(|_| ())
    }

    /// Whether every change committed before this call has reached the sink
    /// (false when the listener is down or slow: then read the database).
    async fn caught_up(&self) -> bool {
        if !self.up.load(Ordering::Acquire) {
            return false;
        }
        let (target, idle) = {
            let Ok(mut markers) = self.markers.lock() else {
                return false;
            };
            // A marker already sent may have left before this request came:
            // wait for the next one.
            let target = markers.sent + 1;
            markers.wanted = markers.wanted.max(target);
            (target, markers.idle)
        };
        if idle {
            self.wake.notify_one();
        }
        let mut back = self.back.subscribe();
        let came_back =
            tokio::time::timeout(CATCH_UP_TIMEOUT, back.wait_for(|&n| n >= target)).await;
        matches!(came_back, Ok(Ok(_)))
    }

    fn run(&self, feed: &Weak<Feed>, sink: &dyn ChangeSink) {
        let stopping = || feed.strong_count() == 0;
        while !stopping() {
            match PgConnection::establish(&self.url) {
                Ok(mut conn) => {
                    if let Err(error) = self.listen(&mut conn, feed, sink) {
                        tracing::warn!(%error, "change feed: listening connection lost");
                    }
                }
                Err(error) => tracing::warn!(%error, "change feed: cannot connect"),
            }
            self.up.store(false, Ordering::Release);
            if !stopping() {
                std::thread::sleep(RECONNECT_PAUSE);
            }
        }
    }

    /// Listens on `conn` until it fails or the feed stops.
    fn listen(
        &self,
        conn: &mut PgConnection,
        feed: &Weak<Feed>,
        sink: &dyn ChangeSink,
    ) -> Result<(), String> {
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(conn)
            .map_err(|e| e.to_string())?;
        // Whatever changed while nobody listened is unknown.
        sink.apply(&[Change::Everything]);
        self.up.store(true, Ordering::Release);
        let mut back = 0;
        loop {
            let marker = {
                let mut markers = self.markers.lock().map_err(|e| e.to_string())?;
                markers.idle = true;
                let (mut markers, _) = self
                    .wake
                    .wait_timeout_while(markers, IDLE_DRAIN, |m| m.wanted <= m.sent)
                    .map_err(|e| e.to_string())?;
                markers.idle = false;
                if feed.strong_count() == 0 {
                    return Ok(());
                }
                (markers.wanted > markers.sent).then(|| {
                    markers.sent = markers.wanted;
                    markers.sent
                })
            };
            let Some(marker) = marker else {
                back = self.drain(conn, sink, back)?;
                continue;
            };
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(format!("m{:x}.{marker}", self.instance))
                .execute(conn)
                .map_err(|e| e.to_string())?;
            let sent_at = Instant::now();
            loop {
                back = self.drain(conn, sink, back)?;
                if back >= marker {
                    break;
                }
                if sent_at.elapsed() > MARKER_TIMEOUT {
                    return Err("a marker did not come back".into());
                }
                std::thread::sleep(MARKER_POLL);
            }
        }
    }

    /// Applies the notifications that arrived; returns the highest marker
    /// of this instance seen, published after the changes before it.
    fn drain(
        &self,
        conn: &mut PgConnection,
        sink: &dyn ChangeSink,
        back: u64,
    ) -> Result<u64, String> {
        let mut changes = Vec::new();
        let mut highest = back;
        let own = format!("m{:x}.", self.instance);
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| e.to_string())?;
            let payload = notification.payload.as_str();
            if let Some(marker) = payload.strip_prefix(own.as_str()) {
                highest = highest.max(marker.parse().unwrap_or(0));
            } else if let Some(change) = Change::parse(payload) {
                changes.push(change);
            }
        }
        if !changes.is_empty() {
            sink.apply(&changes);
        }
        if highest > back {
            self.back.send_replace(highest);
        }
        Ok(highest)
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
