//! `/_allauth/health/{live,ready}`: outside the document, the same on both
//! databases; an overdue mail makes the server unready.

use allauth_server::db::{self, mail_outbox};
use serde_json::{json, Value};

use crate::harness::{on_each_backend, raw};

async fn get(server: &crate::harness::TestServer, path: &str) -> (u16, Value) {
    let response = raw().get(server.url(path)).send().await.expect("request");
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=0, no-cache, no-store, must-revalidate, private")
    );
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn live_and_ready() {
    on_each_backend(
        |_| {},
        |server| async move {
            assert_eq!(
                get(&server, "/_allauth/health/live").await,
                (200, json!({"status": "ok"}))
            );
            assert_eq!(
                get(&server, "/_allauth/health/ready").await,
                (
                    200,
                    json!({"status": "ok", "checks": {"database": "ok", "migrations": "ok", "mail_outbox": "ok"}})
                )
            );
            for path in ["/_allauth/app/live", "/_allauth/browser/ready"] {
                let (status, body) = get(&server, path).await;
                assert_eq!(status, 404, "{path}: {body}");
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_mail_nobody_takes_is_overdue() {
    on_each_backend(
        |_| {},
        |server| async move {
            let db = server.server.context().db.clone();
            let now = db::now_millis();
            let stuck = now - 20 * 60 * 1000;
            // One transaction: the server's sender cannot take the mail
            // between the insert and the counts.
            let counts = db
                .transaction(move |conn| {
                    let mut mail =
                        mail_outbox::NewMail::new(stuck, "a@example.com", "subject", "body", None);
                    mail.next_attempt_at = stuck;
                    mail_outbox::enqueue(conn, &mail)?;
                    let before = now - 15 * 60 * 1000;
                    Ok((
                        mail_outbox::overdue(conn, before)?,
                        mail_outbox::overdue(conn, stuck)?,
                    ))
                })
                .await
                .expect("queries");
            assert_eq!(counts, (1, 0));
            server
        },
    )
    .await;
}
