//! SMS delivery end to end: rows queued in `sms_outbox` (as the phone flows will, inside their transaction) sent by the server's background sender through the file, webhook and Twilio backends, against local fakes; outages, retries, permanent refusals, two instances on one database, and a restart.
//!
//! Every test runs once per backend in [`TestDatabase::all`] (SQLite, and
//! PostgreSQL with `TEST_DATABASE_URL`), on real servers started with
//! `allauth_server::start`.

// Test code: the helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allauth_server::config::Config;
use allauth_server::db::sms_outbox::{self, Sms};
use allauth_server::db::testing::TestDatabase;
use allauth_server::db::{now_millis, Db, DbError};
use allauth_server::sms::sender::GIVEN_UP;
use allauth_server::sms::{enqueue, SmsMessage};
use allauth_server::RunningServer;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use sha2::Sha256;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "an-sms-webhook-secret-of-32-characters";
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-for-tests";
const FROM: &str = "+15005550006";

// ---------------------------------------------------------------------------
// A local HTTP fake (webhook receiver, Twilio's Messages endpoint)
// ---------------------------------------------------------------------------

/// One request the fake received, and the status it answered.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    status: u16,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

type Answer = Box<dyn Fn(&Request, usize) -> (u16, String) + Send + Sync>;

struct Fake {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Answers each request with `answer(request, requests before it)`.
    async fn start(answer: Answer) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::<Request>::new()));
        let answer = Arc::new(answer);
        let shared = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let requests = shared.clone();
                let answer = answer.clone();
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let requests = requests.clone();
                        let answer = answer.clone();
                        async move {
                            let path = request.uri().path().to_owned();
                            let headers = request
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                                .collect();
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut received = Request {
                                path,
                                headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                                status: 0,
                            };
                            let mut requests = requests.lock().expect("requests");
                            let (status, text) = answer(&received, requests.len());
                            received.status = status;
                            requests.push(received);
                            let mut response = hyper::Response::new(Full::new(Bytes::from(text)));
                            *response.status_mut() =
                                hyper::StatusCode::from_u16(status).expect("status");
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Fake {
            base,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }
}

/// A webhook receiver that answers 503 while `failing` holds a count above
/// 0 (decremented per request), 204 after.
async fn webhook_receiver(failing: Arc<Mutex<usize>>) -> Fake {
    Fake::start(Box::new(move |_, _| {
        let mut left = failing.lock().expect("failing");
        if *left > 0 {
            *left -= 1;
            (503, String::new())
        } else {
            (204, String::new())
        }
    }))
    .await
}

/// The webhook requests, each signature checked as `docs/webhooks.md` tells
/// receivers to; (Webhook-Id, JSON body, status).
fn verified(requests: &[Request]) -> Vec<(String, Value, u16)> {
    requests
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/sms");
            assert_eq!(r.header("content-type"), Some("application/json"));
            let timestamp = r.header("webhook-timestamp").expect("Webhook-Timestamp");
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(format!("{timestamp}.{}", r.body).as_bytes());
            let expected: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                r.header("webhook-signature"),
                Some(format!("v1={expected}").as_str())
            );
            let body: Value = serde_json::from_str(&r.body).expect("JSON body");
            let id = r.header("webhook-id").expect("Webhook-Id").to_owned();
            assert_eq!(body["id"], Value::String(id.clone()));
            (id, body, r.status)
        })
        .collect()
}

