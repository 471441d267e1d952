//! Mail delivery end to end: outbox rows through the background sender to a real SMTP server (aiosmtpd), outages and recovery, the file and console backends, and the rendering of every message.
//!
//! The SMTP server is `tests/external/smtp_sink.py`, run with the Python of
//! the tools virtualenv (`$ALLAUTH_TOOLS/venv`, `$TOOLS/venv` or
//! `$HOME/.cache/allauth-server-tools/venv`, where `.ci/install` puts
//! aiosmtpd). Without it the SMTP tests are skipped with a loud message,
//! except under `CI=true`, where they fail.

// Test code: the helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allauth_server::config::Config;
use allauth_server::db::mail_outbox::{self, Mail};
use allauth_server::db::schema::mail_outbox as outbox_table;
use allauth_server::db::testing::TestDatabase;
use allauth_server::db::{now_millis, Db, DbError};
use allauth_server::email::sender::GIVEN_UP;
use allauth_server::email::{
    deliver_due, enqueue, spawn_sender, ChangeOrigin, FrontendLinks, Mailer, Message, Transport,
};
use diesel::prelude::*;
use mailparse::MailHeaderMap;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);

/// Where the notices of these tests say a change came from.
fn origin() -> ChangeOrigin {
    ChangeOrigin {
        at_ms: now_millis(),
        ip: "192.0.2.1".into(),
        user_agent: "email-delivery-test".into(),
    }
}

// ---------------------------------------------------------------------------
// The SMTP sink
// ---------------------------------------------------------------------------

/// The Python that has aiosmtpd, or `None` (outside CI) after saying loudly
/// that the SMTP tests are skipped.
fn sink_python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    // `.ci/test` exports TOOLS; ALLAUTH_TOOLS is the user-facing override.
    for var in ["ALLAUTH_TOOLS", "TOOLS"] {
        if let Some(tools) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            candidates.push(PathBuf::from(tools).join("venv/bin/python"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/allauth-server-tools/venv/bin/python"));
    }
    for python in &candidates {
        let ok = std::process::Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "aiosmtpd is not installed for any of {tried:?}; .ci/install must pip-install it into the tools venv"
        );
    }
    // Written to the process's stderr, not through `eprintln!`, which the
    // test harness captures and shows only for failing tests.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "\n!!!!!!!! SKIPPED: no Python with aiosmtpd (tried {tried:?}).\n\
             !!!!!!!! Run .ci/install (or `$HOME/.cache/allauth-server-tools/venv/bin/pip install aiosmtpd`)\n\
             !!!!!!!! to run the SMTP delivery tests. Under CI=true this is a failure.\n"
        )
        .as_bytes(),
    );
    None
}

fn sink_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/external/smtp_sink.py")
}

