//! Phone numbers for both clients on both databases: signup with a number
//! and its `verify_phone` stage (codes read from the texts the `file`
//! backend delivers), resends and changes within their quotas, wrong
//! codes and the attempts limit (also under concurrency), a taken number
//! hidden by enumeration prevention, login by number and password, login
//! by a code sent by SMS, a signed-in user's change of number, the
//! `change_phone` and `verify_phone` limits, national input with a default
//! region, and every phone operation through the generated client.

use allauth_server::config::SmsBackend;
use allauth_server::config::{
    Config, CountOrFlag, EmailVerification, LoginMethod, SignupFieldName,
};
use allauth_server::db::phone_numbers;
use serde_json::{json, Value};

use crate::harness::{
    codes_of, error, field, last_code_to, on_each_backend, pending_flow, queued_texts, rate_limits,
    text_code, texts_to, user, Agent, TestServer, CLIENTS,
};

/// The oracle's phone setup: login by phone or email, `phone*`, `email*`,
/// `password1*`, mandatory email verification by code, login by code,
/// two resends and two changes; texts to files; no rate limits.
fn phones(config: &mut Config) {
    config.sms.backend = SmsBackend::File;
    config.account.login_methods = vec![LoginMethod::Phone, LoginMethod::Email];
    config.account.signup_fields = vec![
        field(SignupFieldName::Phone, true),
        field(SignupFieldName::Email, true),
        field(SignupFieldName::Password1, true),
    ];
    config.account.email_verification = EmailVerification::Mandatory;
    config.account.email_verification_by_code_enabled = true;
    config.account.login_by_code_enabled = true;
    config.account.phone_verification_supports_resend = CountOrFlag::Flag(true);
    config.account.phone_verification_supports_change = CountOrFlag::Flag(true);
    rate_limits(config, "false");
    config.finalize();
}

/// [`phones`] with allauth's default rate limits.
fn phones_limited(config: &mut Config) {
    phones(config);
    rate_limits(config, "{}");
    config.finalize();
}

/// A user with a password, an address (verified) and a number.
async fn phone_user(server: &TestServer, name: &str, phone: &str, verified: bool) -> i64 {
    let id = user(
        server,
        name,
        &format!("{name}@example.com"),
        true,
        Some("secret-pass-1"),
    )
    .await;
    let db = server.server.context().db.clone();
    let phone = phone.to_string();
    db.run(move |conn| phone_numbers::set(conn, id, &phone, verified, 0))
        .await
        .expect("number stored");
    id
}

async fn stored_number(server: &TestServer, user_id: i64) -> Option<(String, bool)> {
    let db = server.server.context().db.clone();
    db.run(move |conn| phone_numbers::for_user(conn, user_id))
        .await
        .expect("read")
        .map(|p| (p.phone, p.verified))
}

async fn owner_of(server: &TestServer, phone: &str) -> Option<i64> {
    let db = server.server.context().db.clone();
    let phone = phone.to_string();
    db.run(move |conn| phone_numbers::owner(conn, &phone))
        .await
        .expect("read")
        .map(|p| p.user_id)
}

async fn signup(agent: &mut Agent, phone: &str, email: &str) -> (u16, Value) {
    agent
        .call(
            "POST",
            "auth/signup",
            Some(json!({"phone": phone, "email": email, "password": "secret-pass-1"})),
        )
        .await
}

/// A new agent of `client` whose signup with `phone` waits in `verify_phone`.
async fn signed_up(server: &TestServer, client: &'static str, phone: &str, email: &str) -> Agent {
    let mut agent = Agent::new(server, client);
    let (status, body) = signup(&mut agent, phone, email).await;
    assert_eq!(
        (status, pending_flow(&body).as_deref()),
        (401, Some("verify_phone")),
        "{body}"
    );
    agent
}

