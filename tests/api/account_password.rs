//! `POST account/password/change` for both clients: the 401 for anonymous
//! callers, the current password check, setting a first password, the
//! session kept under a new key (or ended), other sessions ended, the
//! notification mails and the per-user rate limit.

use allauth_api::types;
use serde_json::{json, Value};

use allauth_server::config::{Config, JwtAlgorithm, TokenStrategy};

use crate::harness::{
    app_session_statuses, mails, now_secs, on_each_backend, raw, response_cookie, session_for,
    user, Agent, TestServer, CLIENTS,
};
use crate::password_reset::{password_is, NEW_PASSWORD, OLD_PASSWORD};

async fn app_token_alive(server: &TestServer, token: &str) -> bool {
    app_session_statuses(server, token, 1).await != [410]
}

fn error_codes(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap_or_default().to_owned(),
                e["param"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn anonymous_callers_get_the_401() {
    on_each_backend(
        |_| {},
        |server| async move {
            for client in CLIENTS {
                let mut agent = Agent::new(&server, client);
                let (status, body) = agent
                    .post(
                        "account/password/change",
                        json!({"new_password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 401);
                assert_eq!(body["meta"]["is_authenticated"], false);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn change_keeps_the_session_under_a_new_key_and_ends_the_others() {
    on_each_backend(
        |config| config.account.email_notifications = true,
        |server| async move {
            for client in CLIENTS {
                let email = format!("ivy-{client}@example.com");
                let id = user(
                    &server,
                    &format!("ivy_{client}"),
                    &email,
                    true,
                    Some(OLD_PASSWORD),
                )
                .await;
                let token = session_for(&server, client, id, 1.5).await;
                let other = session_for(&server, "app", id, 1.5).await;
                let mut agent = Agent::with_token(&server, client, &token);

                let (status, body) = agent
                    .post(
                        "account/password/change",
                        json!({"new_password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 400);
                assert_eq!(
                    error_codes(&body),
                    vec![("required".into(), "current_password".into())]
                );
                let (status, body) = agent
                    .post(
                        "account/password/change",
                        json!({"current_password": "wrong", "new_password": "abc"}),
                    )
                    .await;
                assert_eq!(status, 400);
                assert_eq!(
                    error_codes(&body),
                    vec![
                        ("enter_current_password".into(), "current_password".into()),
                        ("password_too_short".into(), "new_password".into())
                    ]
                );
                assert_eq!(
                    body["errors"][0]["message"],
                    "Please type your current password."
                );
                let (status, body) = agent
                    .post(
                        "account/password/change",
                        json!({"current_password": OLD_PASSWORD, "new_password": ""}),
                    )
                    .await;
                assert_eq!(status, 400);
                assert_eq!(
                    error_codes(&body),
                    vec![("required".into(), "new_password".into())]
                );

                let (status, body) = agent
                    .send(
                        "POST",
                        "account/password/change",
                        Some(
                            json!({"current_password": OLD_PASSWORD, "new_password": NEW_PASSWORD}),
                        ),
                        &[("User-Agent", "notice-test/1.0")],
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"]["user"]["id"], id);
                assert_eq!(body["meta"]["is_authenticated"], true);
                assert_eq!(body["data"]["methods"][0]["method"], "password");
                let new_token = agent.token.clone().expect("a session");
                assert_ne!(new_token, token, "the key is cycled");
                if client == "app" {
                    assert_eq!(body["meta"]["session_token"], new_token.as_str());
                    assert!(
                        !app_token_alive(&server, &token).await,
                        "the old key is dead"
                    );
                }
                let (status, _) = agent.get("auth/session", &[]).await;
                assert_eq!(status, 200, "the session stays logged in");
                assert_eq!(
                    app_session_statuses(&server, &other, 2).await,
                    vec![401, 410],
                    "other sessions are logged out, then gone"
                );
                assert!(password_is(&server, id, NEW_PASSWORD).await);
                // The notice says where the change came from (allauth's
                // timestamp, ip and user_agent).
                let mails = mails(&server).await;
                let (_, _, text) = mails
                    .iter()
                    .find(|(to, subject, _)| {
                        to == &email && subject.contains("password was changed")
                    })
                    .expect("a password-changed notice");
                assert!(
                    text.contains(
                        "from the IP address 127.0.0.1, with the browser: notice-test/1.0."
                    ),
                    "{text}"
                );
                assert!(text.contains(" GMT "), "the date: {text}");
            }

            // Through the generated client.
            let id = user(
                &server,
                "jack",
                "jack@example.com",
                true,
                Some(OLD_PASSWORD),
            )
            .await;
            let token = session_for(&server, "app", id, 1.5).await;
            let response = server
                .client()
                .password_change(
                    types::Client::App,
                    Some(&token),
                    &types::ChangePasswordInput {
                        current_password: Some(OLD_PASSWORD.to_owned().into()),
                        new_password: NEW_PASSWORD.to_owned().into(),
                    },
                )
                .await
                .expect("200")
                .into_inner();
            let body = serde_json::to_value(response).expect("json");
            assert_eq!(body["data"]["user"]["id"], id);
            assert!(body["meta"]["session_token"].is_string());
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_user_without_a_password_sets_one() {
    on_each_backend(
        |config| config.account.email_notifications = true,
        |server| async move {
            for client in CLIENTS {
                let email = format!("kim-{client}@example.com");
                let id = user(&server, &format!("kim_{client}"), &email, true, None).await;
                let token = session_for(&server, client, id, 1.5).await;
                let mut agent = Agent::with_token(&server, client, &token);
                let (status, body) = agent
                    .post(
                        "account/password/change",
                        json!({"current_password": "guess", "new_password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 400);
                assert_eq!(
                    error_codes(&body),
                    vec![("enter_current_password".into(), "current_password".into())]
                );
                let (status, body) = agent
                    .post(
                        "account/password/change",
                        json!({"new_password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"]["user"]["has_usable_password"], true);
                assert!(password_is(&server, id, NEW_PASSWORD).await);
                assert!(mails(&server)
                    .await
                    .iter()
                    .any(|(to, subject, _)| to == &email && subject.contains("password was set")));
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn logout_on_password_change_ends_the_session() {
    on_each_backend(
        |config| config.account.logout_on_password_change = true,
        |server| async move {
            for client in CLIENTS {
                let id = user(
                    &server,
                    &format!("lee_{client}"),
                    &format!("lee-{client}@example.com"),
                    true,
                    Some(OLD_PASSWORD),
                )
                .await;
                let token = session_for(&server, client, id, 1.5).await;
                let mut agent = Agent::with_token(&server, client, &token);
                let (status, body) = agent
                    .post(
                        "account/password/change",
                        json!({"current_password": OLD_PASSWORD, "new_password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 401, "{body}");
                assert_eq!(body["meta"]["is_authenticated"], false);
                if client == "app" {
                    assert!(!app_token_alive(&server, &token).await);
                } else {
                    assert!(agent.token.is_none(), "the session cookie is cleared");
                }
                assert!(password_is(&server, id, NEW_PASSWORD).await);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn changes_are_rate_limited_per_user() {
    on_each_backend(
        |_| {},
        |server| async move {
            let id = user(&server, "max", "max@example.com", true, Some(OLD_PASSWORD)).await;
            let token = session_for(&server, "app", id, 1.5).await;
            let mut agent = Agent::with_token(&server, "app", &token);
            // change_password: 5/m per user, failed attempts included.
            for _ in 0..5 {
                let (status, _) = agent
                    .post(
                        "account/password/change",
                        json!({"current_password": "wrong", "new_password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 400);
            }
            let (status, body) = agent
                .post(
                    "account/password/change",
                    json!({"current_password": OLD_PASSWORD, "new_password": NEW_PASSWORD}),
                )
                .await;
            assert_eq!((status, body), (429, json!({"status": 429})));
            assert!(password_is(&server, id, OLD_PASSWORD).await);
            server
        },
    )
    .await;
}

/// After a password change the user's other sessions are logged out on their
/// next use and gone after it (Django flushes a session whose password hash
/// is stale): a JWT access token of another session answers 401, then 410;
/// another browser gets the anonymous 401 with its session cookie deleted.
#[tokio::test]
async fn other_sessions_are_logged_out_then_gone() {
    let jwt = |config: &mut Config| {
        config.headless.token_strategy = TokenStrategy::Jwt;
        config.headless.jwt_algorithm = JwtAlgorithm::HS256;
    };
    on_each_backend(jwt, |server| async move {
        let id = user(&server, "gus", "gus@example.com", true, Some(OLD_PASSWORD)).await;
        let browser = session_for(&server, "browser", id, now_secs()).await;
        let mut changer = Agent::new(&server, "app");
        let (status, _) = changer
            .post(
                "auth/login",
                json!({"username": "gus", "password": OLD_PASSWORD}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, body) = Agent::new(&server, "app")
            .post(
                "auth/login",
                json!({"username": "gus", "password": OLD_PASSWORD}),
            )
            .await;
        assert_eq!(status, 200);
        let bearer = format!(
            "Bearer {}",
            body["meta"]["access_token"].as_str().expect("access")
        );

        let (status, body) = changer
            .post(
                "account/password/change",
                json!({"current_password": OLD_PASSWORD, "new_password": NEW_PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");

        let mut other_app = Agent::new(&server, "app");
        let (status, body) = other_app
            .get("auth/session", &[("Authorization", &bearer)])
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["meta"]["is_authenticated"], false);
        let (status, _) = other_app
            .get("auth/session", &[("Authorization", &bearer)])
            .await;
        assert_eq!(status, 410);

        let response = raw()
            .get(server.url("/_allauth/browser/v1/auth/session"))
            .header("Cookie", format!("sessionid={browser}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
        assert_eq!(
            response_cookie(&response, "sessionid").as_deref(),
            Some(""),
            "the revoked session's cookie is deleted"
        );
        let (status, _) = Agent::with_token(&server, "browser", &browser)
            .get("auth/session", &[])
            .await;
        assert_eq!(status, 401, "and stays anonymous");
        // The changer's own session lives on.
        let (status, _) = changer.get("auth/session", &[]).await;
        assert_eq!(status, 200);
        server
    })
    .await;
}

/// Like a Django form, a password change reports every field's error at
/// once, in field order; an explicit null is a missing field.
#[tokio::test]
async fn change_names_every_missing_field() {
    on_each_backend(
        |_| {},
        |server| async move {
            for client in CLIENTS {
                let id = user(
                    &server,
                    &format!("june_{client}"),
                    &format!("june-{client}@example.com"),
                    true,
                    Some(OLD_PASSWORD),
                )
                .await;
                let token = session_for(&server, client, id, 1.5).await;
                let mut agent = Agent::with_token(&server, client, &token);
                // Every field's error at once, in field order.
                for empty in [
                    json!({}),
                    json!({"current_password": null, "new_password": null}),
                ] {
                    let (status, body) = agent.post("account/password/change", empty).await;
                    assert_eq!(status, 400);
                    assert_eq!(
                        error_codes(&body),
                        vec![
                            ("required".into(), "current_password".into()),
                            ("required".into(), "new_password".into())
                        ]
                    );
                }
            }
            server
        },
    )
    .await;
}