/// A running `smtp_sink.py`; killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    async fn start(python: &Path, dir: &Path, port: Option<u16>) -> Sink {
        let mut command = Command::new(python);
        command
            .arg(sink_script())
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(port) = port {
            command.arg("--port").arg(port.to_string());
        }
        let mut child = command.spawn().expect("start smtp_sink.py");
        let stdout = child.stdout.take().expect("sink stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("smtp_sink.py ready in time")
            .expect("read sink stdout")
            .expect("smtp_sink.py printed its port");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected sink output {line:?}"));
        Sink {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// The received messages, oldest first.
    fn received(&self) -> Vec<Vec<u8>> {
        received_files(&self.dir)
    }

    async fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        wait_until(&format!("{n} messages at the sink"), || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

/// The `*.eml` files of `dir`, by numeric name when there is one, else by name.
fn received_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort_by_key(|p| {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (stem.parse::<u64>().unwrap_or(u64::MAX), stem)
    });
    names
        .iter()
        .map(|p| std::fs::read(p).expect("read .eml"))
        .collect()
}

/// A port on which nothing listens (just now).
fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

async fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_db<T: Send + 'static>(
    db: &Db,
    what: &str,
    check: impl Fn(&[Mail]) -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        let rows = all_rows(db).await;
        if let Some(value) = check(&rows) {
            return value;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {what}; rows: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Database, configuration, sender
// ---------------------------------------------------------------------------

async fn all_rows(db: &Db) -> Vec<Mail> {
    db.run(|conn| {
        Ok(outbox_table::table
            .order(outbox_table::id.asc())
            .select(Mail::as_select())
            .load(conn)?)
    })
    .await
    .expect("read mail_outbox")
}

fn config(extra_email: &str) -> Arc<Config> {
    let toml = format!(
        "[account]\nemail_subject_prefix = \"[Test] \"\n\
         [headless.frontend_urls]\naccount_confirm_email = \"https://app.example/verify/{{key}}\"\n\
         [email]\nfrom = \"Accounts <accounts@example.com>\"\nsmtp_timeout = 2\n\
         retry_backoff_secs = 0\nretry_max_attempts = 1000\n{extra_email}"
    );
    Arc::new(Config::from_sources(&toml, &[]).expect("test configuration"))
}

fn smtp_config(port: u16) -> Arc<Config> {
    config(&format!(
        "backend = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n"
    ))
}

/// Queues `mails` in one transaction, as a flow would.
async fn queue(db: &Db, config: &Arc<Config>, mails: Vec<(String, Message)>) {
    let config = Arc::clone(config);
    db.transaction(move |conn| {
        let now = now_millis();
        for (to, message) in &mails {
            enqueue(conn, &config, to, message, now)?;
        }
        Ok(())
    })
    .await
    .expect("enqueue");
}

fn three_mails(config: &Config) -> Vec<(String, Message)> {
    let links = FrontendLinks::new(&config.headless.frontend_urls);
    vec![
        (
            "alice@example.com".into(),
            Message::EmailVerificationLink {
                url: links.email_verification("MQ:1abc:xyz"),
                email: "alice@example.com".into(),
            },
        ),
        (
            "bob@example.com".into(),
            Message::LoginCode {
                code: "BCDF-GHJK".into(),
                email: "bob@example.com".into(),
            },
        ),
        (
            "carol@example.com".into(),
            Message::PasswordChanged { origin: origin() },
        ),
    ]
}

struct Running {
    handle: JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    mailer: Mailer,
}

fn start_sender(db: &Db, config: &Arc<Config>) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mailer = Mailer::new();
    let handle = spawn_sender(db.clone(), Arc::clone(config), mailer.clone(), async move {
        let _ = stopped.await;
    })
    .expect("sender starts");
    Running {
        handle,
        stop,
        mailer,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("sender stops in time")
            .expect("sender task ends cleanly");
    }
}

/// Checks one received message: multipart/alternative with a text and an
/// HTML part, prefixed subject; returns (To, Message-ID, text body).
fn check_message(raw: &[u8]) -> (String, String, String) {
    let parsed = mailparse::parse_mail(raw).expect("message parses");
    let subject = parsed.headers.get_first_value("Subject").expect("Subject");
    assert!(subject.starts_with("[Test] "), "subject {subject:?}");
    let from = parsed.headers.get_first_value("From").expect("From");
    assert!(from.contains("accounts@example.com"), "from {from:?}");
    assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
    let types: Vec<&str> = parsed
        .subparts
        .iter()
        .map(|p| p.ctype.mimetype.as_str())
        .collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let text = parsed.subparts[0].get_body().expect("text body");
    let html = parsed.subparts[1].get_body().expect("html body");
    assert!(
        html.contains("<html>") && html.contains("</html>"),
        "{html}"
    );
    assert!(!text.contains('<'), "{text}");
    (
        parsed.headers.get_first_value("To").expect("To"),
        parsed
            .headers
            .get_first_value("Message-ID")
            .expect("Message-ID"),
        text,
    )
}

fn all_sent(rows: &[Mail], n: usize) -> Option<()> {
    (rows.len() == n && rows.iter().all(|r| r.sent_at.is_some())).then_some(())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_queued_mail_with_text_and_html() {
    let Some(python) = sink_python() else { return };
    for database in TestDatabase::all().expect("test databases") {
        let db = database.migrated(4).await.expect("migrated database");
        let dir = tempfile::tempdir().expect("temporary directory");
        let sink = Sink::start(&python, dir.path(), None).await;
        let config = smtp_config(sink.port);

        queue(&db, &config, three_mails(&config)).await;
        // A mail queued by a change that is rolled back never exists.
        let rolled_back = {
            let config = Arc::clone(&config);
            db.transaction(move |conn| {
                enqueue(
                    conn,
                    &config,
                    "dave@example.com",
                    &Message::PasswordSet { origin: origin() },
                    now_millis(),
                )?;
                Err::<(), _>(DbError::Config("the change failed".into()))
            })
            .await
        };
        assert!(rolled_back.is_err());

        let sender = start_sender(&db, &config);
        sender.mailer.wake();
        let received = sink.wait_for(3).await;
        wait_until_db(&db, "3 rows sent", |rows| all_sent(rows, 3)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sink.received().len(), 3, "nothing more arrives");

        let mut recipients = BTreeSet::new();
        let mut texts = Vec::new();
        for raw in &received {
            let (to, _, text) = check_message(raw);
            recipients.insert(to);
            texts.push(text);
        }
        assert_eq!(
            recipients,
            BTreeSet::from([
                "alice@example.com".to_string(),
                "bob@example.com".to_string(),
                "carol@example.com".to_string()
            ])
        );
        assert!(texts
            .iter()
            .any(|t| t.contains("https://app.example/verify/MQ%3A1abc%3Axyz")));
        assert!(texts.iter().any(|t| t.contains("BCDF-GHJK")));
        let envelopes =
            std::fs::read_to_string(dir.path().join("envelopes.jsonl")).expect("envelopes");
        assert!(envelopes.contains("accounts@example.com"), "{envelopes}");

        for row in all_rows(&db).await {
            assert_eq!(row.attempts, 1, "{row:?}");
            assert_eq!(row.last_error, None);
        }
        sender.stop().await;
        sink.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_outage_keeps_mail_until_the_server_is_back() {
    let Some(python) = sink_python() else { return };
    for database in TestDatabase::all().expect("test databases") {
        let db = database.migrated(4).await.expect("migrated database");
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = unused_port();
        let config = smtp_config(port);
        let sender = start_sender(&db, &config);

        // Nothing listens: the mails stay queued, retried, with the error kept.
        queue(&db, &config, three_mails(&config)[..2].to_vec()).await;
        sender.mailer.wake();
        wait_until_db(&db, "two failed attempts per mail", |rows| {
            (rows.len() == 2
                && rows
                    .iter()
                    .all(|r| r.sent_at.is_none() && r.attempts >= 2 && r.last_error.is_some()))
            .then_some(())
        })
        .await;
        let rows = all_rows(&db).await;
        assert!(rows.iter().all(|r| r.next_attempt_at != GIVEN_UP));
        let error = rows[0].last_error.clone().unwrap_or_default();
        assert!(error.contains("SMTP"), "{error}");

        // The server comes up on that port: everything is delivered, once.
        let sink = Sink::start(&python, dir.path(), Some(port)).await;
        sink.wait_for(2).await;
        wait_until_db(&db, "2 rows sent", |rows| all_sent(rows, 2)).await;
        for row in all_rows(&db).await {
            assert!(row.attempts >= 3, "{row:?}");
            assert_eq!(row.last_error, None, "a success clears the error");
        }

        // It goes away again (the sender's pooled connection dies with it)…
        sink.stop().await;
        queue(&db, &config, three_mails(&config)[2..].to_vec()).await;
        sender.mailer.wake();
        wait_until_db(&db, "the third mail failing", |rows| {
            let third = rows.get(2)?;
            (third.sent_at.is_none() && third.attempts >= 1 && third.last_error.is_some())
                .then_some(())
        })
        .await;

        // …and comes back: the third mail arrives; nothing was sent twice.
        let sink = Sink::start(&python, dir.path(), Some(port)).await;
        wait_until_db(&db, "3 rows sent", |rows| all_sent(rows, 3)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let received = received_files(dir.path());
        assert_eq!(received.len(), 3, "each mail arrived exactly once");
        let ids: BTreeSet<String> = received.iter().map(|raw| check_message(raw).1).collect();
        assert_eq!(ids.len(), 3);
        sender.stop().await;
        sink.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_never_send_a_mail_twice() {
    let Some(python) = sink_python() else { return };
    let database = TestDatabase::sqlite().expect("test database");
    let db_a = database.migrated(4).await.expect("migrated database");
    let db_b = database.connect(4).expect("second pool");
    let dir = tempfile::tempdir().expect("temporary directory");
    let sink = Sink::start(&python, dir.path(), None).await;
    let config = smtp_config(sink.port);

    let mails: Vec<(String, Message)> = (0..20)
        .map(|i| {
            (
                format!("user{i}@example.com"),
                Message::PasswordReset { origin: origin() },
            )
        })
        .collect();
    queue(&db_a, &config, mails).await;
    let a = start_sender(&db_a, &config);
    let b = start_sender(&db_b, &config);
    a.mailer.wake();
    b.mailer.wake();
    let received = sink.wait_for(20).await;
    wait_until_db(&db_a, "20 rows sent", |rows| all_sent(rows, 20)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let received_later = sink.received();
    assert_eq!(received_later.len(), 20, "no mail sent twice");
    let ids: BTreeSet<String> = received.iter().map(|raw| check_message(raw).1).collect();
    assert_eq!(ids.len(), 20);
    for row in all_rows(&db_a).await {
        assert_eq!(row.attempts, 1, "{row:?}");
    }
    a.stop().await;
    b.stop().await;
    sink.stop().await;
}

#[tokio::test]
async fn file_backend_writes_one_eml_per_mail() {
    let database = TestDatabase::sqlite().expect("test database");
    let db = database.migrated(2).await.expect("migrated database");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mail_dir = dir.path().join("not/yet/there");
    let config = config(&format!(
        "backend = \"file\"\nfile_path = \"{}\"\n",
        mail_dir.display()
    ));
    queue(&db, &config, three_mails(&config)).await;
    let transport = Transport::from_config(&config.email).expect("transport");
    let pass = deliver_due(&db, &config.email, &transport)
        .await
        .expect("deliver");
    assert_eq!((pass.sent, pass.failed, pass.given_up), (3, 0, 0));
    let files = received_files(&mail_dir);
    assert_eq!(files.len(), 3);
    let recipients: BTreeSet<String> = files.iter().map(|raw| check_message(raw).0).collect();
    assert_eq!(recipients.len(), 3);
    assert!(all_rows(&db).await.iter().all(|r| r.sent_at.is_some()));
    // Nothing is due any more.
    let pass = deliver_due(&db, &config.email, &transport)
        .await
        .expect("deliver");
    assert_eq!(pass.sent, 0);
    assert_eq!(
        std::fs::read_dir(&mail_dir).expect("mail dir").count(),
        3,
        "no temporary files left"
    );
}

#[tokio::test]
async fn console_backend_marks_mail_sent() {
    let database = TestDatabase::sqlite().expect("test database");
    let db = database.migrated(2).await.expect("migrated database");
    let config = config("backend = \"console\"\n");
    queue(&db, &config, three_mails(&config)[2..].to_vec()).await;
    let transport = Transport::from_config(&config.email).expect("transport");
    let pass = deliver_due(&db, &config.email, &transport)
        .await
        .expect("deliver");
    assert_eq!(pass.sent, 1);
}

#[tokio::test]
async fn mail_is_given_up_after_the_last_attempt_or_when_unsendable() {
    let database = TestDatabase::sqlite().expect("test database");
    let db = database.migrated(2).await.expect("migrated database");
    let config = config(&format!(
        "backend = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n",
        unused_port()
    ));
    let mut config = (*config).clone();
    config.email.retry_max_attempts = 2;
    let config = Arc::new(config);
    queue(
        &db,
        &config,
        vec![
            (
                "erin@example.com".into(),
                Message::PasswordSet { origin: origin() },
            ),
            (
                "not an address".into(),
                Message::PasswordSet { origin: origin() },
            ),
        ],
    )
    .await;
    let transport = Transport::from_config(&config.email).expect("transport");

    let first = deliver_due(&db, &config.email, &transport)
        .await
        .expect("deliver");
    assert_eq!((first.sent, first.failed, first.given_up), (0, 1, 1));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = deliver_due(&db, &config.email, &transport)
        .await
        .expect("deliver");
    assert_eq!((second.sent, second.failed, second.given_up), (0, 0, 1));

    let rows = all_rows(&db).await;
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(rows[1].attempts, 1, "an invalid recipient is not retried");
    for row in &rows {
        assert_eq!(row.next_attempt_at, GIVEN_UP);
        assert_eq!(row.sent_at, None);
        assert!(row.last_error.is_some());
    }
    assert!(rows[1]
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("recipient"));
    let due = db
        .run(|conn| mail_outbox::due(conn, i64::MAX - 1, 10))
        .await
        .expect("due");
    assert!(due.is_empty(), "given-up mail is never due");
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

#[test]
fn every_message_renders_text_and_escaped_html() {
    let mut config = Config::from_sources("", &[]).expect("defaults");
    config.account.email_subject_prefix = Some("[Site] ".into());
    config.headless.frontend_urls.account_confirm_email =
        Some("https://app.example/account/verify/{key}".into());
    config
        .headless
        .frontend_urls
        .account_reset_password_from_key =
        Some("https://app.example/account/password/reset/key/{key}".into());
    config.headless.frontend_urls.account_signup =
        Some("https://app.example/signup?next=<x>".into());
    let links = FrontendLinks::new(&config.headless.frontend_urls);

    let key = "Mg:1tq<b> &c";
    let encoded_key = "Mg%3A1tq%3Cb%3E%20%26c";
    let evil = "<script>alert(1)</script>@example.com";
    let verify = links.email_verification(key);
    let reset = links.password_reset_from_key(key);
    assert!(verify.ends_with(encoded_key), "{verify}");
    assert!(reset.ends_with(encoded_key), "{reset}");

    // (message, values that must appear in the text)
    let cases: Vec<(Message, Vec<&str>)> = vec![
        (
            Message::EmailVerificationLink {
                url: verify.clone(),
                email: evil.into(),
            },
            vec![verify.as_str(), evil],
        ),
        (
            Message::EmailVerificationCode {
                code: "<ABCD-EFGH>".into(),
                email: evil.into(),
            },
            vec!["<ABCD-EFGH>", evil],
        ),
        (
            Message::PasswordResetLink {
                url: reset.clone(),
                email: evil.into(),
            },
            vec![reset.as_str(), evil],
        ),
        (
            Message::PasswordResetCode {
                code: "<QRST-VWXZ>".into(),
                email: evil.into(),
            },
            vec!["<QRST-VWXZ>", evil],
        ),
        (
            Message::LoginCode {
                code: "<123456789>".into(),
                email: evil.into(),
            },
            vec!["<123456789>", evil],
        ),
        (
            Message::UnknownAccount {
                email: evil.into(),
                signup_url: Some(links.signup()),
            },
            vec![evil, "https://app.example/signup?next=<x>"],
        ),
        (
            Message::AccountAlreadyExists {
                email: evil.into(),
                password_reset_url: Some(links.password_reset()),
            },
            vec![evil, "/accounts/password/reset/"],
        ),
        (
            Message::EmailChanged {
                from: evil.into(),
                to: "<new>@example.com".into(),
                origin: origin(),
            },
            vec![evil, "<new>@example.com"],
        ),
        (
            Message::EmailConfirmed {
                email: evil.into(),
                origin: origin(),
            },
            vec![evil],
        ),
        (
            Message::EmailDeleted {
                email: evil.into(),
                origin: origin(),
            },
            vec![evil],
        ),
        (Message::PasswordChanged { origin: origin() }, vec![]),
        (Message::PasswordSet { origin: origin() }, vec![]),
        (Message::PasswordReset { origin: origin() }, vec![]),
    ];
    let mut subjects = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for (message, values) in &cases {
        let rendered = message.render_for(&config);
        let kind = message.kind();
        assert!(
            rendered.subject.starts_with("[Site] "),
            "{kind}: {}",
            rendered.subject
        );
        assert!(rendered.subject.len() > "[Site] ".len() + 5, "{kind}");
        assert!(!rendered.subject.contains('\n'), "{kind}");
        subjects.insert(rendered.subject.clone());
        kinds.insert(kind);
        assert!(rendered.text.len() > 40, "{kind}: {}", rendered.text);
        assert!(rendered.html.starts_with("<!DOCTYPE html>"), "{kind}");
        for value in values {
            assert!(
                rendered.text.contains(value),
                "{kind}: text lacks {value:?}:\n{}",
                rendered.text
            );
            let escaped = value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#x27;");
            assert!(
                rendered.html.contains(&escaped),
                "{kind}: html lacks {escaped:?}:\n{}",
                rendered.html
            );
        }
        // No value's `<` reaches the HTML unescaped.
        for tag in ["<script", "<x>", "<b>", "<new>", "<ABCD", "<QRST", "<1234"] {
            assert!(
                !rendered.html.contains(tag),
                "{kind}: unescaped {tag:?} in\n{}",
                rendered.html
            );
        }
        if let Message::EmailVerificationLink { url, .. } | Message::PasswordResetLink { url, .. } =
            message
        {
            assert!(url.contains(encoded_key));
            let href = format!("href=\"{}\"", url.replace('&', "&amp;"));
            assert!(
                rendered.html.contains(&href),
                "{kind}: no link {href} in\n{}",
                rendered.html
            );
        }
    }
    assert_eq!(
        subjects.len(),
        cases.len(),
        "every mail has its own subject"
    );
    assert_eq!(kinds.len(), cases.len());

    // Optional links are left out when absent.
    let bare = Message::AccountAlreadyExists {
        email: "a@example.com".into(),
        password_reset_url: None,
    }
    .render("");
    assert!(!bare.html.contains("<a "));
    assert_eq!(bare.subject, "You already have an account");
}

#[tokio::test]
async fn enqueue_stores_the_rendered_mail() {
    let database = TestDatabase::sqlite().expect("test database");
    let db = database.migrated(2).await.expect("migrated database");
    let config = config("");
    let message = Message::PasswordResetCode {
        code: "QRST-VWXZ".into(),
        email: "frank@example.com".into(),
    };
    let rendered = message.render_for(&config);
    queue(&db, &config, vec![("frank@example.com".into(), message)]).await;
    let rows = all_rows(&db).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.to_addr, "frank@example.com");
    assert_eq!(row.subject, rendered.subject);
    assert_eq!(row.body_text, rendered.text);
    assert_eq!(row.body_html.as_deref(), Some(rendered.html.as_str()));
    assert_eq!(row.attempts, 0);
    assert!(row.next_attempt_at <= now_millis());
}
