//! The admin command line, run as the real binary against a fresh database
//! of each backend: users (create with a password from stdin, list, show,
//! set-password, deactivate, activate, delete), sessions revoke, outbox
//! status and retry, config check; bad input exits 1 with a clear message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

use allauth_server::db::testing::TestDatabase;
use allauth_server::db::{mail_outbox, sessions, users};

/// Runs `allauth-server --database-url URL ARGS…` with `stdin`; the exit
/// status, stdout and stderr.
fn run(url: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allauth-server"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let out = child.wait_with_output().expect("it ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_commands_on_each_backend() {
    for tdb in TestDatabase::all().expect("databases") {
        let url = tdb.url().to_owned();
        let backend = tdb.backend();
        let ok = |args: &[&str], stdin: &str| {
            let (code, out, err) = run(&url, args, stdin);
            assert_eq!(code, 0, "{backend:?} {args:?}: {err}");
            out
        };
        let fails = |args: &[&str], stdin: &str| {
            let (code, out, err) = run(&url, args, stdin);
            assert_eq!(code, 1, "{backend:?} {args:?} should fail: {out}");
            assert!(err.starts_with("error: "), "{err}");
            assert!(!err.contains("backtrace"), "{err}");
            err
        };

        let out = ok(
            &[
                "users",
                "create",
                "--username",
                "Alice",
                "--email",
                "alice@example.com",
                "--verified",
                "--password-stdin",
            ],
            "a sturdy passphrase 42\n",
        );
        assert_eq!(out, "created user 1\n");
        let err = fails(&["users", "create", "--username", "alice"], "");
        assert!(err.contains("taken"), "{err}");
        let err = fails(
            &[
                "users",
                "create",
                "--username",
                "carol",
                "--email",
                "not-an-address",
            ],
            "",
        );
        assert!(err.contains("address is refused"), "{err}");
        let err = fails(&["users", "create", "--username", "bad name!"], "");
        assert!(err.contains("username is refused"), "{err}");
        let err = fails(
            &["users", "create", "--username", "bob", "--password-stdin"],
            "short\n",
        );
        assert!(err.contains("too short"), "{err}");
        let created = ok(&["users", "create", "--username", "bob"], "");
        let bob: i64 = created
            .trim()
            .strip_prefix("created user ")
            .and_then(|id| id.parse().ok())
            .expect("an id");

        let list = ok(&["users", "list"], "");
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines[0], "id\tusername\temail\tactive\tlast_login");
        assert!(
            lines[1].starts_with(&format!("{bob}\tbob\t-\ttrue")),
            "{list}"
        );
        assert!(
            lines[2].starts_with("1\tAlice\talice@example.com\ttrue"),
            "{list}"
        );
        for who in ["1", "alice", "ALICE@example.com"] {
            let shown = ok(&["users", "show", who], "");
            assert!(shown.contains("username: Alice\n"), "{shown}");
            assert!(
                shown.contains("email: alice@example.com (primary) (verified)"),
                "{shown}"
            );
            assert!(shown.contains("usable password: true"), "{shown}");
        }
        let err = fails(&["users", "show", "nobody"], "");
        assert!(err.contains("no user"), "{err}");

        // Sessions end with a new password, a deactivation, a revoke.
        let db = tdb.migrated(2).await.expect("db");
        let add_session = |key: &'static str| {
            let db = db.clone();
            async move {
                db.run(move |conn| {
                    let now = allauth_server::db::now_millis();
                    let mut session = sessions::NewSession::new(
                        key.repeat(64),
                        sessions::Client::App,
                        now,
                        now + 3_600_000,
                    );
                    session.user_id = Some(1);
                    sessions::insert(conn, &session)
                })
                .await
                .expect("session")
            }
        };
        add_session("a").await;
        let before = db
            .run(|conn| users::by_id(conn, 1))
            .await
            .expect("user")
            .expect("alice");
        let out = ok(
            &["users", "set-password", "alice"],
            "another passphrase 43\n",
        );
        assert_eq!(out, "password set for user 1; 1 sessions ended\n");
        let after = db
            .run(|conn| users::by_id(conn, 1))
            .await
            .expect("user")
            .expect("alice");
        assert_ne!(before.password_hash, after.password_hash);
        add_session("b").await;
        assert_eq!(
            ok(&["users", "deactivate", "alice"], ""),
            "user 1 deactivated; 1 sessions ended\n"
        );
        assert!(ok(&["users", "show", "1"], "").contains("active: false"));
        assert_eq!(
            ok(&["users", "activate", "alice"], ""),
            "user 1 activated\n"
        );
        add_session("c").await;
        assert_eq!(
            ok(&["sessions", "revoke", "--user", "alice"], ""),
            "1 sessions of user 1 ended\n"
        );

        // The outbox: a given-up mail is counted and retried.
        db.run(|conn| {
            let now = allauth_server::db::now_millis();
            let mut mail = mail_outbox::NewMail::new(now, "x@example.com", "s", "b", None);
            mail.next_attempt_at = allauth_server::email::sender::GIVEN_UP;
            mail_outbox::enqueue(conn, &mail)
        })
        .await
        .expect("mail");
        assert_eq!(
            ok(&["outbox", "status"], ""),
            "waiting: 0\noverdue: 0\ngiven up: 1\nsent (kept): 0\n"
        );
        assert_eq!(
            ok(&["outbox", "retry"], ""),
            "1 mails will be tried again\n"
        );
        assert_eq!(
            ok(&["outbox", "status"], ""),
            "waiting: 1\noverdue: 0\ngiven up: 0\nsent (kept): 0\n"
        );

        let err = fails(&["users", "delete", "bob"], "");
        assert!(err.contains("--yes"), "{err}");
        assert_eq!(
            ok(&["users", "delete", "bob", "--yes"], ""),
            format!("user {bob} deleted\n")
        );
        assert!(db
            .run(move |conn| users::by_id(conn, bob))
            .await
            .expect("query")
            .is_none());
    }
}

