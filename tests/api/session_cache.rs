//! The session cache is exact: with two instances on one database, each
//! answering session checks from its own cache, a logout, a password change
//! or a change of the user made through one is seen by the very next
//! request on the other, also while that other is under load. A writer that
//! is not a server (as the `users` command) is seen at once on PostgreSQL
//! (the triggers notify) and within the file watcher's poll on SQLite.

use std::time::{Duration, Instant};

use allauth_server::config::{Config, JwtAlgorithm, TokenStrategy};
use allauth_server::db::{Db, ListenerKind};
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use serde_json::json;

use crate::harness::{now_secs, session_for, user, Agent, Backend, TestServer, CLIENTS};

const PASSWORD: &str = "c0rrect-h0rse-battery";

fn jwt(config: &mut Config) {
    config.headless.token_strategy = TokenStrategy::Jwt;
    config.headless.jwt_algorithm = JwtAlgorithm::HS256;
}

async fn check(server: &TestServer, client: &'static str, token: &str) -> (u16, serde_json::Value) {
    Agent::with_token(server, client, token)
        .get("auth/session", &[])
        .await
}

fn cached(server: &TestServer) -> usize {
    server.server.context().sessions.cached_lookups()
}

/// Runs `sql` through `db` (a pool of its own or a server's).
async fn execute(db: &Db, sql: &'static str) {
    db.run(move |conn| Ok(diesel::sql_query(sql).execute(conn)?))
        .await
        .expect("statement runs");
}

/// Runs `sql` through `db` on PostgreSQL with the triggers off (replica
/// mode): a change no cache hears of, which shows whether an answer came
/// from a cache.
async fn execute_unreported(db: &Db, sql: &'static str) {
    db.run(move |conn| {
        Ok(conn.batch_execute(&format!(
            "SET session_replication_role = replica; {sql}; RESET session_replication_role"
        ))?)
    })
    .await
    .expect("an unreported change");
}

