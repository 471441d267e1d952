//! `account/email` for both clients: the list, adding an address (link or
//! code verification, `change_email`, limits, taken addresses), asking for a
//! new verification, marking primary, removing, the notifications, the
//! reauthentication requirement and the `manage_email` limit.

use allauth_api::types;
use allauth_server::config::{Config, PreventEnumeration};
use allauth_server::db::{email_addresses, users};
use serde_json::{json, Value};

use crate::harness::{
    code_in, kind, mails, now_secs, on_each_backend, session_for, user, Agent, TestServer, CLIENTS,
};

/// A logged-in agent of `client` for a new user with a verified primary address.
async fn logged_in(server: &TestServer, client: &'static str, name: &str) -> (Agent, i64) {
    let user_id = user(server, name, &format!("{name}@example.com"), true, None).await;
    let token = session_for(server, client, user_id, now_secs()).await;
    (Agent::with_token(server, client, &token), user_id)
}

fn signup_fields(fields: &[&str]) -> Vec<allauth_server::config::SignupField> {
    fields
        .iter()
        .map(|f| allauth_server::config::SignupField::parse(f).expect("field"))
        .collect()
}

/// allauth's rate limits with one override (a TOML line).
fn rate_limits(
    line: &str,
) -> allauth_server::config::RateLimits<allauth_server::config::AccountRateLimitOverrides> {
    Config::from_sources(&format!("[account.rate_limits]\n{line}\n"), &[])
        .expect("config")
        .account
        .rate_limits
}

fn entry(email: &str, verified: bool, primary: bool) -> Value {
    json!({"email": email, "verified": verified, "primary": primary})
}

fn list(entries: Vec<Value>) -> Value {
    json!({"status": 200, "data": entries})
}

fn error(code: &str, param: &str, message: &str) -> Value {
    json!({"status": 400, "errors": [{"code": code, "param": param, "message": message}]})
}

async fn add(agent: &mut Agent, email: &str) -> (u16, Value) {
    agent
        .call("POST", "account/email", Some(json!({ "email": email })))
        .await
}

async fn add_stored(server: &TestServer, user_id: i64, email: &str, verified: bool) {
    let db = server.server.context().db.clone();
    let email = email.to_string();
    db.run(move |conn| {
        email_addresses::insert(
            conn,
            &email_addresses::NewEmailAddress::new(user_id, &email, verified, false),
        )?;
        Ok(())
    })
    .await
    .expect("stored");
}

#[tokio::test]
async fn anonymous_callers_get_the_session_401_or_a_409() {
    on_each_backend(
        |_| {},
        |server| async move {
            for client in CLIENTS {
                let mut agent = Agent::new(&server, client);
                for method in ["GET", "PUT", "PATCH", "DELETE"] {
                    let (status, body) = agent
                        .call(
                            method,
                            "account/email",
                            Some(json!({"email": "a@example.com", "primary": true})),
                        )
                        .await;
                    assert_eq!(status, 401, "{method}");
                    assert_eq!(body["meta"]["is_authenticated"], false);
                    assert!(body["data"]["flows"].is_array());
                }
                let (status, body) = add(&mut agent, "a@example.com").await;
                assert_eq!((status, body), (409, json!({"status": 409})));
            }
            let error = server
                .client()
                .email_list(types::Client::App, None)
                .await
                .expect_err("401");
            assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
            server
        },
    )
    .await;
}

