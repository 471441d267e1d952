//! `auth/password/request` and `auth/password/reset` for both clients: reset
//! by link and by code, enumeration prevention, the unknown-account mail,
//! single-use keys, attempts, rate limits and login on reset.

use allauth_api::types;
use allauth_server::app::security::codes;
use allauth_server::config::{Config, PreventEnumeration};
use allauth_server::db::{self, email_addresses, sessions, users};
use serde_json::{json, Value};

use crate::harness::{
    app_session_statuses, code_in, mails, on_each_backend, reset_key_to, session_for, user, Agent,
    TestServer, CLIENTS,
};

pub const OLD_PASSWORD: &str = "old-secret-pass";
pub const NEW_PASSWORD: &str = "brand-new-secret";

pub async fn password_hash(server: &TestServer, user_id: i64) -> Option<String> {
    server
        .server
        .context()
        .db
        .run(move |conn| users::by_id(conn, user_id))
        .await
        .expect("user read")
        .and_then(|u| u.password_hash)
}

pub async fn password_is(server: &TestServer, user_id: i64, password: &str) -> bool {
    let Some(hash) = password_hash(server, user_id).await else {
        return false;
    };
    server
        .server
        .context()
        .passwords
        .verify(password, &hash)
        .await
        .expect("verify")
        .is_ok()
}

/// Asks for a reset link for `email` and sets `NEW_PASSWORD` with its key;
/// the reset's answer.
async fn reset_by_link(server: &TestServer, agent: &mut Agent, email: &str) -> (u16, Value) {
    let (status, body) = agent
        .post("auth/password/request", json!({ "email": email }))
        .await;
    assert_eq!(status, 200, "{body}");
    let key = reset_key_to(server, email).await;
    agent
        .post(
            "auth/password/reset",
            json!({"key": key, "password": NEW_PASSWORD}),
        )
        .await
}

/// The code in the last reset code mail to `to`.
async fn mailed_code(server: &TestServer, to: &str) -> String {
    let mails = mails(server).await;
    let (_, _, text) = mails
        .iter()
        .rev()
        .find(|(addr, subject, _)| addr == to && subject.contains("reset code"))
        .expect("a reset code mail");
    code_in(text)
}

fn notifications(config: &mut Config) {
    config.account.email_notifications = true;
}

fn by_code(config: &mut Config) {
    config.account.password_reset_by_code_enabled = true;
}

