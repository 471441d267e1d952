//! `GET`/`DELETE auth/session` for both clients: the anonymous 401 with its
//! flows, a logged-in 200, logout, the app 410, and the browser's CSRF rules.

use allauth_api::types;
use allauth_server::app::security::codes;
use allauth_server::db::{self, sessions, users};
use serde_json::{json, Value};

use crate::harness::{on_each_backend, raw, Agent, TestServer, CLIENTS};

/// Stores a logged-in session for a new user directly, returning its token.
async fn logged_in(server: &TestServer, client: sessions::Client) -> (String, i64) {
    let token = codes::new_token();
    let key_hash = codes::token_hash(&token);
    let db = server.server.context().db.clone();
    let user_id = db
        .run(move |conn| {
            let now = db::now_millis();
            let user = users::insert(conn, &users::NewUser::new(Some("alice"), None, now))?;
            let mut session = sessions::NewSession::new(key_hash, client, now, now + 3_600_000);
            session.user_id = Some(user.id);
            session.data =
                json!({"methods": [{"method": "password", "at": 1.5, "username": "alice"}]})
                    .to_string();
            sessions::insert(conn, &session)?;
            Ok(user.id)
        })
        .await
        .expect("stored");
    (token, user_id)
}

fn anonymous_flows() -> Value {
    json!([{"id": "login"}, {"id": "signup"}])
}

