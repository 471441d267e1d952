//! PostgreSQL closing the server's connections (a restart, a failover, an
//! idle-timeout proxy; here `pg_terminate_backend`) costs no error answer:
//! the pool's broken connections are replaced and the query runs again.

use diesel::{Connection as _, PgConnection, RunQueryDsl as _};
use serde_json::json;

use crate::harness::{raw, user, Agent, Backend, TestServer};

const PASSWORD: &str = "c0rrect-h0rse-battery";

/// Ends every connection of the server's database but this one.
fn terminate_backends(database_url: &str) -> usize {
    let (admin, name) = database_url.rsplit_once('/').expect("database name");
    let mut conn = PgConnection::establish(&format!("{admin}/postgres")).expect("admin connection");
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut conn)
    .expect("terminate")
}

#[tokio::test]
async fn terminated_connections_cost_no_error_answer() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        return;
    }
    let server = TestServer::start(Backend::Postgres, |_| {}).await;
    let url = server.server.context().config.database.url.clone();
    user(&server, "hal", "hal@example.com", true, Some(PASSWORD)).await;
    let mut agent = Agent::new(&server, "app");
    let (status, body) = agent
        .post(
            "auth/login",
            json!({"username": "hal", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = agent.token.clone().expect("session token");

    for round in 0..3 {
        // Fill the pool with open connections, then end them all.
        let statuses = session_checks(&server, &token, 16).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let ended = terminate_backends(&url);
        assert!(ended > 0, "round {round}: no connection to end");

        // Reads and writes right after: no 5xx, the same answers as before.
        let statuses = session_checks(&server, &token, 32).await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
        let (status, body) = Agent::new(&server, "app")
            .post(
                "auth/login",
                json!({"username": "hal", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "round {round}: {body}");
    }
    server.stop().await;
}

/// `count` simultaneous session checks with `token`; their statuses.
async fn session_checks(server: &TestServer, token: &str, count: usize) -> Vec<u16> {
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = raw()
            .get(server.url("/_allauth/app/v1/auth/session"))
            .header("X-Session-Token", token);
        checks.spawn(async move { request.send().await.expect("request").status().as_u16() });
    }
    checks.join_all().await
}