#[tokio::test]
async fn reset_by_link_for_both_clients() {
    on_each_backend(notifications, |server| async move {
        for client in CLIENTS {
            let email = format!("alice-{client}@example.com");
            let id = user(
                &server,
                &format!("alice_{client}"),
                &email,
                true,
                Some(OLD_PASSWORD),
            )
            .await;
            let other_session = session_for(&server, "app", id, 1.5).await;

            let mut agent = Agent::new(&server, client);
            let (status, body) = agent
                .post(
                    "auth/password/request",
                    json!({"email": email.to_uppercase()}),
                )
                .await;
            assert_eq!((status, body), (200, json!({"status": 200})));
            let key = reset_key_to(&server, &email).await;

            let (status, body) = agent
                .get("auth/password/reset", &[("X-Password-Reset-Key", &key)])
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], id);
            assert_eq!(body["data"]["user"]["email"], email.as_str());
            assert_eq!(body["data"]["user"]["has_usable_password"], true);
            // Only the named header is read: another one that is not text
            // (a proxy's Latin-1 note) does not lose the key.
            let (status, body) = agent
                .get(
                    "auth/password/reset",
                    &[("X-Password-Reset-Key", &key), ("X-Forwarded-Note", "café")],
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], id);

            // Missing and bad keys.
            let (status, body) = agent.get("auth/password/reset", &[]).await;
            assert_eq!(status, 400);
            assert_eq!(
                body["errors"],
                json!([{"code": "required", "param": "key", "message": "This field is required."}])
            );
            let tampered = format!("{key}x");
            for bad in ["1-abc", tampered.as_str()] {
                let (status, body) = agent
                    .get("auth/password/reset", &[("X-Password-Reset-Key", bad)])
                    .await;
                assert_eq!(status, 400);
                assert_eq!(body["errors"][0]["code"], "invalid_password_reset");
                assert_eq!(body["errors"][0]["param"], "key");
            }

            // Validation: the password against the key's user; a bad key alone.
            let (status, body) = agent
                .post(
                    "auth/password/reset",
                    json!({"key": key, "password": "abc"}),
                )
                .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "password_too_short");
            assert_eq!(body["errors"][0]["param"], "password");
            let (status, body) = agent
                .post(
                    "auth/password/reset",
                    json!({"key": "nope", "password": "  "}),
                )
                .await;
            assert_eq!(status, 400);
            let codes: Vec<_> = body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["code"].clone(), e["param"].clone()))
                .collect();
            assert_eq!(
                codes,
                vec![
                    (json!("invalid_password_reset"), json!("key")),
                    (json!("required"), json!("password"))
                ]
            );
            let (status, body) = agent.post("auth/password/reset", json!({})).await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"].as_array().unwrap().len(), 2);

            // The reset: 401 (no login on reset), the password set, sessions ended.
            let (status, body) = agent
                .post(
                    "auth/password/reset",
                    json!({"key": key, "password": NEW_PASSWORD}),
                )
                .await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["meta"]["is_authenticated"], false);
            assert!(password_is(&server, id, NEW_PASSWORD).await);
            assert_eq!(
                app_session_statuses(&server, &other_session, 2).await,
                vec![401, 410],
                "the user's other sessions are logged out, then gone"
            );

            // The key was single use.
            let (status, body) = agent
                .post(
                    "auth/password/reset",
                    json!({"key": key, "password": "another-secret-1"}),
                )
                .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "invalid_password_reset");
            assert!(mails(&server)
                .await
                .iter()
                .any(|(to, subject, _)| to == &email && subject.contains("password was reset")));
        }

        // Through the generated client (app).
        let id = user(
            &server,
            "carol",
            "carol@example.com",
            true,
            Some(OLD_PASSWORD),
        )
        .await;
        let ok = server
            .client()
            .password_reset_request(
                types::Client::App,
                None,
                &types::RequestPasswordResetInput {
                    email: "carol@example.com".to_owned().into(),
                },
            )
            .await
            .expect("200");
        assert_eq!(
            serde_json::to_value(ok.into_inner()).unwrap(),
            json!({"status": 200})
        );
        let key = reset_key_to(&server, "carol@example.com").await;
        let info = server
            .client()
            .password_reset_view(types::Client::App, &key, None)
            .await
            .expect("200")
            .into_inner();
        assert_eq!(
            serde_json::to_value(&info).unwrap()["data"]["user"]["id"],
            id
        );
        let error = server
            .client()
            .password_reset_confirm(
                types::Client::App,
                None,
                &types::ResetPasswordInput {
                    key: key.clone(),
                    password: NEW_PASSWORD.to_owned().into(),
                },
            )
            .await
            .expect_err("401");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
        assert!(password_is(&server, id, NEW_PASSWORD).await);
        server
    })
    .await;
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer() {
    on_each_backend(
        |_| {},
        |server| async move {
            for client in CLIENTS {
                let mut agent = Agent::new(&server, client);
                let (status, body) = agent
                    .post(
                        "auth/password/request",
                        json!({"email": "nobody@example.com"}),
                    )
                    .await;
                assert_eq!((status, body), (200, json!({"status": 200})));
                for (input, code) in [
                    (json!({}), "required"),
                    (json!({"email": " "}), "required"),
                    (json!({"email": "bad"}), "invalid"),
                ] {
                    let (status, body) = agent.post("auth/password/request", input).await;
                    assert_eq!(status, 400);
                    assert_eq!(body["errors"][0]["code"], code);
                    assert_eq!(body["errors"][0]["param"], "email");
                }
            }
            let mails = mails(&server).await;
            assert_eq!(mails.len(), 2, "one unknown-account mail per request");
            assert!(mails.iter().all(
                |(to, subject, _)| to == "nobody@example.com" && subject.contains("No account")
            ));
            server
        },
    )
    .await;

    // Without the mail, and without enumeration prevention.
    on_each_backend(
        |config| {
            config.account.email_unknown_accounts = false;
            config.account.prevent_enumeration = PreventEnumeration::Disabled;
        },
        |server| async move {
            let mut agent = Agent::new(&server, "app");
            let (status, body) = agent
                .post(
                    "auth/password/request",
                    json!({"email": "nobody@example.com"}),
                )
                .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "unknown_email");
            assert_eq!(body["errors"][0]["param"], "email");
            assert!(mails(&server).await.is_empty());
            server
        },
    )
    .await;
}