/// A new agent of `client` logged in with `phone` and the fixtures' password.
async fn logged_in(server: &TestServer, client: &'static str, phone: &str) -> Agent {
    let mut agent = Agent::new(server, client);
    let (status, body) = agent
        .call(
            "POST",
            "auth/login",
            Some(json!({"phone": phone, "password": "secret-pass-1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    agent
}

async fn verify(agent: &mut Agent, code: &str) -> (u16, Value) {
    agent
        .call("POST", "auth/phone/verify", Some(json!({ "code": code })))
        .await
}

#[tokio::test]
async fn a_signup_verifies_its_number_then_its_address() {
    on_each_backend(phones, |server| async move {
        for (n, client) in CLIENTS.into_iter().enumerate() {
            let (phone, email) = (format!("+4915112345{n:03}"), format!("pat{n}@example.com"));
            let mut agent = Agent::new(&server, client);
            let (status, body) = signup(&mut agent, &phone, &email).await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(pending_flow(&body).as_deref(), Some("verify_phone"));
            let flow = body["data"]["flows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == "verify_phone")
                .unwrap()
                .clone();
            assert_eq!(flow, json!({"id": "verify_phone", "is_pending": true}));
            let texts = texts_to(&server, &phone, 1).await;
            assert_eq!(texts[0].kind, "verification_code");
            let code = text_code(&server, &phone, 1).await;
            // No address code yet: the number comes first.
            assert!(crate::harness::mails_to(&server, &email).await.is_empty());

            let (status, body) = agent.call("GET", "auth/session", None).await;
            assert_eq!(
                (status, pending_flow(&body).as_deref()),
                (401, Some("verify_phone"))
            );

            let (status, body) = verify(&mut agent, "BBBB-BBBB").await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("incorrect_code", Some("code")))
            );

            // Case, spaces and dashes do not matter.
            let typed = format!(" {} ", code.replace('-', " ").to_lowercase());
            let (status, body) = verify(&mut agent, &typed).await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(pending_flow(&body).as_deref(), Some("verify_email"));

            let mail_code = last_code_to(&server, &email).await;
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/email/verify",
                    Some(json!({ "key": mail_code })),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["methods"], json!([]));
            // The user payload has no number (as allauth's).
            assert!(body["data"]["user"].get("phone").is_none());

            let (status, body) = agent.call("GET", "account/phone", None).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body,
                json!({"status": 200, "data": [{"phone": phone, "verified": true}]})
            );
        }
        server
    })
    .await;
}

#[tokio::test]
async fn wrong_codes_end_the_stage_at_the_limit() {
    on_each_backend(phones, |server| async move {
        for (n, client) in CLIENTS.into_iter().enumerate() {
            let phone = format!("+4915212345{n:03}");
            let mut agent = signed_up(&server, client, &phone, &format!("w{n}@example.com")).await;
            let code = text_code(&server, &phone, 1).await;
            let (status, body) = agent
                .call("POST", "auth/phone/verify", Some(json!({})))
                .await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("required", Some("code")))
            );
            let (status, _) = verify(&mut agent, "BBBB-BBBB").await;
            assert_eq!(status, 400);
            // The third failure still says why, and ends the stage.
            let (status, body) = verify(&mut agent, "CCCC-CCCC").await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("incorrect_code", Some("code")))
            );
            let (status, body) = verify(&mut agent, &code).await;
            assert_eq!(status, 409, "{body}");
            let (status, body) = agent.call("GET", "auth/session", None).await;
            assert_eq!((status, pending_flow(&body)), (401, None));
        }
        server
    })
    .await;
}

#[tokio::test]
async fn resends_and_changes_keep_to_their_quotas() {
    on_each_backend(phones, |server| async move {
        for (n, client) in CLIENTS.into_iter().enumerate() {
            let phone = format!("+4915512345{n:03}");
            let mut agent = signed_up(&server, client, &phone, &format!("r{n}@example.com")).await;
            let first = text_code(&server, &phone, 1).await;
            for round in 1..=2 {
                let (status, body) = agent.call("POST", "auth/phone/verify/resend", None).await;
                assert_eq!((status, body), (200, json!({"status": 200})));
                let code = text_code(&server, &phone, round + 1).await;
                assert_ne!(code, first);
            }
            let (status, _) = agent.call("POST", "auth/phone/verify/resend", None).await;
            assert_eq!(status, 409, "the third resend is over the quota");
            // The first code was replaced (and this counts as an attempt).
            let (status, _) = verify(&mut agent, &first).await;
            assert_eq!(status, 400);

            // Changing the number at the stage: stored at once, unverified,
            // and the code goes to the new number.
            let user_id = owner_of(&server, &phone).await.expect("the new user");
            let same = agent
                .call("POST", "account/phone", Some(json!({ "phone": phone })))
                .await;
            assert_eq!(
                (same.0, codes_of(&same.1)),
                (400, error("same_as_current", Some("phone")))
            );
            let new_phone = format!("+4915512399{n:03}");
            let (status, body) = agent
                .call("POST", "account/phone", Some(json!({ "phone": new_phone })))
                .await;
            assert_eq!(status, 202, "{body}");
            assert_eq!(
                body,
                json!({"status": 202, "data": [{"phone": new_phone, "verified": false}]})
            );
            assert_eq!(
                stored_number(&server, user_id).await,
                Some((new_phone.clone(), false))
            );
            let other = format!("+4915512388{n:03}");
            let (status, _) = agent
                .call("POST", "account/phone", Some(json!({ "phone": other })))
                .await;
            assert_eq!(status, 202);
            let (status, _) = agent
                .call(
                    "POST",
                    "account/phone",
                    Some(json!({ "phone": format!("+4915512377{n:03}") })),
                )
                .await;
            assert_eq!(status, 409, "the third change is over the quota");
            let code = text_code(&server, &other, 1).await;
            let (status, body) = verify(&mut agent, &code).await;
            assert_eq!(
                (status, pending_flow(&body).as_deref()),
                (401, Some("verify_email"))
            );
            assert_eq!(stored_number(&server, user_id).await, Some((other, true)));
        }
        server
    })
    .await;
}

