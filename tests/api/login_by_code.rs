//! `auth/code/{request,confirm,resend}` for both clients: the pending 401
//! for known and unknown addresses alike, the mailed code, wrong codes and
//! the attempts limit, the code's timeout, resends, rate limits, the
//! logged-in answer, and the login with its `code` record.

use allauth_api::types;
use allauth_server::app::security::codes;
use allauth_server::config::Config;
use allauth_server::db::{self, email_addresses, sessions};
use serde_json::{json, Value};

use crate::harness::{
    code_in, mails, now_secs, on_each_backend, session_for, user, Agent, CLIENTS,
};

fn enabled(config: &mut Config) {
    config.account.login_by_code_enabled = true;
}

/// The anonymous flows with `login_by_code` pending (signup's presence
/// depends on what else is built).
fn pending_flows() -> Value {
    let mut flows = vec![
        json!({"id": "login"}),
        json!({"id": "login_by_code", "is_pending": true}),
    ];
    if allauth_server::app::features::Built::CURRENT.signup {
        flows.push(json!({"id": "signup"}));
    }
    Value::Array(flows)
}

async fn request(agent: &mut Agent, email: &str) -> (u16, Value) {
    agent
        .call("POST", "auth/code/request", Some(json!({ "email": email })))
        .await
}

async fn confirm(agent: &mut Agent, code: &str) -> (u16, Value) {
    agent
        .call("POST", "auth/code/confirm", Some(json!({ "code": code })))
        .await
}

fn error(status: u16, code: &str, param: &str, message: &str) -> Value {
    json!({"status": status, "errors": [{"code": code, "param": param, "message": message}]})
}

#[tokio::test]
async fn a_mailed_code_logs_in_and_verifies_the_address() {
    on_each_backend(enabled, |server| async move {
        for (n, client) in ["app", "browser"].into_iter().enumerate() {
            let email = format!("alice{n}@example.com");
            let user_id = user(&server, &format!("alice{n}"), &email, false, None).await;
            let mut agent = Agent::new(&server, client);
            let (status, body) = request(&mut agent, &format!("  Alice{n}@EXAMPLE.com ")).await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["data"]["flows"], pending_flows());
            assert_eq!(body["meta"]["is_authenticated"], false);
            assert_eq!(body["meta"].get("session_token").is_some(), client == "app");
            let first_token = agent.token.clone().expect("a session");

            let sent = mails(&server).await;
            let (to, subject, text) = sent.last().expect("mail").clone();
            assert_eq!(to, email);
            assert_eq!(subject, "Your sign-in code");
            let code = code_in(&text);

            // The pending stage shows in the session.
            let (status, body) = agent.call("GET", "auth/session", None).await;
            assert_eq!((status, &body["data"]["flows"]), (401, &pending_flows()));

            let (status, body) = confirm(&mut agent, "BBBB-BBBB").await;
            assert_eq!(
                (status, body),
                (400, error(400, "incorrect_code", "code", "Incorrect code."))
            );

            // Case, spaces and dashes do not matter.
            let typed = format!(" {} ", code.replace('-', " ").to_lowercase());
            let (status, body) = confirm(&mut agent, &typed).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], user_id);
            assert_eq!(body["data"]["user"]["email"], email);
            let methods = body["data"]["methods"].as_array().expect("methods");
            assert_eq!(methods.len(), 1);
            assert_eq!(methods[0]["method"], "code");
            assert_eq!(methods[0]["email"], email);
            assert!(methods[0]["at"].as_f64().is_some());
            assert_eq!(body["meta"]["is_authenticated"], true);
            assert_ne!(
                agent.token.as_deref(),
                Some(first_token.as_str()),
                "the key is rotated"
            );
            assert_eq!(body["meta"].get("session_token").is_some(), client == "app");

            // The address is verified now; the new session is logged in.
            let db = server.server.context().db.clone();
            let lower = email.clone();
            let row = db
                .run(move |conn| email_addresses::for_user_by_email_lower(conn, user_id, &lower))
                .await
                .expect("row")
                .expect("address");
            assert!(row.verified);
            let (status, _) = agent.call("GET", "auth/session", None).await;
            assert_eq!(status, 200);
            // The stage is gone: confirming again is a conflict.
            let (status, body) = confirm(&mut agent, &code).await;
            assert_eq!((status, body), (409, json!({"status": 409})));
        }
        server
    })
    .await;
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer_and_never_log_in() {
    on_each_backend(enabled, |server| async move {
        user(&server, "bob", "bob@example.com", true, None).await;
        let mut known = Agent::new(&server, "app");
        let (_, known_body) = request(&mut known, "bob@example.com").await;
        for client in CLIENTS {
            let mut agent = Agent::new(&server, client);
            let (status, mut body) = request(&mut agent, "nobody@example.com").await;
            assert_eq!(status, 401);
            let mut expected = known_body.clone();
            if client == "browser" {
                expected["meta"]
                    .as_object_mut()
                    .expect("meta")
                    .remove("session_token");
            }
            body["meta"]["session_token"] = expected["meta"]["session_token"].clone();
            if client == "browser" {
                body["meta"]
                    .as_object_mut()
                    .expect("meta")
                    .remove("session_token");
            }
            assert_eq!(body, expected);
            let (to, subject, text) = mails(&server).await.last().expect("mail").clone();
            assert_eq!(to, "nobody@example.com");
            assert_eq!(subject, "No account for this address");
            assert!(text.contains("/accounts/signup/"), "{text}");
            for _ in 0..2 {
                let (status, _) = confirm(&mut agent, "BCDF-GHJK").await;
                assert_eq!(status, 400);
            }
            // The third wrong code ends the flow.
            let (status, body) = confirm(&mut agent, "BCDF-GHJK").await;
            assert_eq!(
                (status, body),
                (400, error(400, "incorrect_code", "code", "Incorrect code."))
            );
            let (status, body) = confirm(&mut agent, "BCDF-GHJK").await;
            assert_eq!((status, body), (409, json!({"status": 409})));
        }
        server
    })
    .await;
    // Without `email_unknown_accounts` nothing is mailed, same answer.
    on_each_backend(
        |c| {
            enabled(c);
            c.account.email_unknown_accounts = false;
        },
        |server| async move {
            let mut agent = Agent::new(&server, "app");
            let (status, body) = request(&mut agent, "nobody@example.com").await;
            assert_eq!((status, &body["data"]["flows"]), (401, &pending_flows()));
            assert!(mails(&server).await.is_empty());
            server
        },
    )
    .await;
}

