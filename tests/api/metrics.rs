//! Prometheus metrics on `server.metrics_bind`: requests by operation and
//! status, logins by method, rate-limit refusals, password hashing, and
//! the outbox and session gauges read from the database. The recorder is
//! one per process (tests share it), so counters are compared before and
//! after.

use serde_json::json;

use crate::harness::{on_each_backend, raw, user, Agent};

const PASSWORD: &str = "a sturdy passphrase 42";

async fn scrape(server: &crate::harness::TestServer) -> String {
    let addr = server.server.metrics_addr().expect("metrics listener");
    let response = raw()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    response.text().await.expect("text")
}

/// The value of the sample `name{labels}` (labels as rendered), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_logins_refusals_and_read_the_gauges() {
    on_each_backend(
        |config| {
            config.server.metrics_bind = Some("127.0.0.1:0".into());
            config.account.email_notifications = true;
            let limits = allauth_server::config::Config::from_sources(
                "[account]\nrate_limits = { login_failed = \"2/m/ip\" }\n",
                &[],
            )
            .expect("limits");
            config.account.rate_limits = limits.account.rate_limits;
            config.finalize();
        },
        |server| async move {
            let before = scrape(&server).await;
            let name = format!("metered{:?}", server.backend).to_lowercase();
            user(
                &server,
                &name,
                &format!("{name}@example.com"),
                true,
                Some(PASSWORD),
            )
            .await;
            let mut agent = Agent::new(&server, "app");
            agent.get("config", &[]).await;
            let (status, _) = agent
                .post(
                    "auth/login",
                    json!({"username": name, "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, 200);
            // Wrong passwords until the limit refuses.
            let mut other = Agent::new(&server, "app");
            for _ in 0..4 {
                other
                    .post(
                        "auth/login",
                        json!({"username": name, "password": "wrong one"}),
                    )
                    .await;
            }
            let after = scrape(&server).await;
            let grew = |series: &str, by: f64| {
                let (b, a) = (sample(&before, series), sample(&after, series));
                assert!(a - b >= by, "{series}: {b} -> {a}\n{after}");
            };
            grew(
                r#"allauth_http_requests_total{operation="config_view",status="200"}"#,
                1.0,
            );
            grew(
                r#"allauth_http_requests_total{operation="login_password",status="200"}"#,
                1.0,
            );
            grew(
                r#"allauth_http_requests_total{operation="login_password",status="400"}"#,
                2.0,
            );
            grew(r#"allauth_logins_total{method="password"}"#, 1.0);
            grew(
                r#"allauth_rate_limit_refusals_total{action="login_failed"}"#,
                1.0,
            );
            grew("allauth_password_hash_seconds_count", 2.0);
            assert!(
                after.contains(
                    "allauth_http_request_duration_seconds_bucket{operation=\"login_password\""
                ),
                "{after}"
            );
            // Read from this server's database when scraped.
            assert!(
                sample(&after, r#"allauth_sessions{state="authenticated"}"#) >= 1.0,
                "{after}"
            );
            assert!(after.contains("allauth_mail_outbox_pending "), "{after}");
            assert!(after.contains("allauth_sms_outbox_pending "), "{after}");
            server
        },
    )
    .await;
}