#[tokio::test]
async fn adding_an_address_mails_a_link() {
    on_each_backend(
        |_| {},
        |server| async move {
            for (n, client) in ["app", "browser"].into_iter().enumerate() {
                let name = format!("ann{n}");
                let primary = format!("{name}@example.com");
                let (mut agent, user_id) = logged_in(&server, client, &name).await;
                let (status, body) = agent.call("GET", "account/email", None).await;
                assert_eq!(
                    (status, body),
                    (200, list(vec![entry(&primary, true, true)]))
                );

                let (status, body) = add(&mut agent, &format!(" New{n}@Example.COM ")).await;
                let added = format!("new{n}@example.com");
                assert_eq!(
                    (status, body),
                    (
                        200,
                        list(vec![
                            entry(&primary, true, true),
                            entry(&added, false, false)
                        ])
                    )
                );
                let (to, subject, text) = mails(&server).await.last().expect("mail").clone();
                assert_eq!(
                    (to.as_str(), subject.as_str()),
                    (added.as_str(), "Confirm your email address")
                );
                assert!(text.contains("/accounts/confirm-email/"), "{text}");

                let (status, body) = add(&mut agent, &added.to_uppercase()).await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error(
                            "duplicate_email",
                            "email",
                            "This email address is already associated with this account."
                        )
                    )
                );
                let (status, body) = add(&mut agent, "nope").await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error("invalid", "email", "Enter a valid email address.")
                    )
                );
                let (status, body) = agent.call("POST", "account/email", Some(json!({}))).await;
                assert_eq!(
                    (status, body),
                    (400, error("required", "email", "This field is required."))
                );

                // Taken by another account: added all the same (enumeration prevention).
                user(
                    &server,
                    &format!("other{n}"),
                    &format!("taken{n}@example.com"),
                    true,
                    None,
                )
                .await;
                let (status, body) = add(&mut agent, &format!("taken{n}@example.com")).await;
                assert_eq!(status, 200);
                assert_eq!(body["data"].as_array().map(Vec::len), Some(3));

                // Through the generated client.
                let token = agent.token.clone().expect("token");
                let input = types::EmailAddressInput {
                    email: format!("gen{n}@example.com").into(),
                };
                let response = server
                    .client()
                    .email_add(kind(client), Some(&token), &input)
                    .await;
                if client == "app" {
                    let body =
                        serde_json::to_value(response.expect("200").into_inner()).expect("json");
                    assert_eq!(body["data"].as_array().map(Vec::len), Some(4));
                    let response = server
                        .client()
                        .email_list(types::Client::App, Some(&token))
                        .await
                        .expect("200");
                    let body = serde_json::to_value(response.into_inner()).expect("json");
                    assert_eq!(
                        body["data"][3],
                        entry(&format!("gen{n}@example.com"), false, false)
                    );
                }
                let _ = user_id;
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn taken_addresses_limits_and_change_email() {
    on_each_backend(
        |c: &mut Config| {
            c.account.prevent_enumeration = PreventEnumeration::Disabled;
            c.account.max_email_addresses = Some(2);
        },
        |server| async move {
            user(&server, "owner", "taken@example.com", true, None).await;
            let (mut agent, _) = logged_in(&server, "app", "bea").await;
            let (status, body) = add(&mut agent, "taken@example.com").await;
            assert_eq!(
                (status, body),
                (
                    400,
                    error(
                        "email_taken",
                        "email",
                        "A user is already registered with this email address."
                    )
                )
            );
            let (status, _) = add(&mut agent, "second@example.com").await;
            assert_eq!(status, 200);
            let (status, body) = add(&mut agent, "third@example.com").await;
            assert_eq!(
                (status, body),
                (
                    400,
                    error(
                        "max_email_addresses",
                        "email",
                        "You cannot add more than 2 email addresses."
                    )
                )
            );
            server
        },
    )
    .await;
    on_each_backend(
        |c: &mut Config| {
            c.account.change_email = true;
        },
        |server| async move {
            let (mut agent, _) = logged_in(&server, "browser", "cid").await;
            add(&mut agent, "first@example.com").await;
            let (status, body) = add(&mut agent, "second@example.com").await;
            assert_eq!(
                (status, body),
                (
                    200,
                    list(vec![
                        entry("cid@example.com", true, true),
                        entry("second@example.com", false, false)
                    ])
                )
            );
            server
        },
    )
    .await;
}