#[tokio::test]
async fn bad_input_and_enumeration_off() {
    on_each_backend(
        |c| {
            enabled(c);
            c.account.prevent_enumeration = allauth_server::config::PreventEnumeration::Disabled;
        },
        |server| async move {
            for client in CLIENTS {
                let mut agent = Agent::new(&server, client);
                let (status, body) = request(&mut agent, "nope").await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error(400, "invalid", "email", "Enter a valid email address.")
                    )
                );
                let (status, body) = agent
                    .call("POST", "auth/code/request", Some(json!({})))
                    .await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error(400, "required", "email", "This field is required.")
                    )
                );
                let (status, body) = request(&mut agent, "nobody@example.com").await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error(
                            400,
                            "unknown_email",
                            "email",
                            "The email address is not assigned to any user account."
                        )
                    )
                );
                // Nothing pending: confirm and resend conflict.
                let (status, body) = confirm(&mut agent, "BCDF-GHJK").await;
                assert_eq!((status, body), (409, json!({"status": 409})));
                let (status, body) = agent.call("POST", "auth/code/resend", None).await;
                assert_eq!((status, body), (409, json!({"status": 409})));
            }
            // Through the generated client.
            let error = server
                .client()
                .login_code_confirm(
                    types::Client::App,
                    None,
                    &types::ConfirmLoginCodeInput {
                        code: "x".to_string().into(),
                    },
                )
                .await
                .expect_err("409");
            assert_eq!(error.status().map(|s| s.as_u16()), Some(409));
            let error = server
                .client()
                .login_code_resend(types::Client::App, None)
                .await
                .expect_err("409");
            assert_eq!(error.status().map(|s| s.as_u16()), Some(409));
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_missing_code_counts_and_the_code_expires() {
    on_each_backend(enabled, |server| async move {
        user(&server, "carol", "carol@example.com", true, None).await;
        let mut agent = Agent::new(&server, "app");
        request(&mut agent, "carol@example.com").await;
        let (status, body) = agent
            .call("POST", "auth/code/confirm", Some(json!({})))
            .await;
        assert_eq!(
            (status, body),
            (
                400,
                error(400, "required", "code", "This field is required.")
            )
        );
        confirm(&mut agent, "BCDF-GHJK").await;
        // Third failure (of 3): the flow ends, even for the right code later.
        let code = code_in(&mails(&server).await.last().expect("mail").2);
        let (status, _) = confirm(&mut agent, "BCDF-GHJK").await;
        assert_eq!(status, 400);
        let (status, _) = confirm(&mut agent, &code).await;
        assert_eq!(status, 409);
        let (status, body) = agent.call("GET", "auth/session", None).await;
        assert_eq!(status, 401);
        assert_eq!(body["data"]["flows"][1], json!({"id": "login_by_code"}));

        // Expiry: move the stage's clock back past the code's 180 s.
        let mut agent = Agent::new(&server, "app");
        request(&mut agent, "carol@example.com").await;
        let code = code_in(&mails(&server).await.last().expect("mail").2);
        let key_hash = codes::token_hash(agent.token.as_deref().expect("token"));
        let db = server.server.context().db.clone();
        db.run(move |conn| {
            let (row, _, _) = sessions::load_with_user(
                conn,
                &sessions::SessionKey::Hash(key_hash),
                db::now_millis(),
            )?
            .expect("session");
            let mut data: Value = serde_json::from_str(&row.data).expect("json");
            let sent = data["login"]["stage"]["code"]["sent_at"]
                .as_i64()
                .expect("sent_at");
            data["login"]["stage"]["code"]["sent_at"] = json!(sent - 181_000);
            let changes = sessions::SessionUpdate {
                data: Some(data.to_string()),
                ..Default::default()
            };
            sessions::update(conn, row.id, &changes)?;
            Ok(())
        })
        .await
        .expect("moved");
        let (status, _) = confirm(&mut agent, &code).await;
        assert_eq!(status, 409);
        server
    })
    .await;
}