#[tokio::test]
async fn a_taken_number_at_signup_is_hidden() {
    on_each_backend(
        |config| {
            phones(config);
            config.sms.enumeration_notices = true;
        },
        |server| async move {
            for (n, client) in CLIENTS.into_iter().enumerate() {
                let phone = format!("+4915712345{n:03}");
                let owner = phone_user(&server, &format!("owner{n}"), &phone, true).await;
                let mut agent = Agent::new(&server, client);
                let email = format!("taker{n}@example.com");
                let (status, body) = signup(&mut agent, &phone, &email).await;
                assert_eq!(status, 401, "{body}");
                assert_eq!(pending_flow(&body).as_deref(), Some("verify_phone"));
                let texts = texts_to(&server, &phone, 1).await;
                assert_eq!(texts[0].kind, "account_already_exists");
                assert!(crate::harness::code_in_text(&texts[0].body).is_none());
                assert_eq!(owner_of(&server, &phone).await, Some(owner));
                assert!(crate::harness::mails_to(&server, &email).await.is_empty());
                // Nothing can be typed, resent or changed there.
                let (status, _) = verify(&mut agent, "BBBB-BBBB").await;
                assert_eq!(status, 400);
                let before = queued_texts(&server).await;
                let (status, _) = agent.call("POST", "auth/phone/verify/resend", None).await;
                assert_eq!(status, 200);
                assert_eq!(
                    queued_texts(&server).await,
                    before,
                    "a decoy's resend sends nothing"
                );
                let (status, _) = agent
                    .call(
                        "POST",
                        "account/phone",
                        Some(json!({"phone": "+4915712399000"})),
                    )
                    .await;
                assert_eq!(status, 409);

                // A taken address with a new number: the same stage, and
                // the notice to the number given.
                let fresh = format!("+4915712366{n:03}");
                let mut agent = Agent::new(&server, client);
                let (status, body) =
                    signup(&mut agent, &fresh, &format!("owner{n}@example.com")).await;
                assert_eq!(
                    (status, pending_flow(&body).as_deref()),
                    (401, Some("verify_phone"))
                );
                let texts = texts_to(&server, &fresh, 1).await;
                assert_eq!(texts[0].kind, "account_already_exists");
                assert_eq!(owner_of(&server, &fresh).await, None);
            }
            server
        },
    )
    .await;
    // Without enumeration prevention the number is named taken.
    on_each_backend(
        |config| {
            phones(config);
            config.account.prevent_enumeration =
                allauth_server::config::PreventEnumeration::Disabled;
        },
        |server| async move {
            phone_user(&server, "owner", "+4915712345999", true).await;
            for client in CLIENTS {
                let mut agent = Agent::new(&server, client);
                let (status, body) = signup(&mut agent, "+4915712345999", "x@example.com").await;
                assert_eq!(
                    (status, codes_of(&body)),
                    (400, error("phone_taken", Some("phone")))
                );
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/code/request",
                        Some(json!({"phone": "+4915799999999"})),
                    )
                    .await;
                assert_eq!(
                    (status, codes_of(&body)),
                    (400, error("unknown_phone", Some("phone")))
                );
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn numbers_must_be_valid_and_international_unless_a_region_is_set() {
    on_each_backend(phones, |server| async move {
        for client in CLIENTS {
            for bad in [
                "015112345678",
                "+0151123",
                "+49abc",
                "+4915",
                "+999123456789",
            ] {
                let mut agent = Agent::new(&server, client);
                let (status, body) = signup(&mut agent, bad, "bad@example.com").await;
                assert_eq!(
                    (status, codes_of(&body)),
                    (400, error("invalid_phone", Some("phone"))),
                    "{bad}"
                );
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/login",
                        Some(json!({"phone": bad, "password": "secret-pass-1"})),
                    )
                    .await;
                assert_eq!(
                    (status, codes_of(&body)),
                    (400, error("invalid_phone", Some("phone"))),
                    "{bad}"
                );
                let (status, body) = agent
                    .call("POST", "auth/code/request", Some(json!({ "phone": bad })))
                    .await;
                assert_eq!(
                    (status, codes_of(&body)),
                    (400, error("invalid_phone", Some("phone"))),
                    "{bad}"
                );
            }
            let mut agent = Agent::new(&server, client);
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/signup",
                    Some(json!({"email": "np@example.com", "password": "secret-pass-1"})),
                )
                .await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("required", Some("phone")))
            );
        }
        server
    })
    .await;
    on_each_backend(
        |config| {
            phones(config);
            config.account.phone_default_region = Some("DE".into());
        },
        |server| async move {
            let mut agent = Agent::new(&server, "app");
            let (status, body) = signup(&mut agent, "0151 1234-5678", "de@example.com").await;
            assert_eq!(
                (status, pending_flow(&body).as_deref()),
                (401, Some("verify_phone"))
            );
            assert!(owner_of(&server, "+4915112345678").await.is_some());
            texts_to(&server, "+4915112345678", 1).await;
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_number_and_password_log_in() {
    on_each_backend(phones, |server| async move {
        for (n, client) in CLIENTS.into_iter().enumerate() {
            let phone = format!("+4915512345{n:03}");
            phone_user(&server, &format!("lp{n}"), &phone, true).await;
            let mut agent = Agent::new(&server, client);
            let login =
                |phone: String, password: &str| json!({"phone": phone, "password": password});
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/login",
                    Some(login(phone.clone(), "wrong-pass")),
                )
                .await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("phone_password_mismatch", Some("password")))
            );
            // An unknown number gets the same answer.
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/login",
                    Some(login("+4915599999999".into(), "secret-pass-1")),
                )
                .await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("phone_password_mismatch", Some("password")))
            );
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/login",
                    Some(json!({"phone": phone, "email": "lp@example.com", "password": "x"})),
                )
                .await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("invalid_login", None))
            );
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/login",
                    Some(login(phone.clone(), "secret-pass-1")),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let methods = body["data"]["methods"].as_array().unwrap();
            assert_eq!(methods.len(), 1);
            assert_eq!(methods[0]["method"], "password");
            assert!(methods[0].get("phone").is_none() && methods[0].get("email").is_none());
        }

        // An unverified number stops a login (by number or by address) at
        // `verify_phone`, with a new code.
        for (n, by_phone) in [true, false].into_iter().enumerate() {
            let phone = format!("+4915512399{n:03}");
            phone_user(&server, &format!("unverified{n}"), &phone, false).await;
            let body = if by_phone {
                json!({"phone": phone, "password": "secret-pass-1"})
            } else {
                json!({"email": format!("unverified{n}@example.com"), "password": "secret-pass-1"})
            };
            let mut agent = Agent::new(&server, "app");
            let (status, answer) = agent.call("POST", "auth/login", Some(body)).await;
            assert_eq!(
                (status, pending_flow(&answer).as_deref()),
                (401, Some("verify_phone"))
            );
            let code = text_code(&server, &phone, 1).await;
            let (status, answer) = verify(&mut agent, &code).await;
            assert_eq!(status, 200, "{answer}");
        }
        server
    })
    .await;
}