#[test]
fn config_check_validates_and_masks() {
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nsecret_key = \"a-secret-that-must-not-be-printed-0123456789\"\n[database]\nurl = \"postgres://app:hunter2@db.internal/auth\"\n",
    )
    .expect("file");
    let (code, out, err) = run(
        "sqlite://unused",
        &["config", "check", good.to_str().expect("path")],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("postgres://app:[redacted]@db.internal/auth"),
        "{out}"
    );
    assert!(
        !out.contains("hunter2") && !out.contains("a-secret-that-must-not"),
        "{out}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[mfa]\ntotp_digits = 9\n").expect("file");
    let (code, _, err) = run(
        "sqlite://unused",
        &["config", "check", bad.to_str().expect("path")],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("mfa.totp_digits"), "{err}");
}

/// Starts `allauth-server serve` on a free port with a fresh SQLite
/// database and `shutdown_timeout`; the child and its address.
fn serve(dir: &std::path::Path, shutdown_timeout: u64) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let config = dir.join("allauth-server.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nlog_level = \"info\"\nshutdown_timeout = {shutdown_timeout}\n[database]\nurl = \"sqlite://{}/db.sqlite3\"\n",
            dir.display(),
            dir.display()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_allauth-server"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("a line").expect("text");
        if let Some(address) = line.strip_prefix("allauth-server listening on http://") {
            break address.to_owned();
        }
    };
    // Keep draining stderr so that the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

fn terminate(child: &std::process::Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits up to `secs` for the child to exit; its exit code.
fn exited_within(child: &mut std::process::Child, secs: u64) -> Option<i32> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, address) = serve(dir.path(), 30);
    // A request whose body has not all arrived yet: in flight.
    let body = r#"{"username": "nobody", "password": "not the password"}"#;
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /_allauth/app/v1/auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .expect("head sent");
    std::thread::sleep(std::time::Duration::from_millis(300));
    terminate(&child);
    // It waits for that request instead of exiting.
    assert_eq!(
        exited_within(&mut child, 1),
        None,
        "exited with a request in flight"
    );
    stream.write_all(&body.as_bytes()[10..]).expect("rest sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer read");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("username_password_mismatch"), "{answer}");
    assert_eq!(exited_within(&mut child, 10), Some(0), "a clean exit");
}

#[test]
fn a_request_that_never_ends_is_cut_off_after_the_timeout() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, address) = serve(dir.path(), 1);
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST /_allauth/app/v1/auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .expect("head sent");
    std::thread::sleep(std::time::Duration::from_millis(300));
    terminate(&child);
    assert_eq!(
        exited_within(&mut child, 10),
        Some(1),
        "exits with status 1 after the timeout"
    );
    drop(stream);
}