#[tokio::test]
async fn resend_within_its_quota() {
    on_each_backend(
        |c| {
            enabled(c);
            c.account.login_by_code_max_resend_count = 1;
        },
        |server| async move {
            user(&server, "dave", "dave@example.com", true, None).await;
            for client in CLIENTS {
                let mut agent = Agent::new(&server, client);
                request(&mut agent, "dave@example.com").await;
                let first = code_in(&mails(&server).await.last().expect("mail").2);
                let (status, body) = agent.call("POST", "auth/code/resend", None).await;
                assert_eq!((status, body), (200, json!({"status": 200})));
                let second = code_in(&mails(&server).await.last().expect("mail").2);
                assert_ne!(first, second);
                let (status, body) = agent.call("POST", "auth/code/resend", None).await;
                assert_eq!((status, body), (409, json!({"status": 409})));
                let (status, _) = confirm(&mut agent, &first).await;
                assert_eq!(status, 400, "the old code is replaced");
                let (status, _) = confirm(&mut agent, &second).await;
                assert_eq!(status, 200);
            }
            // The generated client, with a stage: 200.
            let mut agent = Agent::new(&server, "app");
            request(&mut agent, "dave@example.com").await;
            let token = agent.token.clone().expect("token");
            let response = server
                .client()
                .login_code_resend(types::Client::App, Some(&token))
                .await
                .expect("200");
            assert_eq!(
                serde_json::to_value(response.into_inner()).expect("json"),
                json!({"status": 200})
            );
            server
        },
    )
    .await;
    // allauth's default: no resends.
    on_each_backend(enabled, |server| async move {
        user(&server, "dave", "dave@example.com", true, None).await;
        let mut agent = Agent::new(&server, "app");
        request(&mut agent, "dave@example.com").await;
        let (status, _) = agent.call("POST", "auth/code/resend", None).await;
        assert_eq!(status, 409);
        server
    })
    .await;
}

#[tokio::test]
async fn rate_limited_per_address_and_logged_in_answers_200() {
    on_each_backend(enabled, |server| async move {
        let user_id = user(&server, "erin", "erin@example.com", true, None).await;
        let mut agent = Agent::new(&server, "app");
        for _ in 0..3 {
            let (status, _) = request(&mut agent, "erin@example.com").await;
            assert_eq!(status, 401);
        }
        let (status, body) = request(&mut agent, "ERIN@example.com").await;
        assert_eq!(
            (status, body),
            (
                400,
                error(
                    400,
                    "too_many_login_attempts",
                    "email",
                    "Too many failed login attempts. Try again later."
                )
            )
        );
        // Another address is still fine.
        let (status, _) = request(&mut agent, "frank@example.com").await;
        assert_eq!(status, 401);

        // Logged in: the session's 200; a code cannot be confirmed then.
        for client in CLIENTS {
            let token = session_for(&server, client, user_id, now_secs()).await;
            let mut agent = Agent::with_token(&server, client, &token);
            let (status, body) = request(&mut agent, "someone@example.com").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], user_id);
            let (status, _) = confirm(&mut agent, "BCDF-GHJK").await;
            assert_eq!(status, 409);
        }
        // Through the generated client: a 401 is an error there.
        let input = types::RequestLoginCodeInput {
            email: Some("gina@example.com".to_string().into()),
            phone: None,
        };
        let error = server
            .client()
            .login_code_request(types::Client::App, None, &input)
            .await
            .expect_err("401");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
        server
    })
    .await;
}
