//! `GET`/`DELETE auth/sessions`: the user's sessions across clients, ending
//! some, ending the current one (logout), and refusing foreign ids.

use allauth_api::types;
use allauth_server::app::security::codes;
use allauth_server::db::{self, sessions, users};
use serde_json::{json, Value};

use allauth_server::config::{Config, JwtAlgorithm, TokenStrategy};

use crate::harness::{code_in, mails, on_each_backend, raw, session_for, user, Agent, TestServer};

const PASSWORD: &str = "c0rrect-h0rse-battery";

/// A user with one app and one browser session; returns (app token, browser token, user id).
async fn user_with_two_sessions(server: &TestServer, name: &'static str) -> (String, String, i64) {
    let (app, browser) = (codes::new_token(), codes::new_token());
    let (app_hash, browser_hash) = (codes::token_hash(&app), codes::token_hash(&browser));
    let db = server.server.context().db.clone();
    let user_id = db
        .run(move |conn| {
            let now = db::now_millis();
            let user = users::insert(conn, &users::NewUser::new(Some(name), None, now))?;
            for (hash, client) in [
                (app_hash, sessions::Client::App),
                (browser_hash, sessions::Client::Browser),
            ] {
                let mut session = sessions::NewSession::new(hash, client, now, now + 3_600_000);
                session.user_id = Some(user.id);
                session.ip = Some("192.0.2.7".into());
                session.user_agent = Some("test-agent".into());
                session.data = json!({"methods": [{"method": "password", "at": 1.0}]}).to_string();
                sessions::insert(conn, &session)?;
            }
            Ok(user.id)
        })
        .await
        .expect("stored");
    (app, browser, user_id)
}

#[tokio::test]
async fn lists_and_ends_sessions() {
    on_each_backend(
        |_| {},
        |server| async move {
            let (app, _browser, _) = user_with_two_sessions(&server, "alice").await;
            let (other_app, _, _) = user_with_two_sessions(&server, "bob").await;

            let list = server
                .client()
                .user_session_list(types::Client::App, Some(&app))
                .await
                .expect("200")
                .into_inner();
            assert_eq!(list.data.len(), 2);
            let current: Vec<_> = list.data.iter().filter(|s| s.is_current).collect();
            assert_eq!(current.len(), 1);
            assert!(list
                .data
                .iter()
                .all(|s| s.ip == "192.0.2.7" && s.user_agent == "test-agent"));
            assert!(
                list.data.iter().all(|s| s.last_seen_at.is_none()),
                "not tracked by default"
            );
            let current_id = current[0].id;
            let other_id = list.data.iter().find(|s| !s.is_current).expect("other").id;

            // Someone else's session id is refused, and nothing is ended.
            let bob = server
                .client()
                .user_session_list(types::Client::App, Some(&other_app))
                .await
                .expect("200")
                .into_inner();
            let response = raw()
                .delete(server.url("/_allauth/app/v1/auth/sessions"))
                .header("X-Session-Token", &app)
                .json(&json!({"sessions": [bob.data[0].id]}))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 400);
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["errors"][0]["code"], "invalid_choice");
            assert_eq!(body["errors"][0]["param"], "sessions");
            // An empty list is a missing one (Django's required field).
            let response = raw()
                .delete(server.url("/_allauth/app/v1/auth/sessions"))
                .header("X-Session-Token", &app)
                .json(&json!({"sessions": []}))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 400);
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["errors"][0]["code"], "required", "{body}");
            assert_eq!(body["errors"][0]["param"], "sessions");

            // Ending the other session leaves the current one.
            let body = types::EndSessionsInput {
                sessions: vec![other_id],
            };
            let left = server
                .client()
                .user_session_delete(types::Client::App, Some(&app), &body)
                .await
                .expect("200")
                .into_inner();
            assert_eq!(left.data.len(), 1);
            assert_eq!(left.data[0].id, current_id);

            // Ending the current session logs out: 401, then the token is gone (410).
            let body = types::EndSessionsInput {
                sessions: vec![current_id],
            };
            let error = server
                .client()
                .user_session_delete(types::Client::App, Some(&app), &body)
                .await
                .expect_err("401");
            assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
            let response = raw()
                .get(server.url("/_allauth/app/v1/auth/sessions"))
                .header("X-Session-Token", &app)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 410);
            server
        },
    )
    .await;
}