#[tokio::test]
async fn a_code_by_sms_logs_in_and_verifies_the_number() {
    on_each_backend(
        |config| {
            phones(config);
            config.sms.enumeration_notices = true;
        },
        |server| async move {
            for (n, client) in CLIENTS.into_iter().enumerate() {
                let phone = format!("+4915612345{n:03}");
                let user_id = phone_user(&server, &format!("code{n}"), &phone, false).await;
                let mut agent = Agent::new(&server, client);
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/code/request",
                        Some(json!({"phone": phone, "email": "code@example.com"})),
                    )
                    .await;
                assert_eq!(
                    (status, codes_of(&body)),
                    (400, error("select_only_one", None))
                );
                let (status, body) = agent
                    .call("POST", "auth/code/request", Some(json!({ "phone": phone })))
                    .await;
                assert_eq!(
                    (status, pending_flow(&body).as_deref()),
                    (401, Some("login_by_code"))
                );
                let texts = texts_to(&server, &phone, 1).await;
                assert_eq!(texts[0].kind, "login_code");
                let code = text_code(&server, &phone, 1).await;
                let (status, body) = agent
                    .call("POST", "auth/code/confirm", Some(json!({ "code": code })))
                    .await;
                assert_eq!(status, 200, "{body}");
                let methods = body["data"]["methods"].as_array().unwrap();
                assert_eq!(methods[0]["method"], "code");
                assert_eq!(methods[0]["phone"], json!(phone));
                assert_eq!(stored_number(&server, user_id).await, Some((phone, true)));

                // An unknown number: the same answer, and only the notice.
                let unknown = format!("+4915612399{n:03}");
                let mut agent = Agent::new(&server, client);
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/code/request",
                        Some(json!({ "phone": unknown })),
                    )
                    .await;
                assert_eq!(
                    (status, pending_flow(&body).as_deref()),
                    (401, Some("login_by_code"))
                );
                let texts = texts_to(&server, &unknown, 1).await;
                assert_eq!(texts[0].kind, "unknown_account");
                let (status, _) = agent
                    .call(
                        "POST",
                        "auth/code/confirm",
                        Some(json!({"code": "BBBB-BBBB"})),
                    )
                    .await;
                assert_eq!(status, 400);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_signed_in_user_changes_their_number() {
    let configure = |config: &mut Config| {
        phones(config);
        // Nothing listens there: the events stay queued for the test to read.
        config.webhooks.endpoints = vec![allauth_server::config::WebhookEndpoint {
            url: "http://127.0.0.1:9/events".into(),
            secret: Some(
                "a-webhook-secret-of-at-least-32-characters"
                    .to_string()
                    .into(),
            ),
            events: vec!["phone.verified".into()],
            ..Default::default()
        }];
    };
    on_each_backend(configure, |server| async move {
        for (n, client) in CLIENTS.into_iter().enumerate() {
            let phone = format!("+4915712345{n:03}");
            let user_id = phone_user(&server, &format!("ch{n}"), &phone, true).await;
            let taken = format!("+4915712388{n:03}");
            phone_user(&server, &format!("other{n}"), &taken, true).await;
            let mut anonymous = Agent::new(&server, client);
            let (status, _) = anonymous.call("GET", "account/phone", None).await;
            assert_eq!(status, 401);
            let (status, _) = anonymous
                .call(
                    "POST",
                    "account/phone",
                    Some(json!({"phone": "+4915712399000"})),
                )
                .await;
            assert_eq!(status, 409);

            let mut agent = logged_in(&server, client, &phone).await;
            let (status, body) = agent
                .call("POST", "account/phone", Some(json!({ "phone": phone })))
                .await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("same_as_current", Some("phone")))
            );
            let new_phone = format!("+4915712366{n:03}");
            let (status, body) = agent
                .call("POST", "account/phone", Some(json!({ "phone": new_phone })))
                .await;
            assert_eq!(status, 202, "{body}");
            // The old number stays until the new one is verified; nothing
            // shows in the session.
            let (status, body) = agent.call("GET", "account/phone", None).await;
            assert_eq!(
                (status, body["data"].clone()),
                (200, json!([{"phone": phone, "verified": true}]))
            );
            let (status, body) = agent.call("GET", "auth/session", None).await;
            assert_eq!(status, 200);
            assert!(body["data"].get("flows").is_none(), "{body}");
            let (status, _) = agent.call("POST", "auth/phone/verify/resend", None).await;
            assert_eq!(status, 409, "no resend for a change");
            let code = text_code(&server, &new_phone, 1).await;
            let (status, body) = verify(&mut agent, "BBBB-BBBB").await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("incorrect_code", Some("code")))
            );
            let (status, body) = verify(&mut agent, &code).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], json!(user_id));
            assert_eq!(
                stored_number(&server, user_id).await,
                Some((new_phone.clone(), true))
            );
            assert_eq!(
                owner_of(&server, &phone).await,
                None,
                "the old number is gone"
            );
            let db = server.server.context().db.clone();
            let events = db
                .run(allauth_server::db::webhook_outbox::all)
                .await
                .unwrap();
            let verified: Vec<Value> = events
                .iter()
                .filter(|e| e.event_type == "phone.verified")
                .map(|e| serde_json::from_str::<Value>(&e.body).unwrap())
                .collect();
            let last = verified.last().expect("a phone.verified event");
            assert_eq!(last["data"]["phone"], json!(new_phone));
            assert_eq!(last["data"]["user_id"], json!(user_id));
            let (status, _) = verify(&mut agent, &code).await;
            assert_eq!(status, 409, "a code serves once");

            // A number of another account: accepted and sent a code
            // (enumeration prevention), refused when the code comes back.
            let (status, _) = agent
                .call("POST", "account/phone", Some(json!({ "phone": taken })))
                .await;
            assert_eq!(status, 202);
            let code = text_code(&server, &taken, 1).await;
            let (status, body) = verify(&mut agent, &code).await;
            assert_eq!(
                (status, codes_of(&body)),
                (400, error("phone_taken", Some("code")))
            );
            assert_eq!(
                stored_number(&server, user_id).await,
                Some((new_phone, true))
            );
        }
        server
    })
    .await;
}

