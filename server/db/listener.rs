//! The PostgreSQL listener of one instance: it hears the triggers'
//! notifications (`super::changes`) and answers [`Listener::caught_up`]
//! with round trips on its connection.
//!
//! A committing transaction that notified signals every backend listening
//! on its channels before its client hears that it committed, and a
//! listening backend hands its client every notification it was signalled
//! for before it reads the client's next message (PostgreSQL checks for
//! them whenever a read from the client returns). The triggers' transactions
//! commit in queue order (`NOTIFY` takes a cluster-wide lock until commit).
//! So when a statement sent on the listening connection has been answered,
//! every change committed before it was sent has arrived ahead of the
//! answer and has been applied. The statement is an empty query, which
//! PostgreSQL answers without planning or a transaction of its own
//! (`CHECK_STATEMENT`); one round trip serves every request that arrived
//! before it was sent.
//!
//! Two ways to hold the connection, one protocol:
//! * **On the executor** (tokio-postgres), when that client connects as
//!   libpq would: the URL has only options both understand, names its host
//!   and user, and nothing around the process changes what libpq would do
//!   (no `PG…` environment variable, no `~/.pgpass` or `~/.postgresql/`).
//!   The answers come back on the executor that waits for them, with no
//!   thread hand-off.
//! * **On a thread of its own** (libpq through diesel, as the pool), for
//!   every other URL: what libpq reads from the environment and files, and
//!   the options only libpq has (certificate checks: `sslmode=verify-full`,
//!   `sslrootcert`…), apply as they do to the pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;

use super::changes::{Change, ChangeSink, Feed, CHANNEL};

/// How long a request waits for a round trip before it reads the database
/// itself.
const CATCH_UP_TIMEOUT: Duration = Duration::from_millis(250);
/// How often an idle listener looks whether its server has stopped (and,
/// on libpq, reads its socket to keep the buffer short).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// A round trip that has not come back in this long means a dead
/// connection.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before connecting again after the listener lost its connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// What the executor's listener sends for a round trip: a query with no
/// statement (only this comment, which names it in `pg_stat_activity`).
const CHECK_STATEMENT: &str = "/* allauth_changes: caught up */";
/// The same on libpq, which diesel reads as an error when the query is
/// empty: one constant row.
const CHECK_STATEMENT_LIBPQ: &str = "/* allauth_changes: caught up */ SELECT 1";

/// Listens to the triggers' channel.
fn listen_statement() -> String {
    format!("LISTEN {CHANNEL}")
}

/// How the listener holds its connection (see the module's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// tokio-postgres, on the executor.
    Executor,
    /// libpq, on a thread of its own.
    Thread,
}

/// What libpq would read besides the URL: `PG…` variables and the files
/// under the home directory.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Surroundings {
    pub pg_environment: bool,
    pub libpq_files: bool,
}

impl Surroundings {
    pub(super) fn of_process() -> Surroundings {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        Surroundings {
            pg_environment: std::env::vars_os()
                .any(|(name, _)| name.to_string_lossy().starts_with("PG")),
            libpq_files: home.is_some_and(|home| {
                home.join(".pgpass").exists() || home.join(".postgresql").exists()
            }),
        }
    }
}

/// The tokio-postgres configuration of `url`, when that client would
/// connect as libpq does (else `None`: the listener uses libpq).
pub(super) fn executor_config(url: &str, around: Surroundings) -> Option<tokio_postgres::Config> {
    if around.pg_environment || around.libpq_files {
        return None;
    }
    // tokio-postgres refuses the options it does not know, certificate
    // checks included (`sslmode=verify-ca`, `sslrootcert`…).
    let config: tokio_postgres::Config = url.parse().ok()?;
    // Without them libpq takes its own defaults (the local socket, the
    // user running the process); tokio-postgres has none.
    if config.get_hosts().is_empty() || config.get_user().is_none() {
        return None;
    }
    Some(config)
}

/// TLS as libpq does it with `sslmode` `prefer` or `require` and no root
/// certificate: encrypted, the server's certificate not checked.
fn unchecked_tls() -> Result<postgres_openssl::MakeTlsConnector, String> {
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
        .map_err(|e| e.to_string())?;
    builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
    Ok(postgres_openssl::MakeTlsConnector::new(builder.build()))
}