#[tokio::test]
async fn anonymous_callers_get_401_and_activity_is_tracked_when_enabled() {
    on_each_backend(
        |config| config.usersessions.track_activity = true,
        |server| async move {
            for client in [types::Client::App, types::Client::Browser] {
                let error = server
                    .client()
                    .user_session_list(client, None)
                    .await
                    .expect_err("401");
                assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
            }
            let (app, _, _) = user_with_two_sessions(&server, "carol").await;
            let list = server
                .client()
                .user_session_list(types::Client::App, Some(&app))
                .await
                .expect("200")
                .into_inner();
            let current = list.data.iter().find(|s| s.is_current).expect("current");
            assert!(current.last_seen_at.is_some());
            assert_eq!(
                current.ip, "127.0.0.1",
                "the request's address replaces the stored one"
            );
            // So does the user agent, cut to allauth's 200 characters.
            let long_agent = format!("agent/{}", "x".repeat(300));
            let response = raw()
                .get(server.url("/_allauth/app/v1/auth/sessions"))
                .header("X-Session-Token", &app)
                .header("User-Agent", &long_agent)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.expect("json");
            let current = body["data"]
                .as_array()
                .expect("list")
                .iter()
                .find(|s| s["is_current"] == true)
                .expect("current")
                .clone();
            assert_eq!(
                current["user_agent"].as_str(),
                Some(&long_agent[..200]),
                "{current}"
            );
            server
        },
    )
    .await;
}

/// A bad session list is refused as Django's model multiple-choice field
/// refuses it, every error on `sessions`, and nothing is ended.
#[tokio::test]
async fn bad_session_lists_name_the_field() {
    on_each_backend(
        |_| {},
        |server| async move {
            let (app, browser, _) = user_with_two_sessions(&server, "gus").await;
            for (client, token) in [("app", &app), ("browser", &browser)] {
                let mut agent = Agent::with_token(&server, client, token);
                for (body, code) in [
                    (json!({}), "required"),
                    (json!({"sessions": null}), "required"),
                    (json!({"sessions": []}), "required"),
                    (json!({"sessions": "1"}), "invalid_list"),
                    (json!({"sessions": ["x"]}), "invalid_pk_value"),
                    (json!({"sessions": [987_654]}), "invalid_choice"),
                ] {
                    let (status, answer) = agent
                        .call("DELETE", "auth/sessions", Some(body.clone()))
                        .await;
                    assert_eq!(status, 400, "{client} {body}: {answer}");
                    assert_eq!(
                        answer["errors"][0]["code"], code,
                        "{client} {body}: {answer}"
                    );
                    assert_eq!(answer["errors"][0]["param"], "sessions", "{answer}");
                }
                let (status, body) = agent.get("auth/sessions", &[]).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(
                    body["data"].as_array().map(Vec::len),
                    Some(2),
                    "nothing ended"
                );
            }
            server
        },
    )
    .await;
}

/// The browser client (cookie and CSRF) lists and ends sessions; ending its
/// own session is a logout that clears the cookie.
#[tokio::test]
async fn browser_clients_list_and_end_sessions() {
    on_each_backend(
        |_| {},
        |server| async move {
            let (app, browser, _) = user_with_two_sessions(&server, "dora").await;
            let mut agent = Agent::with_token(&server, "browser", &browser);
            let (status, body) = agent.get("auth/sessions", &[]).await;
            assert_eq!(status, 200, "{body}");
            let list = body["data"].as_array().expect("list").clone();
            assert_eq!(list.len(), 2);
            let current: Vec<&Value> = list.iter().filter(|s| s["is_current"] == true).collect();
            assert_eq!(current.len(), 1);
            let current_id = current[0]["id"].clone();
            let app_id = list
                .iter()
                .find(|s| s["is_current"] == false)
                .expect("the app session")["id"]
                .clone();

            // Ending the app session from the browser: the app token is gone.
            let (status, body) = agent
                .call(
                    "DELETE",
                    "auth/sessions",
                    Some(json!({ "sessions": [app_id] })),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
            let (status, _) = Agent::with_token(&server, "app", &app)
                .get("auth/sessions", &[])
                .await;
            assert_eq!(status, 410);

            // Ending its own: logged out, the cookie is cleared.
            let (status, body) = agent
                .call(
                    "DELETE",
                    "auth/sessions",
                    Some(json!({ "sessions": [current_id] })),
                )
                .await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["meta"]["is_authenticated"], false);
            assert_eq!(agent.token, None, "the session cookie is cleared");
            let (status, _) = Agent::with_token(&server, "browser", &browser)
                .get("auth/sessions", &[])
                .await;
            assert_eq!(status, 401, "a stale cookie is anonymous");
            server
        },
    )
    .await;
}