#[tokio::test]
async fn change_phone_and_verify_phone_are_rate_limited() {
    // A server per client: `verify_phone` also counts per address.
    for (n, client) in CLIENTS.into_iter().enumerate() {
        on_each_backend(phones_limited, |server| async move {
            {
                let phone = format!("+4916012345{n:03}");
                phone_user(&server, &format!("rl{n}"), &phone, true).await;
                let mut agent = logged_in(&server, client, &phone).await;
                let (status, _) = agent.call("GET", "account/phone", None).await;
                assert_eq!(status, 200, "reading is not limited");
                let (status, _) = agent
                    .call(
                        "POST",
                        "account/phone",
                        Some(json!({"phone": format!("+4916012366{n:03}")})),
                    )
                    .await;
                assert_eq!(status, 202);
                // One change a minute, counted before the input is read.
                let (status, body) = agent
                    .call("POST", "account/phone", Some(json!({"phone": "nonsense"})))
                    .await;
                assert_eq!((status, body), (429, json!({"status": 429})));

                // `verify_phone`: one text per number every 30 seconds.
                let fresh = format!("+4916012399{n:03}");
                let mut agent =
                    signed_up(&server, client, &fresh, &format!("rl{n}x@example.com")).await;
                let (status, body) = agent.call("POST", "auth/phone/verify/resend", None).await;
                assert_eq!((status, body), (429, json!({"status": 429})));
            }
            server
        })
        .await;
    }
}