/// A successful reset wipes the failed-login counters of the user's
/// addresses (allauth's `_delete_login_attempts_cached_email`): a login
/// locked out by wrong passwords works again with the new password.
#[tokio::test]
async fn reset_clears_the_failed_login_lockout() {
    on_each_backend(
        // allauth keys the counter by the email credential (a username
        // login's counter is not among those a reset clears).
        |config| {
            let by_email = "[account]\nlogin_methods = [\"email\"]\nsignup_fields = [\"email*\", \"password1*\"]";
            config.account = Config::from_sources(by_email, &[])
                .expect("login by email")
                .account;
        },
        |server| async move {
            for client in CLIENTS {
                let email = format!("locked-{client}@example.com");
                user(
                    &server,
                    &format!("locked_{client}"),
                    &email,
                    true,
                    Some(OLD_PASSWORD),
                )
                .await;
                let mut agent = Agent::new(&server, client);
                // login_failed allows 5 per address in 5 minutes.
                for _ in 0..5 {
                    let (status, body) = agent
                        .post(
                            "auth/login",
                            json!({"email": email, "password": "wrong-guess"}),
                        )
                        .await;
                    assert_eq!(status, 400, "{body}");
                    assert_eq!(body["errors"][0]["code"], "email_password_mismatch");
                }
                let (status, body) = agent
                    .post(
                        "auth/login",
                        json!({"email": email, "password": OLD_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 400, "{body}");
                assert_eq!(body["errors"][0]["code"], "too_many_login_attempts");

                let (status, body) = reset_by_link(&server, &mut agent, &email).await;
                assert_eq!(status, 401, "{body}");

                let (status, body) = agent
                    .post(
                        "auth/login",
                        json!({"email": email, "password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(
                    status, 200,
                    "{client}: the lockout outlived the reset: {body}"
                );
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn requests_and_resets_are_rate_limited() {
    on_each_backend(
        |_| {},
        |server| async move {
            user(
                &server,
                "dave",
                "dave@example.com",
                true,
                Some(OLD_PASSWORD),
            )
            .await;
            let mut agent = Agent::new(&server, "app");
            // reset_password: 5/m per address.
            for _ in 0..5 {
                let (status, _) = agent
                    .post(
                        "auth/password/request",
                        json!({"email": "dave@example.com"}),
                    )
                    .await;
                assert_eq!(status, 200);
            }
            let (status, body) = agent
                .post(
                    "auth/password/request",
                    json!({"email": "DAVE@example.com"}),
                )
                .await;
            assert_eq!((status, body), (429, json!({"status": 429})));
            let (status, _) = agent
                .post(
                    "auth/password/request",
                    json!({"email": "other@example.com"}),
                )
                .await;
            assert_eq!(status, 200, "another address is counted apart");
            // reset_password_from_key: 20/m per client address, GET not counted.
            for _ in 0..3 {
                let (status, _) = agent
                    .get("auth/password/reset", &[("X-Password-Reset-Key", "x")])
                    .await;
                assert_eq!(status, 400);
            }
            for _ in 0..20 {
                let (status, _) = agent
                    .post(
                        "auth/password/reset",
                        json!({"key": "x", "password": NEW_PASSWORD}),
                    )
                    .await;
                assert_eq!(status, 400);
            }
            let (status, body) = agent
                .post(
                    "auth/password/reset",
                    json!({"key": "x", "password": NEW_PASSWORD}),
                )
                .await;
            assert_eq!((status, body), (429, json!({"status": 429})));
            server
        },
    )
    .await;
}

#[tokio::test]
async fn login_on_password_reset_logs_in_with_a_record() {
    on_each_backend(
        |config| config.account.login_on_password_reset = true,
        |server| async move {
            for client in CLIENTS {
                let email = format!("erin-{client}@example.com");
                let id = user(
                    &server,
                    &format!("erin_{client}"),
                    &email,
                    true,
                    Some(OLD_PASSWORD),
                )
                .await;
                let mut agent = Agent::new(&server, client);
                let (status, body) = reset_by_link(&server, &mut agent, &email).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"]["user"]["id"], id);
                assert_eq!(body["data"]["methods"][0]["method"], "password_reset");
                assert!(body["data"]["methods"][0].get("email").is_none());
                assert_eq!(body["meta"]["is_authenticated"], true);
                if client == "app" {
                    assert!(body["meta"]["session_token"].is_string());
                }
                let (status, body) = agent.get("auth/session", &[]).await;
                assert_eq!(status, 200, "the new session works: {body}");
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn reset_by_code() {
    on_each_backend(
        |config| {
            by_code(config);
            config.account.login_on_password_reset = true;
        },
        |server| async move {
            for client in CLIENTS {
                let email = format!("frank-{client}@example.com");
                let id = user(&server, &format!("frank_{client}"), &email, false, Some(OLD_PASSWORD)).await;
                let mut agent = Agent::new(&server, client);

                // Nothing pending yet: 409.
                let (status, body) = agent.get("auth/password/reset", &[("X-Password-Reset-Key", "x")]).await;
                assert_eq!((status, body), (409, json!({"status": 409})));

                let (status, body) = agent.post("auth/password/request", json!({"email": email})).await;
                assert_eq!(status, 401, "{body}");
                let flows = body["data"]["flows"].as_array().unwrap();
                assert_eq!(flows.last(), Some(&json!({"id": "password_reset_by_code", "is_pending": true})));
                assert!(agent.token.is_some());
                let code = mailed_code(&server, &email).await;

                let (status, body) = agent.get("auth/password/reset", &[("X-Password-Reset-Key", "BBBB-BBBB")]).await;
                assert_eq!(status, 400);
                assert_eq!(body["errors"], json!([{"code": "incorrect_code", "param": "key", "message": "Incorrect code."}]));
                let typed = code.to_lowercase().replace('-', " ");
                let (status, body) = agent.get("auth/password/reset", &[("X-Password-Reset-Key", &typed)]).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"]["user"]["id"], id);
                // The code proved the address.
                let verified = server.server.context().db.run(move |conn| email_addresses::for_user(conn, id)).await.unwrap();
                assert!(verified[0].verified);

                // Wrong code and short password: both errors.
                let (status, body) = agent.post("auth/password/reset", json!({"key": "BBBB-BBBB", "password": "abc"})).await;
                assert_eq!(status, 400);
                let found: Vec<_> = body["errors"].as_array().unwrap().iter().map(|e| e["code"].clone()).collect();
                assert_eq!(found, vec![json!("incorrect_code"), json!("password_too_short")]);

                let (status, body) = agent.post("auth/password/reset", json!({"key": code, "password": NEW_PASSWORD})).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"]["methods"][0]["method"], "password_reset");
                assert_eq!(body["data"]["methods"][0]["email"], email.as_str());
                assert!(password_is(&server, id, NEW_PASSWORD).await);

                // The flow is over.
                let (status, _) = agent.post("auth/password/reset", json!({"key": code, "password": NEW_PASSWORD})).await;
                assert_eq!(status, 409);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn reset_codes_run_out_of_attempts_and_time() {
    on_each_backend(by_code, |server| async move {
        user(
            &server,
            "gina",
            "gina@example.com",
            true,
            Some(OLD_PASSWORD),
        )
        .await;
        for email in ["gina@example.com", "nobody@example.com"] {
            let mut agent = Agent::new(&server, "app");
            let (status, body) = agent
                .post("auth/password/request", json!({"email": email}))
                .await;
            assert_eq!(status, 401, "the same answer for {email}: {body}");
            assert_eq!(
                body["data"]["flows"].as_array().unwrap().last(),
                Some(&json!({"id": "password_reset_by_code", "is_pending": true}))
            );
            // Three wrong codes (GET or POST alike) end the flow.
            let (status, _) = agent
                .get(
                    "auth/password/reset",
                    &[("X-Password-Reset-Key", "BBBB-BBBB")],
                )
                .await;
            assert_eq!(status, 400);
            let (status, _) = agent
                .post(
                    "auth/password/reset",
                    json!({"key": "BBBB-BBBB", "password": NEW_PASSWORD}),
                )
                .await;
            assert_eq!(status, 400);
            let (status, body) = agent
                .post("auth/password/reset", json!({"password": NEW_PASSWORD}))
                .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "required");
            let (status, body) = agent
                .get(
                    "auth/password/reset",
                    &[("X-Password-Reset-Key", "BBBB-BBBB")],
                )
                .await;
            assert_eq!(status, 409, "{email}: {body}");
            let (status, body) = agent.get("auth/session", &[]).await;
            assert_eq!(status, 401);
            assert_eq!(
                body["data"]["flows"].as_array().unwrap().last(),
                Some(&json!({"id": "password_reset_by_code", "is_pending": false}))
            );
        }
        // A right code after the maximum is too late.
        let mut agent = Agent::new(&server, "browser");
        agent
            .post(
                "auth/password/request",
                json!({"email": "gina@example.com"}),
            )
            .await;
        let code = mailed_code(&server, "gina@example.com").await;
        for _ in 0..3 {
            agent
                .get(
                    "auth/password/reset",
                    &[("X-Password-Reset-Key", "BBBB-BBBB")],
                )
                .await;
        }
        let (status, _) = agent
            .get("auth/password/reset", &[("X-Password-Reset-Key", &code)])
            .await;
        assert_eq!(status, 409);
        server
    })
    .await;

    // A code outlives `password_reset_by_code_timeout` (180 s): 409.
    on_each_backend(by_code, |server| async move {
        user(
            &server,
            "hank",
            "hank@example.com",
            true,
            Some(OLD_PASSWORD),
        )
        .await;
        let mut agent = Agent::new(&server, "app");
        agent
            .post(
                "auth/password/request",
                json!({"email": "hank@example.com"}),
            )
            .await;
        let code = mailed_code(&server, "hank@example.com").await;
        let key_hash = codes::token_hash(agent.token.as_deref().expect("token"));
        server
            .server
            .context()
            .db
            .run(move |conn| {
                let row = sessions::by_key_hash(conn, &key_hash, db::now_millis())?
                    .expect("the session row");
                let mut data: Value = serde_json::from_str(&row.data).expect("session data");
                let process = &mut data["processes"]["password_reset"];
                let started = process["started_at"].as_i64().expect("started_at");
                process["started_at"] = json!(started - 181_000);
                sessions::update_data(conn, row.id, &data.to_string())?;
                Ok(())
            })
            .await
            .expect("moved back in time");
        let (status, body) = agent.get("auth/session", &[]).await;
        assert_eq!(status, 401);
        assert_eq!(
            body["data"]["flows"].as_array().unwrap().last(),
            Some(&json!({"id": "password_reset_by_code", "is_pending": false}))
        );
        let (status, _) = agent
            .get("auth/password/reset", &[("X-Password-Reset-Key", &code)])
            .await;
        assert_eq!(status, 409);
        server
    })
    .await;
}