#[tokio::test]
async fn anonymous_session_is_a_401_with_flows_for_both_clients() {
    on_each_backend(
        |_| {},
        |server| async move {
            for client in [types::Client::App, types::Client::Browser] {
                let error = server.client().session_view(client, None).await.expect_err("401");
                assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
            }
            for client in CLIENTS {
                let response = raw().get(server.url(&format!("/_allauth/{client}/v1/auth/session"))).send().await.expect("request");
                assert_eq!(response.status(), 401);
                let body: Value = response.json().await.expect("json");
                assert_eq!(body, json!({"status": 401, "data": {"flows": anonymous_flows()}, "meta": {"is_authenticated": false}}));
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn app_session_token_logs_in_and_logout_kills_it() {
    on_each_backend(
        |_| {},
        |server| async move {
            let (token, user_id) = logged_in(&server, sessions::Client::App).await;
            let response = server.client().session_view(types::Client::App, Some(&token)).await.expect("200");
            let body = serde_json::to_value(response.into_inner()).expect("json");
            assert_eq!(body["status"], 200);
            assert_eq!(body["data"]["user"]["id"], user_id);
            assert_eq!(body["data"]["user"]["username"], "alice");
            assert_eq!(body["data"]["user"]["display"], "alice");
            assert_eq!(body["data"]["user"]["has_usable_password"], false);
            assert_eq!(body["data"]["methods"][0]["method"], "password");
            assert_eq!(body["meta"]["is_authenticated"], true);
            assert!(body["meta"].get("session_token").is_none(), "an unchanged token is not repeated");

            match server.client().session_logout(types::Client::App, Some(&token)).await {
                Ok(_) => panic!("logout answers 401"),
                Err(error) => assert_eq!(error.status().map(|s| s.as_u16()), Some(401)),
            }

            // The token is dead: 410 with the flows and a null is_authenticated.
            let response = raw()
                .get(server.url("/_allauth/app/v1/auth/session"))
                .header("X-Session-Token", &token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 410);
            let body: Value = response.json().await.expect("json");
            assert_eq!(body, json!({"status": 410, "data": {"flows": anonymous_flows()}, "meta": {"is_authenticated": null}}));
            server
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_app_token_is_410_everywhere_before_input_is_read() {
    on_each_backend(
        |_| {},
        |server| async move {
            for (method, path) in [
                (reqwest::Method::GET, "/_allauth/app/v1/config"),
                (reqwest::Method::GET, "/_allauth/app/v1/auth/session"),
                (reqwest::Method::DELETE, "/_allauth/app/v1/auth/session"),
            ] {
                let response = raw()
                    .request(method, server.url(path))
                    .header("X-Session-Token", "not-a-session")
                    .body("{not json")
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 410, "{path}");
                let body: Value = response.json().await.expect("json");
                assert_eq!(body["meta"]["is_authenticated"], Value::Null, "{path}");
            }
            server
        },
    )
    .await;
}

fn set_cookies(response: &crate::harness::RawResponse) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn browser_gets_a_csrf_cookie_and_unsafe_requests_need_it() {
    on_each_backend(
        |_| {},
        |server| async move {
            let response = raw()
                .get(server.url("/_allauth/browser/v1/auth/session"))
                .send()
                .await
                .expect("request");
            let csrf = crate::harness::response_cookie(&response, "csrftoken")
                .expect("csrftoken cookie set on GET");
            assert_eq!(csrf.len(), 32);

            let url = server.url("/_allauth/browser/v1/auth/session");
            // No token, a wrong token, a token without its cookie: 403 in the envelope.
            for (cookie, header) in [
                (Some(csrf.as_str()), None),
                (Some(csrf.as_str()), Some("x".repeat(32))),
                (None, Some(csrf.clone())),
            ] {
                let mut request = raw().delete(&url);
                if let Some(cookie) = cookie {
                    request = request.header("Cookie", format!("csrftoken={cookie}"));
                }
                if let Some(header) = header {
                    request = request.header("X-CSRFToken", header);
                }
                let response = request.send().await.expect("request");
                assert_eq!(response.status(), 403);
                let body: Value = response.json().await.expect("envelope");
                assert_eq!(body["status"], 403);
                assert_eq!(body["errors"][0]["code"], "csrf_failed");
            }
            // The right token passes (logout of nobody: the anonymous 401).
            let response = raw()
                .delete(&url)
                .header("Cookie", format!("csrftoken={csrf}"))
                .header("X-CSRFToken", &csrf)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 401);
            assert_eq!(
                crate::harness::response_cookie(&response, "csrftoken").as_deref(),
                Some(csrf.as_str())
            );
            // A foreign Origin is refused even with the right token.
            let response = raw()
                .delete(&url)
                .header("Cookie", format!("csrftoken={csrf}"))
                .header("X-CSRFToken", &csrf)
                .header("Origin", "https://evil.example.com")
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 403);
            // The app client has no CSRF.
            let response = raw()
                .delete(server.url("/_allauth/app/v1/auth/session"))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 401);
            server
        },
    )
    .await;
}

#[tokio::test]
async fn browser_session_cookie_logs_in_and_logout_clears_it() {
    on_each_backend(
        |_| {},
        |server| async move {
            let (token, _) = logged_in(&server, sessions::Client::Browser).await;
            let csrf = "abcdefghijklmnopqrstuvwxyzABCDEF";
            let cookie = format!("sessionid={token}; csrftoken={csrf}");
            let response = raw()
                .get(server.url("/_allauth/browser/v1/auth/session"))
                .header("Cookie", &cookie)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["data"]["user"]["username"], "alice");
            assert!(
                body["meta"].get("session_token").is_none(),
                "browsers never see the token in the body"
            );

            let response = raw()
                .delete(server.url("/_allauth/browser/v1/auth/session"))
                .header("Cookie", &cookie)
                .header("X-CSRFToken", csrf)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 401);
            let cookies = set_cookies(&response);
            let cleared = cookies
                .iter()
                .find(|c| c.starts_with("sessionid="))
                .expect("session cookie cleared");
            assert!(cleared.contains("Max-Age=0"), "{cleared}");
            let response = raw()
                .get(server.url("/_allauth/browser/v1/auth/session"))
                .header("Cookie", &cookie)
                .send()
                .await
                .expect("request");
            assert_eq!(
                response.status(),
                401,
                "a stale browser cookie is no session (no 410 for browsers)"
            );
            server
        },
    )
    .await;
}

/// A browser cookie that names no session is deleted in the answer (as
/// Django's session middleware does), whether the call succeeds or fails,
/// unless the call starts a session, whose cookie then replaces it.
#[tokio::test]
async fn a_stale_browser_cookie_is_deleted() {
    on_each_backend(
        |_| {},
        |server| async move {
            crate::harness::user(
                &server,
                "ivan",
                "ivan@example.com",
                true,
                Some("c0rrect-h0rse-battery"),
            )
            .await;
            let csrf = crate::harness::CSRF;
            let stale = format!("sessionid=no-such-session; csrftoken={csrf}");
            let session_cookies = |response: &crate::harness::RawResponse| -> Vec<String> {
                response
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter(|c| c.starts_with("sessionid="))
                    .map(str::to_string)
                    .collect()
            };
            let response = raw()
                .get(server.url("/_allauth/browser/v1/auth/session"))
                .header("Cookie", &stale)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 401);
            let set = session_cookies(&response);
            assert_eq!(set.len(), 1, "{set:?}");
            assert!(
                set[0].starts_with("sessionid=;") && set[0].contains("Max-Age=0"),
                "{set:?}"
            );

            // A failed login deletes it too.
            let login = |password: &'static str| {
                raw()
                    .post(server.url("/_allauth/browser/v1/auth/login"))
                    .header("Cookie", &stale)
                    .header("X-CSRFToken", csrf)
                    .json(&json!({"username": "ivan", "password": password}))
                    .send()
            };
            let response = login("wrong-guess").await.expect("request");
            assert_eq!(response.status(), 400);
            let set = session_cookies(&response);
            assert!(set.len() == 1 && set[0].contains("Max-Age=0"), "{set:?}");

            // A successful one sets the new session's cookie, and only that.
            let response = login("c0rrect-h0rse-battery").await.expect("request");
            assert_eq!(response.status(), 200);
            let set = session_cookies(&response);
            assert_eq!(set.len(), 1, "{set:?}");
            assert!(!set[0].starts_with("sessionid=;"), "{set:?}");

            // A browser without any session cookie gets none.
            let response = raw()
                .get(server.url("/_allauth/browser/v1/auth/session"))
                .send()
                .await
                .expect("request");
            assert!(session_cookies(&response).is_empty());
            server
        },
    )
    .await;
}

/// A header value that is not visible ASCII (its bytes pass HTTP as
/// obs-text) does not fail the check: elsewhere it is ignored, as the
/// session token it names no session. (That header parameters are read by
/// name is shown by `password_reset::reset_by_link_for_both_clients`.)
#[tokio::test]
async fn only_the_named_headers_are_read() {
    on_each_backend(
        |_| {},
        |server| async move {
            let (token, user_id) = logged_in(&server, sessions::Client::App).await;
            let mut agent = Agent::new(&server, "app");
            let (status, body) = agent
                .get(
                    "auth/session",
                    &[("X-Session-Token", &token), ("X-Forwarded-Note", "café")],
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], user_id, "{body}");

            // A token that is not text names no session: the anonymous 401.
            let (status, body) = agent
                .get("auth/session", &[("X-Session-Token", "café")])
                .await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["meta"]["is_authenticated"], false, "{body}");
            server
        },
    )
    .await;
}