#[tokio::test]
async fn changes_on_one_instance_are_seen_at_once_on_another() {
    crate::harness::on_each_backend(jwt, |a| async move {
        let b = a.start_sharing(jwt).await;
        let id = user(&a, "ida", "ida@example.com", true, Some(PASSWORD)).await;

        // A logout on A: B, which answered from its cache, answers the
        // next check as for a session that is gone.
        for client in CLIENTS {
            let token = session_for(&a, client, id, now_secs()).await;
            for server in [&a, &b, &b] {
                assert_eq!(check(server, client, &token).await.0, 200);
            }
            assert!(cached(&b) > 0, "B keeps the lookup");
            let (status, _) = Agent::with_token(&a, client, &token)
                .call("DELETE", "auth/session", None)
                .await;
            assert_eq!(status, 401);
            let gone = if client == "app" { 410 } else { 401 };
            assert_eq!(check(&b, client, &token).await.0, gone, "{client}");
        }

        // A change of the user's primary address made through B is in A's
        // next answer.
        let token = session_for(&a, "app", id, now_secs()).await;
        let (_, body) = check(&a, "app", &token).await;
        assert_eq!(body["data"]["user"]["email"], "ida@example.com");
        execute(
            &b.server.context().db,
            "UPDATE email_addresses SET email = 'ida.new@example.com' WHERE email = 'ida@example.com'",
        )
        .await;
        let (_, body) = check(&a, "app", &token).await;
        assert_eq!(body["data"]["user"]["email"], "ida.new@example.com");

        // A password change on B logs the user's other sessions out on A
        // (401, then gone), access tokens included.
        let mut current = Agent::new(&b, "app");
        let (status, body) = current
            .post("auth/login", json!({"username": "ida", "password": PASSWORD}))
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = Agent::new(&a, "app")
            .post("auth/login", json!({"username": "ida", "password": PASSWORD}))
            .await;
        assert_eq!(status, 200, "{body}");
        let bearer = format!(
            "Bearer {}",
            body["meta"]["access_token"].as_str().expect("access token")
        );
        let other = body["meta"]["session_token"]
            .as_str()
            .expect("session token")
            .to_owned();
        let by_access_token = || async {
            Agent::new(&a, "app")
                .get("auth/session", &[("Authorization", &bearer)])
                .await
                .0
        };
        assert_eq!(check(&a, "app", &other).await.0, 200);
        assert_eq!(by_access_token().await, 200);
        let (status, body) = current
            .post(
                "account/password/change",
                json!({"current_password": PASSWORD, "new_password": "an0ther-h0rse-battery"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(by_access_token().await, 200, "the access token's session is out");
        assert_eq!(check(&a, "app", &other).await.0, 410);

        b.stop().await;
        a
    })
    .await;
}

/// 32 clients check one session on A without pause while B logs it out:
/// every check that starts after the logout has answered finds it gone.
#[tokio::test]
async fn a_logout_under_load_is_seen_by_every_later_check() {
    crate::harness::on_each_backend(
        |_| {},
        |a| async move {
            let b = a.start_sharing(|_| {}).await;
            let id = user(&a, "ivo", "ivo@example.com", true, Some(PASSWORD)).await;
            let token = session_for(&a, "app", id, now_secs()).await;
            assert_eq!(check(&a, "app", &token).await.0, 200);
            let logged_out: std::sync::Arc<std::sync::OnceLock<Instant>> = Default::default();
            let checkers: Vec<_> = (0..32)
                .map(|_| {
                    let (agent, logged_out) =
                        (Agent::with_token(&a, "app", &token), logged_out.clone());
                    tokio::spawn(async move {
                        let mut stale = 0;
                        let mut after = 0;
                        loop {
                            let started = Instant::now();
                            let (status, _) = agent.clone().get("auth/session", &[]).await;
                            let after_logout = logged_out.get().is_some_and(|t| started > *t);
                            if after_logout {
                                after += 1;
                                if status != 410 {
                                    stale += 1;
                                }
                            }
                            if after >= 5 {
                                return stale;
                            }
                        }
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(150)).await;
            let (status, _) = Agent::with_token(&b, "app", &token)
                .call("DELETE", "auth/session", None)
                .await;
            assert_eq!(status, 401);
            logged_out.set(Instant::now()).expect("set once");
            for checker in checkers {
                assert_eq!(checker.await.expect("checker"), 0, "a stale answer");
            }
            b.stop().await;
            a
        },
    )
    .await;
}

/// A writer that is no server (a pool of its own, as the `users` command
/// uses) deactivates the user: seen at once on PostgreSQL, within the
/// watcher's poll on SQLite.
#[tokio::test]
async fn a_writer_outside_the_server_is_seen() {
    crate::harness::on_each_backend(
        |_| {},
        |a| async move {
            let id = user(&a, "ada", "ada@example.com", true, Some(PASSWORD)).await;
            let token = session_for(&a, "app", id, now_secs()).await;
            assert_eq!(check(&a, "app", &token).await.0, 200);
            assert_eq!(check(&a, "app", &token).await.0, 200);
            assert!(cached(&a) > 0);
            let outside = admin_pool(&a.server.context().config.database.url).await;
            execute(&outside, "UPDATE users SET is_active = FALSE").await;
            match a.backend {
                Backend::Postgres => {
                    let (status, body) = check(&a, "app", &token).await;
                    assert_eq!(status, 401, "{body}");
                }
                Backend::Sqlite => {
                    let deadline = Instant::now() + Duration::from_secs(3);
                    loop {
                        let (status, _) = check(&a, "app", &token).await;
                        if status == 401 {
                            break;
                        }
                        assert!(Instant::now() < deadline, "still {status}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            a
        },
    )
    .await;
}

/// The PostgreSQL listener holds its connection on the executor
/// (tokio-postgres) when the URL allows it, and on a thread through libpq
/// when the URL has an option only libpq knows. Either way a logout on B is
/// in A's next answer, also after PostgreSQL ended A's listening connection
/// (A listens again, and its cache answers again). Expects no `PG…`
/// environment variable, as in CI.
#[tokio::test]
async fn both_listeners_keep_the_cache_exact_across_a_lost_connection() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        return;
    }
    for (option, kind) in [
        ("", ListenerKind::Executor),
        (
            "?fallback_application_name=allauth-tests",
            ListenerKind::Thread,
        ),
    ] {
        let a = TestServer::start(Backend::Postgres, |config| {
            config.database.url.push_str(option);
        })
        .await;
        assert_eq!(a.server.context().db.change_listener(), Some(kind));
        let b = a.start_sharing(|_| {}).await;
        let id = user(&a, "eve", "eve@example.com", true, Some(PASSWORD)).await;
        let url = a.server.context().config.database.url.clone();
        for round in 0..2 {
            if round == 1 {
                let ended = end_listening_connections(&url).await;
                assert!(ended > 0, "{kind:?}: no listening connection to end");
                listening_again(&a, &url).await;
            }
            let token = session_for(&a, "app", id, now_secs()).await;
            assert_eq!(check(&a, "app", &token).await.0, 200);
            assert_eq!(check(&a, "app", &token).await.0, 200);
            let (status, _) = Agent::with_token(&b, "app", &token)
                .call("DELETE", "auth/session", None)
                .await;
            assert_eq!(status, 401);
            assert_eq!(
                check(&a, "app", &token).await.0,
                410,
                "{kind:?}, round {round}"
            );
        }
        b.stop().await;
        a.stop().await;
    }
}

/// On PostgreSQL a cached answer waits for one round trip on the
/// listening connection, which relies on PostgreSQL handing the listener
/// every notification committed before the round trip was sent ahead of
/// its answer (`server/db/listener.rs`). A writer outside the servers
/// turns the user off and on 200 times; the check right after each commit
/// answers as the commit left the user, on both kinds of listener.
#[tokio::test]
async fn every_commit_is_in_the_next_cached_answer() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        return;
    }
    for option in ["", "?fallback_application_name=allauth-tests"] {
        let a = TestServer::start(Backend::Postgres, |config| {
            config.database.url.push_str(option);
        })
        .await;
        let id = user(&a, "ora", "ora@example.com", true, Some(PASSWORD)).await;
        let token = session_for(&a, "app", id, now_secs()).await;
        let outside = admin_pool(&a.server.context().config.database.url).await;
        for round in 0..200 {
            assert_eq!(check(&a, "app", &token).await.0, 200, "round {round}");
            assert_eq!(check(&a, "app", &token).await.0, 200, "round {round}");
            execute(&outside, "UPDATE users SET is_active = FALSE").await;
            assert_eq!(
                check(&a, "app", &token).await.0,
                401,
                "{option:?}, round {round}"
            );
            execute(&outside, "UPDATE users SET is_active = TRUE").await;
        }
        // The cache did answer: a change that no trigger reports (replica
        // mode skips them) is not seen.
        assert_eq!(check(&a, "app", &token).await.0, 200);
        execute_unreported(&outside, "UPDATE users SET is_active = FALSE").await;
        assert_eq!(
            check(&a, "app", &token).await.0,
            200,
            "{option:?}: from the cache"
        );
        a.stop().await;
    }
}

/// A login writes only `last_login`, which no lookup reads, so it reports
/// nothing: another instance keeps answering the user's other sessions
/// from its cache. (A change that no trigger reports, made before the
/// login, shows which answers came from the cache.)
#[tokio::test]
async fn a_login_leaves_the_users_other_sessions_cached() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        return;
    }
    let a = TestServer::start(Backend::Postgres, |_| {}).await;
    let b = a.start_sharing(|_| {}).await;
    let id = user(&a, "lou", "lou@example.com", true, Some(PASSWORD)).await;
    let token = session_for(&a, "app", id, now_secs()).await;
    for _ in 0..2 {
        assert_eq!(check(&a, "app", &token).await.0, 200);
    }
    let outside = admin_pool(&a.server.context().config.database.url).await;
    execute_unreported(
        &outside,
        "UPDATE email_addresses SET email = 'unreported@example.com'",
    )
    .await;
    for client in CLIENTS {
        let (status, body) = Agent::new(&b, client)
            .post(
                "auth/login",
                json!({"username": "lou", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{client}: {body}");
        let (status, body) = check(&a, "app", &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["user"]["email"], "lou@example.com",
            "after a login on {client}: {body}"
        );
    }
    // A change the triggers report is seen at once.
    execute(&outside, "UPDATE users SET username = 'reported'").await;
    let (_, body) = check(&a, "app", &token).await;
    assert_eq!(body["data"]["user"]["username"], "reported", "{body}");
    b.stop().await;
    a.stop().await;
}

/// The listeners' connections: the last statement each ran is a round
/// trip's (`CHECK_STATEMENT`, or libpq's) or its `LISTEN`.
const LISTENING: &str = "FROM pg_stat_activity WHERE datname = current_database() \
     AND pid <> pg_backend_pid() \
     AND (query LIKE '/* allauth_changes: caught up */%' OR query LIKE 'LISTEN %')";

/// Ends the listening connections of the database at `url`.
async fn end_listening_connections(url: &str) -> usize {
    let pool = admin_pool(url).await;
    // OFFSET 0 keeps the filter apart: no other backend is ended.
    let sql = format!(
        "SELECT pid AS ended FROM (SELECT pid {LISTENING} OFFSET 0) AS l \
         WHERE pg_terminate_backend(pid)"
    );
    pool.run(move |conn| Ok(diesel::sql_query(sql).load::<Ended>(conn)?.len()))
        .await
        .expect("terminate")
}

/// Waits until A listens again: a session check on A makes a round trip
/// on a connection younger than the call.
async fn listening_again(a: &TestServer, url: &str) {
    let pool = admin_pool(url).await;
    let since = now_secs();
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = user(a, "lis", "lis@example.com", true, Some(PASSWORD)).await;
    let token = session_for(a, "app", id, now_secs()).await;
    loop {
        assert_eq!(check(a, "app", &token).await.0, 200);
        let sql = format!(
            "SELECT pid AS ended {LISTENING} AND extract(epoch FROM backend_start) >= {since}"
        );
        let young = pool
            .run(move |conn| Ok(diesel::sql_query(sql).load::<Ended>(conn)?.len()))
            .await
            .expect("listening connections");
        if young > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "A does not listen again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct Ended {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[allow(dead_code)]
    ended: i32,
}

async fn admin_pool(url: &str) -> Db {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || Db::connect(&url, 1))
        .await
        .expect("connect task")
        .expect("a pool of its own")
}