/// Successful deliveries per Webhook-Id.
fn delivered_once_each(requests: &[Request], n: usize) -> BTreeMap<String, Value> {
    let mut delivered: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (id, body, status) in verified(requests) {
        if (200..300).contains(&status) {
            delivered.entry(id).or_default().push(body);
        }
    }
    assert_eq!(delivered.len(), n, "{delivered:#?}");
    delivered
        .into_iter()
        .map(|(id, bodies)| {
            assert_eq!(bodies.len(), 1, "{id} delivered {} times", bodies.len());
            (id, bodies.into_iter().next().expect("one"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Servers, rows
// ---------------------------------------------------------------------------

/// A server on `database` with files under `dir` and `sms` appended to its
/// `[sms]` table (fast retries).
async fn server(database: &TestDatabase, dir: &Path, sms: &str) -> RunningServer {
    let toml = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nlog_level = \"warn\"\n\
         secret_key = \"a-test-secret-key-that-is-long-enough-0123456789-abcdefghijk\"\n\
         data_dir = {data:?}\n\
         [database]\nurl = {url:?}\n\
         [email]\nfile_path = {mail:?}\n\
         [sms]\nretry_backoff_secs = 0\nretry_max_attempts = 1000\ntimeout_secs = 2\n{sms}",
        data = dir.display().to_string(),
        url = database.url(),
        mail = dir.join("mail").display().to_string(),
    );
    let config = Config::from_sources(&toml, &[]).expect("test configuration");
    allauth_server::start(config).await.expect("server starts")
}

fn webhook_sms(url: &str) -> String {
    format!("backend = \"webhook\"\nwebhook_url = \"{url}/sms\"\nwebhook_secret = \"{SECRET}\"\n")
}

/// Queues `messages` in one transaction, as a flow will, and wakes the sender.
async fn queue(server: &RunningServer, messages: Vec<(&'static str, SmsMessage)>) {
    let services = server.context();
    let config = Arc::clone(&services.config);
    services
        .db
        .transaction(move |conn| {
            let now = now_millis();
            for (to, message) in &messages {
                enqueue(conn, &config, to, message, now)?;
            }
            Ok(())
        })
        .await
        .expect("enqueue");
    services.texter.wake();
}

async fn rows(db: &Db) -> Vec<Sms> {
    db.run(sms_outbox::all).await.expect("read sms_outbox")
}

async fn wait_for_rows<T>(db: &Db, what: &str, check: impl Fn(&[Sms]) -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        let rows = rows(db).await;
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

fn all_sent(rows: &[Sms], n: usize) -> Option<()> {
    (rows.len() == n && rows.iter().all(|r| r.sent_at.is_some())).then_some(())
}

fn code(code: &str) -> SmsMessage {
    SmsMessage::VerificationCode { code: code.into() }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_backend_writes_one_file_per_message() {
    for database in TestDatabase::all().expect("test databases") {
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("sms");
        let server = server(
            &database,
            dir.path(),
            &format!(
                "backend = \"file\"\nfile_path = {:?}\n",
                out.display().to_string()
            ),
        )
        .await;
        // A message queued by a change that is rolled back never exists.
        let rolled_back = {
            let config = Arc::clone(&server.context().config);
            server
                .context()
                .db
                .transaction(move |conn| {
                    enqueue(
                        conn,
                        &config,
                        "+4915100000000",
                        &code("000000"),
                        now_millis(),
                    )?;
                    Err::<(), _>(DbError::Config("the change failed".into()))
                })
                .await
        };
        assert!(rolled_back.is_err());
        queue(
            &server,
            vec![
                ("+4915112345678", code("123456")),
                (
                    "+15005550001",
                    SmsMessage::LoginCode {
                        code: "654321".into(),
                    },
                ),
                ("+447700900123", SmsMessage::AccountAlreadyExists),
            ],
        )
        .await;
        let db = server.context().db.clone();
        wait_for_rows(&db, "3 rows sent", |rows| all_sent(rows, 3)).await;

        let mut names: Vec<String> = std::fs::read_dir(&out)
            .expect("sms directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        let texts: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(out.join(n)).expect("read"))
            .collect();
        for (row, text) in rows(&db).await.iter().zip(&texts) {
            assert!(text.contains(&format!("To: {}", row.to_number)), "{text}");
            assert!(text.contains(&row.body), "{text}");
            assert!(text.contains(&row.kind), "{text}");
            assert_eq!(row.attempts, 1);
        }
        assert!(texts[0].contains("123456 is your verification code"));
        assert!(texts[1].contains("654321 is your sign-in code"));
        assert!(texts[2].contains("already has an account"));
        server.stop().await.expect("server stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_outage_then_recovery_delivers_each_message_once() {
    for database in TestDatabase::all().expect("test databases") {
        let dir = tempfile::tempdir().expect("temporary directory");
        let failing = Arc::new(Mutex::new(4));
        let receiver = webhook_receiver(failing.clone()).await;
        let server = server(&database, dir.path(), &webhook_sms(&receiver.base)).await;
        queue(
            &server,
            vec![
                ("+4915112345678", code("111111")),
                ("+15005550001", code("222222")),
            ],
        )
        .await;
        let db = server.context().db.clone();
        wait_for_rows(&db, "2 rows sent", |rows| all_sent(rows, 2)).await;
        tokio::time::sleep(Duration::from_millis(600)).await;

        let requests = receiver.requests();
        assert_eq!(
            requests.iter().filter(|r| r.status == 503).count(),
            4,
            "the outage"
        );
        let delivered = delivered_once_each(&requests, 2);
        let mut seen: Vec<(String, String, String)> = delivered
            .values()
            .map(|b| {
                (
                    b["to"].as_str().unwrap().to_owned(),
                    b["kind"].as_str().unwrap().to_owned(),
                    b["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(seen[0].0, "+15005550001");
        assert!(seen[0].2.contains("222222"));
        assert_eq!(seen[1].0, "+4915112345678");
        assert!(seen[1].2.contains("111111"));
        assert!(seen.iter().all(|s| s.1 == "verification_code"));
        let rows = rows(&db).await;
        assert_eq!(rows.iter().map(|r| r.attempts).sum::<i32>(), 6, "{rows:#?}");
        assert!(rows.iter().all(|r| r.last_error.is_none()));
        server.stop().await.expect("server stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_sends_gives_up_on_400_and_retries_500() {
    const OK: &str = "+15005550001";
    const INVALID: &str = "+15005550002";
    const FLAKY: &str = "+15005550003";
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    for database in TestDatabase::all().expect("test databases") {
        let dir = tempfile::tempdir().expect("temporary directory");
        let flaky_failures = Arc::new(Mutex::new(2));
        let failures = flaky_failures.clone();
        let auth = auth.clone();
        let twilio = Fake::start(Box::new(move |request, _| {
            if request.path != format!("/2010-04-01/Accounts/{SID}/Messages.json")
                || request.header("authorization") != Some(auth.as_str())
            {
                return (401, r#"{"code":20003,"message":"Authenticate"}"#.into());
            }
            let form = request.form();
            if form.get("From").map(String::as_str) != Some(FROM)
                || form.get("Body").is_none_or(|b| b.is_empty())
            {
                return (400, r#"{"code":21603,"message":"bad form"}"#.into());
            }
            match form.get("To").map(String::as_str) {
                Some(INVALID) => (
                    400,
                    format!(r#"{{"code":21211,"message":"The 'To' number {INVALID} is not a valid phone number."}}"#),
                ),
                Some(FLAKY) => {
                    let mut left = failures.lock().expect("failures");
                    if *left > 0 {
                        *left -= 1;
                        (500, r#"{"code":20500,"message":"Internal"}"#.into())
                    } else {
                        (201, r#"{"sid":"SM2","status":"queued"}"#.into())
                    }
                }
                _ => (201, r#"{"sid":"SM1","status":"queued"}"#.into()),
            }
        }))
        .await;
        let server = server(
            &database,
            dir.path(),
            &format!(
                "backend = \"twilio\"\ntwilio_account_sid = \"{SID}\"\n\
                 twilio_auth_token = \"{TOKEN}\"\ntwilio_from = \"{FROM}\"\n\
                 twilio_base_url = \"{}/\"\n",
                twilio.base
            ),
        )
        .await;
        queue(
            &server,
            vec![
                (OK, code("123456")),
                (INVALID, code("234567")),
                (FLAKY, SmsMessage::UnknownAccount),
            ],
        )
        .await;
        let db = server.context().db.clone();
        let rows = wait_for_rows(&db, "two sent, one given up", |rows| {
            let done = rows.len() == 3
                && rows
                    .iter()
                    .all(|r| r.sent_at.is_some() || r.next_attempt_at == GIVEN_UP);
            done.then(|| rows.to_vec())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;

        let by_number: BTreeMap<&str, &Sms> =
            rows.iter().map(|r| (r.to_number.as_str(), r)).collect();
        let ok = by_number[OK];
        assert!(ok.sent_at.is_some() && ok.attempts == 1, "{ok:?}");
        let invalid = by_number[INVALID];
        assert_eq!(invalid.sent_at, None);
        assert_eq!(invalid.next_attempt_at, GIVEN_UP);
        assert_eq!(invalid.attempts, 1, "a 400 is not retried");
        let error = invalid.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("400") && error.contains("21211"), "{error}");
        assert!(!error.contains("5550002"), "no number in errors: {error}");
        let flaky = by_number[FLAKY];
        assert!(flaky.sent_at.is_some() && flaky.attempts == 3, "{flaky:?}");

        let requests = twilio.requests();
        assert!(
            requests.iter().all(|r| r.status != 401),
            "Basic auth and path"
        );
        let to = |n: &str| {
            requests
                .iter()
                .filter(|r| r.form().get("To").map(String::as_str) == Some(n))
                .count()
        };
        assert_eq!((to(OK), to(INVALID), to(FLAKY)), (1, 1, 3));
        let sent = requests
            .iter()
            .find(|r| r.form().get("To").map(String::as_str) == Some(OK))
            .expect("the first message");
        assert!(sent.form()["Body"].contains("123456 is your verification code"));
        server.stop().await.expect("server stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_never_send_twice() {
    for database in TestDatabase::all().expect("test databases") {
        let dir = tempfile::tempdir().expect("temporary directory");
        // A slow receiver widens the window in which both could send a row.
        let receiver = Fake::start(Box::new(|_, _| {
            std::thread::sleep(Duration::from_millis(5));
            (204, String::new())
        }))
        .await;
        let first = server(
            &database,
            &dir.path().join("a"),
            &webhook_sms(&receiver.base),
        )
        .await;
        let second = server(
            &database,
            &dir.path().join("b"),
            &webhook_sms(&receiver.base),
        )
        .await;
        let messages: Vec<(&'static str, SmsMessage)> = (0..30)
            .map(|i| ("+4915112345678", code(&format!("{i:06}"))))
            .collect();
        queue(&first, messages).await;
        second.context().texter.wake();
        let db = first.context().db.clone();
        wait_for_rows(&db, "30 rows sent", |rows| all_sent(rows, 30)).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let requests = receiver.requests();
        assert_eq!(requests.len(), 30, "one request per message");
        let delivered = delivered_once_each(&requests, 30);
        let mut codes: Vec<String> = delivered
            .values()
            .map(|b| b["body"].as_str().unwrap()[..6].to_owned())
            .collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 30);
        second.stop().await.expect("second server stops");
        first.stop().await.expect("first server stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_survive_a_restart() {
    for database in TestDatabase::all().expect("test databases") {
        let dir = tempfile::tempdir().expect("temporary directory");
        let failing = Arc::new(Mutex::new(usize::MAX));
        let receiver = webhook_receiver(failing.clone()).await;
        let before = server(&database, dir.path(), &webhook_sms(&receiver.base)).await;
        queue(
            &before,
            vec![
                ("+4915112345678", code("333333")),
                ("+15005550001", code("444444")),
                ("+447700900123", code("555555")),
            ],
        )
        .await;
        let db = before.context().db.clone();
        wait_for_rows(&db, "every row tried", |rows| {
            (rows.len() == 3 && rows.iter().all(|r| r.attempts >= 1 && r.sent_at.is_none()))
                .then_some(())
        })
        .await;
        before.stop().await.expect("server stops");
        drop(db);
        *failing.lock().expect("failing") = 0;
        let tried_before = receiver.requests().len();

        let after = server(&database, dir.path(), &webhook_sms(&receiver.base)).await;
        let db = after.context().db.clone();
        wait_for_rows(&db, "3 rows sent after the restart", |rows| {
            all_sent(rows, 3)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let requests = receiver.requests();
        assert!(requests[..tried_before].iter().all(|r| r.status == 503));
        delivered_once_each(&requests, 3);
        after.stop().await.expect("server stops");
    }
}

#[tokio::test]
async fn queued_rows_name_their_kind_and_keep_the_number() {
    let database = TestDatabase::sqlite().expect("test database");
    let db = database.migrated(2).await.expect("migrated");
    let config = Arc::new(
        Config::from_sources(
            "[headless.frontend_urls]\naccount_confirm_email = \"https://app.example/verify/{key}\"\n",
            &[],
        )
        .expect("configuration"),
    );
    db.transaction(move |conn| {
        enqueue(conn, &config, " +4915112345678 ", &code("123456"), 1_000)?;
        enqueue(
            conn,
            &config,
            "+15005550001",
            &SmsMessage::UnknownAccount,
            2_000,
        )
    })
    .await
    .expect("enqueue");
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].to_number, "+4915112345678");
    assert_eq!(rows[0].kind, "verification_code");
    assert_eq!(
        rows[0].body,
        "app.example: 123456 is your verification code. Never share it with anyone."
    );
    assert_eq!(
        (rows[0].created_at, rows[0].next_attempt_at),
        (1_000, 1_000)
    );
    assert_eq!(rows[1].kind, "unknown_account");
    assert_eq!((rows[1].attempts, rows[1].sent_at), (0, None));
}
