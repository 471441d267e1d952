//! Account-event webhooks against a local receiver: the events of a
//! signup, login, address change and logout arrive signed (checked here
//! with HMAC-SHA256 as the docs tell receivers to), filtered per endpoint,
//! once per event id; during an outage they wait and are retried, and
//! arrive after it; an endpoint that never recovers is given up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use allauth_server::config::{Config, WebhookEndpoint};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt as _, Full};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{on_each_backend, Agent, TestServer};

const SECRET: &str = "a-webhook-secret-of-32-characters!!";
const PASSWORD: &str = "a sturdy passphrase 42";

#[derive(Default)]
struct Received {
    /// (headers as (name, value), body) of every request.
    requests: Vec<(Vec<(String, String)>, String)>,
    /// Answer 503 to this many requests first.
    fail_next: usize,
}

struct Receiver {
    url: String,
    state: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(fail_next: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(Received {
            fail_next,
            ..Received::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let headers: Vec<(String, String)> = request
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut state = state.lock().expect("state");
                            state
                                .requests
                                .push((headers, String::from_utf8_lossy(&body).into_owned()));
                            let status = if state.fail_next > 0 {
                                state.fail_next -= 1;
                                503
                            } else {
                                204
                            };
                            let mut response = hyper::Response::new(Full::new(Bytes::new()));
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
        Receiver { url, state, task }
    }

    /// Answer 503 to the next `n` requests.
    fn fail_next(&self, n: usize) {
        self.state.lock().expect("state").fail_next = n;
    }

    fn requests(&self) -> Vec<(Vec<(String, String)>, String)> {
        self.state.lock().expect("state").requests.clone()
    }

    /// The verified events received (each request's signature checked).
    fn events(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .map(|(headers, body)| {
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| panic!("no {name} header"))
                };
                let timestamp = header("webhook-timestamp");
                let mut mac =
                    <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
                mac.update(format!("{timestamp}.{body}").as_bytes());
                let expected: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(
                    header("webhook-signature"),
                    format!("v1={expected}"),
                    "signature of {body}"
                );
                let event: Value = serde_json::from_str(body).expect("JSON body");
                assert_eq!(header("webhook-id"), event["id"].as_str().expect("id"));
                event
            })
            .collect()
    }
}

fn endpoint(url: &str, events: &[&str]) -> WebhookEndpoint {
    WebhookEndpoint {
        url: url.to_string(),
        secret: Some(SECRET.to_string().into()),
        events: events.iter().map(|e| e.to_string()).collect(),
        ..WebhookEndpoint::default()
    }
}

/// Waits until `check` holds (deliveries are asynchronous), at most `secs`.
async fn eventually(secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn eventually_or(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn outbox(server: &TestServer) -> Vec<allauth_server::db::webhook_outbox::Delivery> {
    let db = server.server.context().db.clone();
    db.run(allauth_server::db::webhook_outbox::all)
        .await
        .expect("outbox")
}

#[tokio::test]
async fn account_events_arrive_signed_filtered_and_after_an_outage() {
    let all = Receiver::start(0).await;
    // Down for its first three requests: those events wait and come later.
    let logins = Receiver::start(0).await;
    let (all_url, logins_url) = (all.url.clone(), logins.url.clone());
    let configure = move |config: &mut Config| {
        config.webhooks.endpoints = vec![
            endpoint(&all_url, &[]),
            endpoint(&logins_url, &["user.logged_in", "user.logged_out"]),
        ];
        config.webhooks.retry_backoff_secs = 1;
    };
    on_each_backend(&configure, |server| {
        let (all, logins) = (&all, &logins);
        async move {
            let seen_before = all.requests().len();
            let logins_before = logins.events().len();
            logins.fail_next(3);
            let mut agent = Agent::new(&server, "app");
            let name = format!("hooked{:?}", server.backend).to_lowercase();
            let email = format!("{name}@example.com");
            let (status, body) = agent
                .post(
                    "auth/signup",
                    json!({"username": name, "email": email, "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let user_id = body["data"]["user"]["id"].as_i64().expect("id");
            agent.delete("auth/session", None).await;
            agent.token = None;
            let (status, _) = agent
                .post(
                    "auth/login",
                    json!({"username": name, "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, 200);
            let (status, _) = agent
                .post("account/email", json!({"email": format!("second-{email}")}))
                .await;
            assert_eq!(status, 200);
            agent.delete("auth/session", None).await;

            let expected = [
                "user.signed_up",
                "user.logged_in",
                "user.logged_out",
                "user.logged_in",
                "email.added",
                "user.logged_out",
            ];
            let waited =
                eventually_or(10, || all.requests().len() >= seen_before + expected.len()).await;
            assert!(
                waited,
                "received {:?}; outbox {:?}",
                types(&all.events()),
                outbox(&server).await
            );
            let events: Vec<Value> = all.events().into_iter().skip(seen_before).collect();
            assert_eq!(types(&events), expected);
            assert!(
                events.iter().all(|e| e["data"]["user_id"] == user_id),
                "{events:?}"
            );
            assert_eq!(events[0]["data"]["method"], "password");
            assert_eq!(events[4]["data"]["email"], format!("second-{email}"));

            // The filtered endpoint: only logins and logouts, each once,
            // after its outage (three refused requests, then retries).
            eventually(20, || logins.events().len() >= logins_before + 7).await;
            let received: Vec<Value> = logins.events().into_iter().skip(logins_before).collect();
            let mut ids: Vec<&str> = received.iter().map(|e| e["id"].as_str().unwrap()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 4, "four distinct events: {received:?}");
            assert!(received
                .iter()
                .all(|e| e["type"] == "user.logged_in" || e["type"] == "user.logged_out"));
            let rows = outbox(&server).await;
            assert!(rows.iter().all(|r| r.delivered_at.is_some()), "{rows:?}");
            assert!(
                rows.iter()
                    .any(|r| r.endpoint == logins.url && r.attempts > 1),
                "{rows:?}"
            );
            server
        }
    })
    .await;
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_given_up() {
    let down = Receiver::start(usize::MAX).await;
    let url = down.url.clone();
    on_each_backend(
        move |config: &mut Config| {
            config.webhooks.endpoints = vec![endpoint(&url, &["user.signed_up"])];
            config.webhooks.retry_backoff_secs = 1;
            config.webhooks.retry_max_attempts = 2;
        },
        |server| {
            let down = &down;
            async move {
                let before = down.requests().len();
                let mut agent = Agent::new(&server, "app");
                let name = format!("lost{:?}", server.backend).to_lowercase();
                let (status, _) = agent
                    .post(
                        "auth/signup",
                        json!({"username": name, "password": PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 200);
                eventually(15, || down.requests().len() >= before + 2).await;
                let db = server.server.context().db.clone();
                let mut given_up = false;
                for _ in 0..50 {
                    let rows = db
                        .run(allauth_server::db::webhook_outbox::all)
                        .await
                        .expect("rows");
                    if rows.iter().any(|r| {
                        r.next_attempt_at == allauth_server::webhooks::GIVEN_UP && r.attempts == 2
                    }) {
                        given_up = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                assert!(given_up);
                tokio::time::sleep(Duration::from_secs(2)).await;
                assert_eq!(down.requests().len(), before + 2, "no third attempt");
                server
            }
        },
    )
    .await;
}