#[tokio::test]
async fn verification_by_code_keeps_the_new_address_pending() {
    on_each_backend(
        |c: &mut Config| {
            c.account.email_verification = allauth_server::config::EmailVerification::Mandatory;
            c.account.signup_fields = signup_fields(&["email*", "username*", "password1*"]);
            c.account.email_verification_by_code_enabled = true;
        },
        |server| async move {
            for (n, client) in ["app", "browser"].into_iter().enumerate() {
                let name = format!("dan{n}");
                let primary = format!("{name}@example.com");
                let (mut agent, user_id) = logged_in(&server, client, &name).await;
                let (one, two) = (format!("one{n}@example.com"), format!("two{n}@example.com"));
                let (status, body) = add(&mut agent, &one).await;
                assert_eq!(
                    (status, body),
                    (
                        200,
                        list(vec![entry(&primary, true, true), entry(&one, false, false)])
                    )
                );
                let (to, subject, text) = mails(&server).await.last().expect("mail").clone();
                assert_eq!(
                    (to.as_str(), subject.as_str()),
                    (one.as_str(), "Your email verification code")
                );
                code_in(&text);
                // Not stored until the code is confirmed.
                let db = server.server.context().db.clone();
                let rows = db
                    .run(move |conn| email_addresses::for_user(conn, user_id))
                    .await
                    .expect("rows");
                assert_eq!(rows.len(), 1);

                // Another address replaces the pending one.
                let (status, body) = add(&mut agent, &two).await;
                assert_eq!(
                    (status, body),
                    (
                        200,
                        list(vec![entry(&primary, true, true), entry(&two, false, false)])
                    )
                );
                // Its code may not be resent (allauth's default quota): 403.
                let (status, body) = agent
                    .call("PUT", "account/email", Some(json!({"email": two})))
                    .await;
                assert_eq!((status, body), (403, json!({"status": 403})));
                // It can be dropped.
                let (status, body) = agent
                    .call(
                        "DELETE",
                        "account/email",
                        Some(json!({"email": two.to_uppercase()})),
                    )
                    .await;
                assert_eq!(
                    (status, body),
                    (200, list(vec![entry(&primary, true, true)]))
                );
                // A stored address: a new code is mailed (and becomes the pending one).
                add_stored(&server, user_id, &format!("stored{n}@example.com"), false).await;
                let (status, body) = agent
                    .call(
                        "PUT",
                        "account/email",
                        Some(json!({"email": format!("stored{n}@example.com")})),
                    )
                    .await;
                assert_eq!((status, body), (200, json!({"status": 200})));
                assert_eq!(
                    mails(&server).await.last().expect("mail").0,
                    format!("stored{n}@example.com")
                );
                // confirm_email (1 per 10 s per address with codes): 429.
                let (status, body) = agent
                    .call(
                        "PUT",
                        "account/email",
                        Some(json!({"email": format!("stored{n}@example.com")})),
                    )
                    .await;
                assert_eq!((status, body), (429, json!({"status": 429})));

                // The logged-in user confirms the mailed code: no login is in
                // progress (`is_authenticating: false`), the address is verified.
                let stored = format!("stored{n}@example.com");
                let code = code_in(&mails(&server).await.last().expect("mail").2);
                let (status, body) = agent
                    .send(
                        "GET",
                        "auth/email/verify",
                        None,
                        &[("X-Email-Verification-Key", &code)],
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"]["email"], stored.as_str());
                assert_eq!(body["meta"]["is_authenticating"], false, "{body}");
                let (status, body) = agent
                    .post("auth/email/verify", json!({ "key": code }))
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["meta"]["is_authenticated"], true);
                let (status, body) = agent.get("account/email", &[]).await;
                assert_eq!(status, 200);
                assert!(
                    body["data"]
                        .as_array()
                        .expect("list")
                        .iter()
                        .any(|a| a["email"] == stored.as_str() && a["verified"] == true),
                    "{body}"
                );
                // The process is over.
                let (status, _) = agent
                    .post("auth/email/verify", json!({ "key": code }))
                    .await;
                assert_eq!(status, 409);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn verification_request_mark_primary_and_remove() {
    on_each_backend(
        |c: &mut Config| {
            c.account.email_notifications = true;
            c.account.rate_limits = rate_limits("manage_email = \"100/m/user\"");
        },
        |server| async move {
            for (n, client) in ["app", "browser"].into_iter().enumerate() {
                let name = format!("eve{n}");
                let primary = format!("{name}@example.com");
                let (mut agent, user_id) = logged_in(&server, client, &name).await;
                let (unverified, verified) =
                    (format!("u{n}@example.com"), format!("v{n}@example.com"));
                add_stored(&server, user_id, &unverified, false).await;
                add_stored(&server, user_id, &verified, true).await;
                let token = agent.token.clone().expect("token");

                // PUT: unknown address, then a link, then over confirm_email: 403.
                let (status, body) = agent
                    .call(
                        "PUT",
                        "account/email",
                        Some(json!({"email": "zz@example.com"})),
                    )
                    .await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error("unknown_email", "email", "Unknown email address.")
                    )
                );
                let (status, body) = agent
                    .call("PUT", "account/email", Some(json!({"email": "zz"})))
                    .await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error("invalid", "email", "Enter a valid email address.")
                    )
                );
                let input = types::EmailAddressInput {
                    email: unverified.to_uppercase().into(),
                };
                let result = server
                    .client()
                    .email_verification_request(kind(client), Some(&token), &input)
                    .await;
                if client == "app" {
                    result.expect("200");
                } else {
                    assert_eq!(
                        result.expect_err("csrf").status().map(|s| s.as_u16()),
                        Some(403)
                    );
                    let (status, _) = agent
                        .call("PUT", "account/email", Some(json!({"email": unverified})))
                        .await;
                    assert_eq!(status, 200);
                }
                let (to, subject, _) = mails(&server).await.last().expect("mail").clone();
                assert_eq!(
                    (to.as_str(), subject.as_str()),
                    (unverified.as_str(), "Confirm your email address")
                );
                let (status, body) = agent
                    .call("PUT", "account/email", Some(json!({"email": unverified})))
                    .await;
                assert_eq!((status, body), (403, json!({"status": 403})));

                // PATCH: an unverified address cannot become primary; `primary` must be true.
                let patch =
                    |email: &str, primary: bool| Some(json!({"email": email, "primary": primary}));
                let (status, body) = agent
                    .call("PATCH", "account/email", patch(&unverified, true))
                    .await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error(
                            "unverified_primary_email",
                            "email",
                            "Your primary email address must be verified."
                        )
                    )
                );
                let (status, body) = agent
                    .call("PATCH", "account/email", patch(&verified, false))
                    .await;
                assert_eq!(
                    (status, body),
                    (400, error("required", "primary", "This field is required."))
                );
                let (status, body) = agent
                    .call("PATCH", "account/email", patch(&verified, true))
                    .await;
                assert_eq!(
                    (status, body),
                    (
                        200,
                        list(vec![
                            entry(&primary, true, false),
                            entry(&unverified, false, false),
                            entry(&verified, true, true)
                        ])
                    )
                );
                let (to, subject, text) = mails(&server).await.last().expect("mail").clone();
                assert_eq!(
                    (to.as_str(), subject.as_str()),
                    (primary.as_str(), "Your email address was changed")
                );
                assert!(text.contains(&verified));
                let (status, body) = agent.call("GET", "auth/session", None).await;
                assert_eq!(
                    (status, &body["data"]["user"]["email"]),
                    (200, &json!(verified))
                );
                if client == "app" {
                    let input = types::MarkPrimaryEmailInput {
                        email: primary.clone().into(),
                        primary: true,
                    };
                    server
                        .client()
                        .email_mark_primary(types::Client::App, Some(&token), &input)
                        .await
                        .expect("200");
                    agent
                        .call("PATCH", "account/email", patch(&verified, true))
                        .await;
                }

                // DELETE: not the primary while others exist; others go, with a notice.
                let (status, body) = agent
                    .call("DELETE", "account/email", Some(json!({"email": verified})))
                    .await;
                assert_eq!(
                    (status, body),
                    (
                        400,
                        error(
                            "cannot_remove_primary_email",
                            "email",
                            "You cannot remove your primary email address."
                        )
                    )
                );
                let (status, body) = agent
                    .call(
                        "DELETE",
                        "account/email",
                        Some(json!({"email": unverified})),
                    )
                    .await;
                assert_eq!(
                    (status, body),
                    (
                        200,
                        list(vec![
                            entry(&primary, true, false),
                            entry(&verified, true, true)
                        ])
                    )
                );
                let (to, subject, text) = mails(&server).await.last().expect("mail").clone();
                assert_eq!(
                    (to.as_str(), subject.as_str()),
                    (verified.as_str(), "Email address removed")
                );
                assert!(text.contains(&unverified));
                if client == "app" {
                    let input = types::EmailAddressInput {
                        email: primary.clone().into(),
                    };
                    let response = server
                        .client()
                        .email_remove(types::Client::App, Some(&token), &input)
                        .await
                        .expect("200");
                    let body = serde_json::to_value(response.into_inner()).expect("json");
                    assert_eq!(body, list(vec![entry(&verified, true, true)]));
                }
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn the_only_address_cannot_go_when_login_is_by_email() {
    on_each_backend(
        |c: &mut Config| {
            c.account.login_methods = vec![allauth_server::config::LoginMethod::Email];
            c.account.signup_fields = signup_fields(&["email*", "password1*"]);
        },
        |server| async move {
            let (mut agent, _) = logged_in(&server, "app", "fay").await;
            let (status, _) = agent
                .call(
                    "DELETE",
                    "account/email",
                    Some(json!({"email": "fay@example.com"})),
                )
                .await;
            assert_eq!(status, 400);
            server
        },
    )
    .await;
    on_each_backend(
        |_| {},
        |server| async move {
            let (mut agent, _) = logged_in(&server, "app", "gus").await;
            let (status, body) = agent
                .call(
                    "DELETE",
                    "account/email",
                    Some(json!({"email": "gus@example.com"})),
                )
                .await;
            assert_eq!((status, body), (200, list(vec![])));
            server
        },
    )
    .await;
}

#[tokio::test]
async fn reauthentication_and_rate_limit() {
    on_each_backend(
        |c: &mut Config| {
            c.account.reauthentication_required = true;
            c.account.rate_limits = rate_limits("manage_email = \"3/m/user\"");
        },
        |server| async move {
            for client in CLIENTS {
                let name = format!("hal-{client}");
                let user_id =
                    user(&server, &name, &format!("{name}@example.com"), true, None).await;
                let db = server.server.context().db.clone();
                db.run(move |conn| {
                    users::set_password_hash(conn, user_id, Some("argon2-placeholder")).map(drop)
                })
                .await
                .expect("password");
                // Logged in 10 minutes ago: too long for a change (300 s).
                let token = session_for(&server, client, user_id, now_secs() - 600.0).await;
                let mut agent = Agent::with_token(&server, client, &token);
                let (status, body) = add(&mut agent, "new@example.com").await;
                assert_eq!(status, 401, "{body}");
                assert_eq!(body["meta"]["is_authenticated"], true);
                assert_eq!(body["data"]["flows"], json!([{"id": "reauthenticate"}]));
                assert_eq!(body["data"]["user"]["id"], user_id);
                // Listing needs no reauthentication, nor counts.
                for _ in 0..3 {
                    let (status, _) = agent.call("GET", "account/email", None).await;
                    assert_eq!(status, 200);
                }
                let (status, _) = agent
                    .call(
                        "DELETE",
                        "account/email",
                        Some(json!({"email": "x@example.com"})),
                    )
                    .await;
                assert_eq!(status, 400);
                // A recent login passes (the limit is per user: 3 per minute).
                let fresh = session_for(&server, client, user_id, now_secs()).await;
                let mut agent = Agent::with_token(&server, client, &fresh);
                let (status, _) = add(&mut agent, "new@example.com").await;
                assert_eq!(status, 200);
                let (status, body) = add(&mut agent, "newer@example.com").await;
                assert_eq!((status, body), (429, json!({"status": 429})));
            }
            server
        },
    )
    .await;
}
