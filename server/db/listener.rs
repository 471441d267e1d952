//! The PostgreSQL listener of one instance: it hears the triggers'
//! notifications (`super::changes`) and answers [`Listener::caught_up`]
//! with markers of its own.
//!
//! PostgreSQL keeps one queue of notifications, in commit order, and hands
//! each listener those of the channels it listens on (the triggers' and this
//! instance's own marker channel) in that order; a backend that has just
//! committed a `NOTIFY` sends everything queued up to it before it says it
//! is ready again. So once this instance's marker is back, every change
//! committed before the marker was sent has been applied. One marker serves
//! every request that arrived before it was sent.
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
use diesel::{Connection, RunQueryDsl};

use super::changes::{Change, ChangeSink, Feed, CHANNEL};

/// How long a request waits for its marker before it reads the database
/// itself.
const CATCH_UP_TIMEOUT: Duration = Duration::from_millis(250);
/// How often an idle listener looks whether its server has stopped (and,
/// on libpq, reads its socket to keep the buffer short); while a marker is
/// out, the libpq listener looks much more often ([`MARKER_POLL`]).
const IDLE_WAIT: Duration = Duration::from_millis(50);
const MARKER_POLL: Duration = Duration::from_micros(50);
/// A marker that has not come back in this long means a dead connection.
const MARKER_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before connecting again after the listener lost its connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

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

/// Marker bookkeeping between requests and the listener.
#[derive(Debug, Default)]
struct Markers {
    /// The highest marker a request waits for.
    wanted: u64,
    /// The highest marker sent.
    sent: u64,
    /// Whether the listener waits for a request to want a marker (only
    /// then does a request wake it).
    idle: bool,
}

/// The PostgreSQL listener of one instance.
pub(super) struct Listener {
    url: String,
    /// Set when the listener runs on the executor.
    executor: Option<tokio_postgres::Config>,
    /// The channel of this instance's markers: other instances' listeners
    /// do not hear them (PostgreSQL hands a listener only the channels it
    /// listens on, in the one order of all notifications).
    marker_channel: String,
    markers: Mutex<Markers>,
    wake: tokio::sync::Notify,
    /// The highest marker that came back.
    back: tokio::sync::watch::Sender<u64>,
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
            marker_channel: format!("{CHANNEL}_m{:016x}", rand::random::<u64>()),
            markers: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            back: tokio::sync::watch::Sender::new(0),
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

    /// The next marker to send, once a request wants one; `None` after
    /// [`IDLE_WAIT`] without.
    async fn next_marker(&self) -> Result<Option<u64>, String> {
        {
            let mut markers = self.markers.lock().map_err(|e| e.to_string())?;
            if markers.wanted > markers.sent {
                markers.idle = false;
                markers.sent = markers.wanted;
                return Ok(Some(markers.sent));
            }
            markers.idle = true;
        }
        // A request that wanted a marker since then has stored a wake-up:
        // this wait ends at once.
        let _ = tokio::time::timeout(IDLE_WAIT, self.wake.notified()).await;
        let mut markers = self.markers.lock().map_err(|e| e.to_string())?;
        markers.idle = false;
        Ok((markers.wanted > markers.sent).then(|| {
            markers.sent = markers.wanted;
            markers.sent
        }))
    }

    /// Takes one notification: a marker raises `highest`, a change joins
    /// `changes`.
    fn take_notification(
        &self,
        channel: &str,
        payload: &str,
        changes: &mut Vec<Change>,
        highest: &mut u64,
    ) {
        if channel == self.marker_channel {
            *highest = (*highest).max(payload.parse().unwrap_or(0));
        } else if channel == CHANNEL {
            if let Some(change) = Change::parse(payload) {
                changes.push(change);
            }
        }
    }

    /// Listens to the triggers' channel and to this instance's markers.
    fn listen_statement(&self) -> String {
        format!("LISTEN {CHANNEL}; LISTEN {}", self.marker_channel)
    }

    /// Applies `changes`, then publishes `highest` if it is above
    /// `published`: a request woken by a marker finds the changes before
    /// it applied.
    fn publish(
        &self,
        sink: &dyn ChangeSink,
        changes: &mut Vec<Change>,
        highest: u64,
        published: &mut u64,
    ) {
        if !changes.is_empty() {
            sink.apply(changes);
            changes.clear();
        }
        if highest > *published {
            *published = highest;
            self.back.send_replace(highest);
        }
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
        // Reads the connection: the notifications in order, and the answers
        // to `send`'s statements, which tokio-postgres hands over.
        let mut changes = Vec::new();
        let mut published = *self.back.borrow();
        let mut highest = published;
        let receive = std::future::poll_fn(|cx| loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(tokio_postgres::AsyncMessage::Notification(n)))) => {
                    self.take_notification(n.channel(), n.payload(), &mut changes, &mut highest);
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error.to_string())),
                Poll::Ready(None) => return Poll::Ready(Err("connection closed".to_owned())),
                Poll::Pending => {
                    self.publish(sink, &mut changes, highest, &mut published);
                    return Poll::Pending;
                }
            }
        });
        let send = async {
            client
                .batch_execute(&self.listen_statement())
                .await
                .map_err(|e| e.to_string())?;
            let notify = client
                .prepare("SELECT pg_notify($1, $2)")
                .await
                .map_err(|e| e.to_string())?;
            self.listening(sink);
            while feed.strong_count() > 0 {
                let Some(marker) = self.next_marker().await? else {
                    continue;
                };
                let payload = marker.to_string();
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                    [&self.marker_channel, &payload];
                let sent = client.execute(&notify, &params);
                match tokio::time::timeout(MARKER_TIMEOUT, sent).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(error.to_string()),
                    Err(_) => return Err("a marker did not come back".to_owned()),
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
        // `next_marker` waits on the executor's timer from this thread.
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
        conn.batch_execute(&self.listen_statement())
            .map_err(|e| e.to_string())?;
        self.listening(sink);
        let mut back = *self.back.borrow();
        while feed.strong_count() > 0 {
            let Some(marker) = runtime.block_on(self.next_marker())? else {
                back = self.drain(conn, sink, back)?;
                continue;
            };
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(&self.marker_channel)
                .bind::<diesel::sql_types::Text, _>(marker.to_string())
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
        Ok(())
    }

    /// Applies the notifications libpq has read; returns the highest
    /// marker of this instance seen.
    fn drain(
        &self,
        conn: &mut PgConnection,
        sink: &dyn ChangeSink,
        back: u64,
    ) -> Result<u64, String> {
        let mut changes = Vec::new();
        let mut highest = back;
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| e.to_string())?;
            self.take_notification(
                &notification.channel,
                &notification.payload,
                &mut changes,
                &mut highest,
            );
        }
        let mut published = back;
        self.publish(sink, &mut changes, highest, &mut published);
        Ok(highest)
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