#[tokio::test]
async fn a_change_needs_a_recent_login_when_required() {
    on_each_backend(
        |config| {
            phones(config);
            config.account.reauthentication_required = true;
            config.account.reauthentication_timeout = 1;
        },
        |server| async move {
            phone_user(&server, "reauth", "+4915912345000", true).await;
            let mut agent = logged_in(&server, "app", "+4915912345000").await;
            tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
            let (status, body) = agent
                .call(
                    "POST",
                    "account/phone",
                    Some(json!({"phone": "+4915912366000"})),
                )
                .await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(pending_flow(&body), None);
            assert_eq!(body["data"]["flows"][0]["id"], "reauthenticate");
            assert_eq!(queued_texts(&server).await, 0);
            server
        },
    )
    .await;
}

/// Concurrent wrong codes are all counted: at most
/// `phone_verification_max_attempts` are answered 400, the rest 409; of
/// concurrent right codes for a change, one is used.
#[tokio::test]
async fn concurrent_attempts_count_once_each() {
    on_each_backend(phones, |server| async move {
        for (n, client) in CLIENTS.into_iter().enumerate() {
            let phone = format!("+4916212345{n:03}");
            let agent = signed_up(&server, client, &phone, &format!("cc{n}@example.com")).await;
            let mut calls = Vec::new();
            for _ in 0..10 {
                let mut each = agent.clone();
                calls.push(tokio::spawn(async move {
                    verify(&mut each, "BBBB-BBBB").await.0
                }));
            }
            let mut statuses = Vec::new();
            for call in calls {
                statuses.push(call.await.unwrap());
            }
            statuses.sort_unstable();
            assert_eq!(
                statuses.iter().filter(|s| **s == 400).count(),
                3,
                "{statuses:?}"
            );
            assert_eq!(
                statuses.iter().filter(|s| **s == 409).count(),
                7,
                "{statuses:?}"
            );

            // Eight right codes for one change at once: one is used.
            let owned = format!("+4916212377{n:03}");
            phone_user(&server, &format!("cc{n}o"), &owned, true).await;
            let mut agent = logged_in(&server, client, &owned).await;
            let target = format!("+4916212388{n:03}");
            let (status, _) = agent
                .call("POST", "account/phone", Some(json!({ "phone": target })))
                .await;
            assert_eq!(status, 202);
            let code = text_code(&server, &target, 1).await;
            let mut calls = Vec::new();
            for _ in 0..8 {
                let (mut each, code) = (agent.clone(), code.clone());
                calls.push(tokio::spawn(
                    async move { verify(&mut each, &code).await.0 },
                ));
            }
            let mut statuses = Vec::new();
            for call in calls {
                statuses.push(call.await.unwrap());
            }
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "{statuses:?}"
            );
        }
        server
    })
    .await;
}