/// Round-trip bookkeeping between requests and the listener; round trips
/// are numbered from 1.
#[derive(Debug, Default)]
struct RoundTrips {
    /// The highest round trip a request waits for.
    wanted: u64,
    /// The highest round trip started.
    started: u64,
    /// When the round trip under way started.
    under_way_since: Option<Instant>,
    /// Whether the listener waits for a request to want a round trip (only
    /// then does a request wake it).
    idle: bool,
}

impl RoundTrips {
    /// Starts the round trip every waiting request wants; its number.
    fn start(&mut self) -> u64 {
        self.started = self.wanted;
        self.under_way_since = Some(Instant::now());
        self.started
    }
}

/// The PostgreSQL listener of one instance.
pub(super) struct Listener {
    url: String,
    /// Set when the listener runs on the executor.
    executor: Option<tokio_postgres::Config>,
    round_trips: Mutex<RoundTrips>,
    wake: tokio::sync::Notify,
    /// The highest round trip answered, its notifications applied.
    done: tokio::sync::watch::Sender<u64>,
    /// Whether the listening connection is up (else requests do not wait).
    up: AtomicBool,
}

impl Listener {
    /// A listener for `url`: on the executor when [`executor_config`]
    /// allows it and there is one, else on a thread ([`Listener::spawn`]
    /// starts it).
    pub(super) fn new(url: String) -> Arc<Listener> {
        let executor = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|_| executor_config(&url, Surroundings::of_process()));
        Arc::new(Listener {
            url,
            executor,
            round_trips: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            done: tokio::sync::watch::Sender::new(0),
            up: AtomicBool::new(false),
        })
    }

    /// Listens while `feed` lives.
    pub(super) fn spawn(
        self: &Arc<Self>,
        feed: Weak<Feed>,
        sink: Arc<dyn ChangeSink>,
    ) -> std::io::Result<()> {
        let runtime = tokio::runtime::Handle::try_current().ok();
        match (self.executor.clone(), runtime) {
            (Some(config), Some(runtime)) => {
                runtime.spawn(self.clone().run_on_executor(config, feed, sink));
                Ok(())
            }
            _ => {
                let listener = self.clone();
                std::thread::Builder::new()
                    .name("allauth-changes".into())
                    .spawn(move || listener.run_on_thread(&feed, &*sink))
                    .map(|_| ())
            }
        }
    }

    pub(super) fn kind(&self) -> ListenerKind {
        match self.executor {
            Some(_) => ListenerKind::Executor,
            None => ListenerKind::Thread,
        }
    }

    /// Whether every change committed before this call has reached the sink
    /// (false when the listener is down or slow: then read the database).
    pub(super) async fn caught_up(&self) -> bool {
        if !self.up.load(Ordering::Acquire) {
            return false;
        }
        let (target, idle) = {
            let Ok(mut round_trips) = self.round_trips.lock() else {
                return false;
            };
            // A round trip already started may have left before this
            // request came: wait for the next one.
            let target = round_trips.started + 1;
            round_trips.wanted = round_trips.wanted.max(target);
            (target, round_trips.idle)
        };
        if idle {
            self.wake.notify_one();
        }
        let mut done = self.done.subscribe();
        let came_back =
            tokio::time::timeout(CATCH_UP_TIMEOUT, done.wait_for(|&n| n >= target)).await;
        if came_back.is_err() {
            self.stalled();
        }
        matches!(came_back, Ok(Ok(_)))
    }

    /// A request gave up waiting: if the round trip under way is older
    /// than [`ROUND_TRIP_TIMEOUT`], requests stop waiting until one comes
    /// back or the listener connects again. (libpq on the thread waits for
    /// an answer with no limit of its own: a connection that died without
    /// a word is found only by TCP's own timeouts.)
    fn stalled(&self) {
        let Ok(round_trips) = self.round_trips.lock() else {
            return;
        };
        if round_trips
            .under_way_since
            .is_some_and(|since| since.elapsed() > ROUND_TRIP_TIMEOUT)
        {
            self.up.store(false, Ordering::Release);
        }
    }

    /// The next round trip to make, once a request wants one; `None` after
    /// [`IDLE_WAIT`] without.
    async fn next_round_trip(&self) -> Result<Option<u64>, String> {
        {
            let mut round_trips = self.round_trips.lock().map_err(|e| e.to_string())?;
            if round_trips.wanted > round_trips.started {
                round_trips.idle = false;
                return Ok(Some(round_trips.start()));
            }
            round_trips.idle = true;
        }
        // A request that wanted a round trip since then has stored a
        // wake-up: this wait ends at once.
        let _ = tokio::time::timeout(IDLE_WAIT, self.wake.notified()).await;
        let mut round_trips = self.round_trips.lock().map_err(|e| e.to_string())?;
        round_trips.idle = false;
        Ok((round_trips.wanted > round_trips.started).then(|| round_trips.start()))
    }

    /// Takes one notification of the triggers' channel into `changes`.
    fn take_notification(channel: &str, payload: &str, changes: &mut Vec<Change>) {
        if channel == CHANNEL {
            if let Some(change) = Change::parse(payload) {
                changes.push(change);
            }
        }
    }

    /// Applies `changes` (and empties it).
    fn apply(sink: &dyn ChangeSink, changes: &mut Vec<Change>) {
        if !changes.is_empty() {
            sink.apply(changes);
            changes.clear();
        }
    }

    /// Round trip `number` has been answered and the notifications that
    /// came before its answer applied: the requests waiting for it go on.
    fn round_trip_done(&self, number: u64) {
        if let Ok(mut round_trips) = self.round_trips.lock() {
            round_trips.under_way_since = None;
        }
        // Requests may have stopped waiting for a stalled round trip; the
        // connection has lost nothing, so they can wait again.
        self.up.store(true, Ordering::Release);
        self.done.send_if_modified(|done| {
            let later = number > *done;
            *done = (*done).max(number);
            later
        });
    }

    /// A connection that just started listening: whatever changed while
    /// nobody listened is unknown.
    fn listening(&self, sink: &dyn ChangeSink) {
        sink.apply(&[Change::Everything]);
        self.up.store(true, Ordering::Release);
    }

    async fn run_on_executor(
        self: Arc<Self>,
        config: tokio_postgres::Config,
        feed: Weak<Feed>,
        sink: Arc<dyn ChangeSink>,
    ) {
        let tls = match unchecked_tls() {
            Ok(tls) => tls,
            Err(error) => {
                tracing::warn!(%error, "change feed: no TLS; every session check reads the database");
                return;
            }
        };
        while feed.strong_count() > 0 {
            if let Err(error) = self
                .listen_on_executor(&config, tls.clone(), &feed, &*sink)
                .await
            {
                tracing::warn!(%error, "change feed: listening connection lost");
            }
            self.up.store(false, Ordering::Release);
            if feed.strong_count() > 0 {
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }

    /// Listens on a new connection until it fails or the feed stops.
    async fn listen_on_executor(
        &self,
        config: &tokio_postgres::Config,
        tls: postgres_openssl::MakeTlsConnector,
        feed: &Weak<Feed>,
        sink: &dyn ChangeSink,
    ) -> Result<(), String> {
        let (client, mut connection) = config.connect(tls).await.map_err(|e| e.to_string())?;
        // Reads the connection in order: the notifications, which it
        // applies, and the answers to `send`'s statements, which
        // tokio-postgres hands to `send`. Both run in this one task, and
        // this reader applies what it took before it yields; so `send`
        // sees an answer only once the notifications ahead of it are
        // applied.
        let mut changes = Vec::new();
        let receive = std::future::poll_fn(|cx| loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(tokio_postgres::AsyncMessage::Notification(n)))) => {
                    Self::take_notification(n.channel(), n.payload(), &mut changes);
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error.to_string())),
                Poll::Ready(None) => return Poll::Ready(Err("connection closed".to_owned())),
                Poll::Pending => {
                    Self::apply(sink, &mut changes);
                    return Poll::Pending;
                }
            }
        });
        let send = async {
            client
                .batch_execute(&listen_statement())
                .await
                .map_err(|e| e.to_string())?;
            self.listening(sink);
            while feed.strong_count() > 0 {
                let Some(number) = self.next_round_trip().await? else {
                    continue;
                };
                let answered = client.batch_execute(CHECK_STATEMENT);
                match tokio::time::timeout(ROUND_TRIP_TIMEOUT, answered).await {
                    Ok(Ok(())) => self.round_trip_done(number),
                    Ok(Err(error)) => return Err(error.to_string()),
                    Err(_) => return Err("a round trip did not come back".to_owned()),
                }
            }
            Ok(())
        };
        tokio::select! {
            received = receive => received,
            sent = send => sent,
        }
    }

    fn run_on_thread(&self, feed: &Weak<Feed>, sink: &dyn ChangeSink) {
        // `next_round_trip` waits on the executor's timer from this thread.
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::warn!(%error, "change feed: no timer; every session check reads the database");
                return;
            }
        };
        while feed.strong_count() > 0 {
            match PgConnection::establish(&self.url) {
                Ok(mut conn) => {
                    if let Err(error) = self.listen_on_thread(&runtime, &mut conn, feed, sink) {
                        tracing::warn!(%error, "change feed: listening connection lost");
                    }
                }
                Err(error) => tracing::warn!(%error, "change feed: cannot connect"),
            }
            self.up.store(false, Ordering::Release);
            if feed.strong_count() > 0 {
                std::thread::sleep(RECONNECT_PAUSE);
            }
        }
    }

    /// Listens on `conn` until it fails or the feed stops.
    fn listen_on_thread(
        &self,
        runtime: &tokio::runtime::Runtime,
        conn: &mut PgConnection,
        feed: &Weak<Feed>,
        sink: &dyn ChangeSink,
    ) -> Result<(), String> {
        // libpq waits for an answer with no time limit of its own (see
        // `stalled`).
        conn.batch_execute(&listen_statement())
            .map_err(|e| e.to_string())?;
        self.listening(sink);
        while feed.strong_count() > 0 {
            let round_trip = runtime.block_on(self.next_round_trip())?;
            if let Some(number) = round_trip {
                // libpq keeps the notifications that arrive before the
                // answer; `drain` applies them.
                conn.batch_execute(CHECK_STATEMENT_LIBPQ)
                    .map_err(|e| e.to_string())?;
                Self::drain(conn, sink)?;
                self.round_trip_done(number);
            } else {
                Self::drain(conn, sink)?;
            }
        }
        Ok(())
    }

    /// Applies the notifications libpq has read.
    fn drain(conn: &mut PgConnection, sink: &dyn ChangeSink) -> Result<(), String> {
        let mut changes = Vec::new();
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| e.to_string())?;
            Self::take_notification(&notification.channel, &notification.payload, &mut changes);
        }
        Self::apply(sink, &mut changes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALONE: Surroundings = Surroundings {
        pg_environment: false,
        libpq_files: false,
    };

    #[test]
    fn urls_tokio_postgres_takes_as_libpq_does() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/app",
            "postgresql://app:secret@db.example.com/app?sslmode=require",
            "postgres://app@db1,db2/app?target_session_attrs=read-write&connect_timeout=5",
            "host=/var/run/postgresql user=app dbname=app",
        ] {
            assert!(executor_config(url, ALONE).is_some(), "{url}");
        }
    }

    #[test]
    fn everything_else_stays_with_libpq() {
        for url in [
            // Certificate checks, client certificates: only libpq has them.
            "postgres://app@db.example.com/app?sslmode=verify-full",
            "postgres://app@db.example.com/app?sslmode=require&sslrootcert=/etc/ca.pem",
            "postgres://app@db.example.com/app?sslcert=/c.pem&sslkey=/k.pem",
            // Options only libpq knows.
            "postgres://app@db.example.com/app?fallback_application_name=x",
            "postgres://app@db.example.com/app?service=main",
            // libpq's defaults: the local socket, the process's user.
            "postgres:///app",
            "postgres://db.example.com/app",
            "not a url",
        ] {
            assert!(executor_config(url, ALONE).is_none(), "{url}");
        }
        let url = "postgres://postgres@127.0.0.1:5432/app";
        for around in [
            Surroundings {
                pg_environment: true,
                libpq_files: false,
            },
            Surroundings {
                pg_environment: false,
                libpq_files: true,
            },
        ] {
            assert!(executor_config(url, around).is_none(), "{around:?}");
        }
    }
}