/// An app client on the JWT strategy lists and ends sessions with its access
/// token alone; ending its own session ends the token (410, stateless).
#[tokio::test]
async fn jwt_clients_list_and_end_sessions() {
    let jwt = |config: &mut Config| {
        config.headless.token_strategy = TokenStrategy::Jwt;
        config.headless.jwt_algorithm = JwtAlgorithm::HS256;
    };
    on_each_backend(jwt, |server| async move {
        let id = user(&server, "erin", "erin@example.com", true, Some(PASSWORD)).await;
        let other = session_for(&server, "browser", id, 1.0).await;
        let (status, body) = Agent::new(&server, "app")
            .post(
                "auth/login",
                json!({"username": "erin", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let bearer = format!(
            "Bearer {}",
            body["meta"]["access_token"].as_str().expect("access token")
        );
        let mut agent = Agent::new(&server, "app");
        let (status, body) = agent
            .get("auth/sessions", &[("Authorization", &bearer)])
            .await;
        assert_eq!(status, 200, "{body}");
        let list = body["data"].as_array().expect("list").clone();
        assert_eq!(list.len(), 2);
        let current = list
            .iter()
            .find(|s| s["is_current"] == true)
            .expect("current");
        let browser = list
            .iter()
            .find(|s| s["is_current"] == false)
            .expect("other");

        let (status, body) = agent
            .send(
                "DELETE",
                "auth/sessions",
                Some(json!({ "sessions": [browser["id"]] })),
                &[("Authorization", &bearer)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
        let (status, _) = Agent::with_token(&server, "browser", &other)
            .get("auth/sessions", &[])
            .await;
        assert_eq!(status, 401, "the browser session has ended");

        let (status, body) = agent
            .send(
                "DELETE",
                "auth/sessions",
                Some(json!({ "sessions": [current["id"]] })),
                &[("Authorization", &bearer)],
            )
            .await;
        assert_eq!(status, 401, "{body}");
        let (status, _) = agent
            .get("auth/sessions", &[("Authorization", &bearer)])
            .await;
        assert_eq!(status, 410, "the token's session is gone");
        server
    })
    .await;
}

/// A session row that existed before the login (here a login-by-code flow's)
/// is listed as the login's session: created at the login, with the
/// login request's client, as allauth records a user session at login.
#[tokio::test]
async fn a_login_starts_the_listed_session_afresh() {
    on_each_backend(
        |config| config.account.login_by_code_enabled = true,
        |server| async move {
            user(&server, "fay", "fay@example.com", true, None).await;
            let mut agent = Agent::new(&server, "app");
            let (status, body) = agent
                .send(
                    "POST",
                    "auth/code/request",
                    Some(json!({"email": "fay@example.com"})),
                    &[("User-Agent", "asking/1")],
                )
                .await;
            assert_eq!(status, 401, "{body}");
            let code = code_in(&mails(&server).await.last().expect("code mail").2);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let before_login = db::now_millis() as f64 / 1000.0;
            let (status, body) = agent
                .send(
                    "POST",
                    "auth/code/confirm",
                    Some(json!({ "code": code })),
                    &[("User-Agent", "confirming/2")],
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = agent.get("auth/sessions", &[]).await;
            assert_eq!(status, 200, "{body}");
            let listed = &body["data"][0];
            assert_eq!(listed["user_agent"], "confirming/2", "{body}");
            let created = listed["created_at"].as_f64().expect("created_at");
            assert!(
                created >= before_login,
                "created {created} before the login {before_login}"
            );
            server
        },
    )
    .await;
}