/// Simultaneous signups with one number make one account.
#[tokio::test]
async fn concurrent_signups_with_one_number_make_one_account() {
    on_each_backend(phones, |server| async move {
        let phone = "+4916312345000";
        let mut calls = Vec::new();
        for n in 0..8 {
            let mut agent = Agent::new(&server, CLIENTS[n % 2]);
            calls.push(tokio::spawn(async move {
                signup(&mut agent, phone, &format!("race{n}@example.com")).await
            }));
        }
        for call in calls {
            let (status, body) = call.await.unwrap();
            assert_eq!(
                (status, pending_flow(&body).as_deref()),
                (401, Some("verify_phone"))
            );
        }
        assert!(owner_of(&server, phone).await.is_some());
        let db = server.server.context().db.clone();
        let count = db.run(phone_numbers::count).await.unwrap();
        assert_eq!(count, 1);
        server
    })
    .await;
}

/// The four phone operations through the generated client (app).
#[tokio::test]
async fn every_phone_operation_through_the_generated_client() {
    use allauth_api::client::Error as ClientError;
    use allauth_api::types;
    on_each_backend(phones, |server| async move {
        let client = server.client();
        let mut agent = Agent::new(&server, "app");
        let (status, _) = signup(&mut agent, "+4916212345000", "gen@example.com").await;
        assert_eq!(status, 401);
        let token = agent.token.clone().expect("token");
        let resent = client
            .phone_verification_resend(types::Client::App, Some(&token))
            .await
            .expect("resent")
            .into_inner();
        assert_eq!(
            serde_json::to_value(&resent).unwrap(),
            json!({"status": 200})
        );
        let changed = client
            .phone_change(
                types::Client::App,
                Some(&token),
                &types::ChangePhoneInput {
                    phone: types::Phone("+4916212345111".into()),
                },
            )
            .await
            .expect("changed")
            .into_inner();
        assert_eq!(changed.data[0].phone.0, "+4916212345111");
        let code = text_code(&server, "+4916212345111", 1).await;
        let answer = client
            .phone_verification_confirm(
                types::Client::App,
                Some(&token),
                &types::VerifyPhoneInput {
                    code: types::UserCode(code),
                },
            )
            .await;
        match answer {
            Err(ClientError::ErrorResponse(r)) => {
                assert_eq!(r.status(), 401);
                assert_eq!(
                    pending_flow(&r.into_inner()).as_deref(),
                    Some("verify_email")
                );
            }
            other => panic!("expected the verify_email 401: {other:?}"),
        }
        let mail_code = last_code_to(&server, "gen@example.com").await;
        let (status, body) = agent
            .call(
                "POST",
                "auth/email/verify",
                Some(json!({ "key": mail_code })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let token = agent.token.clone().expect("token");
        let numbers = client
            .phone_view(types::Client::App, Some(&token))
            .await
            .expect("number")
            .into_inner();
        assert_eq!(numbers.data.len(), 1);
        assert_eq!(numbers.data[0].phone.0, "+4916212345111");
        assert!(numbers.data[0].verified);
        server
    })
    .await;
}

/// The step's other branches: verification off (the number is stored
/// unverified and no text goes out), an optional number left out, and a
/// required number missing on an older account (the login ends unfinished,
/// as allauth aborts the stage).
#[tokio::test]
async fn verification_off_optional_numbers_and_missing_ones() {
    on_each_backend(
        |config| {
            phones(config);
            config.account.phone_verification_enabled = false;
        },
        |server| async move {
            for (n, client) in CLIENTS.into_iter().enumerate() {
                let phone = format!("+4915112399{n:03}");
                let mut agent = Agent::new(&server, client);
                let (status, body) =
                    signup(&mut agent, &phone, &format!("off{n}@example.com")).await;
                assert_eq!(
                    (status, pending_flow(&body).as_deref()),
                    (401, Some("verify_email"))
                );
                let user_id = owner_of(&server, &phone).await.expect("stored");
                assert_eq!(stored_number(&server, user_id).await, Some((phone, false)));
            }
            assert_eq!(queued_texts(&server).await, 0);
            server
        },
    )
    .await;
    on_each_backend(
        |config| {
            phones(config);
            config.account.signup_fields[0].required = false;
        },
        |server| async move {
            for (n, client) in CLIENTS.into_iter().enumerate() {
                let mut agent = Agent::new(&server, client);
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/signup",
                        Some(json!({"email": format!("opt{n}@example.com"), "password": "secret-pass-1"})),
                    )
                    .await;
                assert_eq!((status, pending_flow(&body).as_deref()), (401, Some("verify_email")));
            }
            // An account without a number logs in.
            user(&server, "nonumber", "nonumber@example.com", true, Some("secret-pass-1")).await;
            let mut agent = Agent::new(&server, "app");
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/login",
                    Some(json!({"email": "nonumber@example.com", "password": "secret-pass-1"})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            server
        },
    )
    .await;
    on_each_backend(phones, |server| async move {
        user(
            &server,
            "older",
            "older@example.com",
            true,
            Some("secret-pass-1"),
        )
        .await;
        for client in CLIENTS {
            let mut agent = Agent::new(&server, client);
            let (status, body) = agent
                .call(
                    "POST",
                    "auth/login",
                    Some(json!({"email": "older@example.com", "password": "secret-pass-1"})),
                )
                .await;
            assert_eq!((status, pending_flow(&body)), (401, None), "{body}");
            assert_eq!(body["meta"]["is_authenticated"], false);
            let (status, body) = agent.call("GET", "auth/session", None).await;
            assert_eq!((status, pending_flow(&body)), (401, None));
        }
        server
    })
    .await;
}

/// A provider signup when a number is required: providers give none, so
/// the `provider_signup` form asks for it, and the login then verifies it.
#[tokio::test]
async fn a_provider_signup_asks_for_a_required_number() {
    on_each_backend(
        |config| {
            phones(config);
            config.socialaccount.enabled = true;
            config.socialaccount.providers.insert(
                "dummy".into(),
                allauth_server::config::ProviderSettings::default(),
            );
            config.finalize();
        },
        |server| async move {
            for (n, client) in CLIENTS.into_iter().enumerate() {
                let mut agent = Agent::new(&server, client);
                let email = format!("social{n}@example.com");
                let identity = json!({"id": 7000 + n, "email": email, "email_verified": true});
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/provider/token",
                        Some(json!({"provider": "dummy", "process": "login",
                            "token": {"id_token": identity.to_string()}})),
                    )
                    .await;
                assert_eq!(
                    (status, pending_flow(&body).as_deref()),
                    (401, Some("provider_signup")),
                    "{body}"
                );
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/provider/signup",
                        Some(json!({ "email": email })),
                    )
                    .await;
                assert_eq!(
                    (status, codes_of(&body)),
                    (400, error("required", Some("phone")))
                );
                let phone = format!("+4917012345{n:03}");
                let (status, body) = agent
                    .call(
                        "POST",
                        "auth/provider/signup",
                        Some(json!({ "email": email, "phone": phone })),
                    )
                    .await;
                assert_eq!(
                    (status, pending_flow(&body).as_deref()),
                    (401, Some("verify_phone")),
                    "{body}"
                );
                let user_id = owner_of(&server, &phone)
                    .await
                    .expect("the number is stored");
                let code = text_code(&server, &phone, 1).await;
                let (status, body) = verify(&mut agent, &code).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"]["user"]["id"], json!(user_id));
                assert_eq!(stored_number(&server, user_id).await, Some((phone, true)));
            }
            server
        },
    )
    .await;
}
