//! `Authentication: Account` (without phone): login by password, signup,
//! email verification by code and by link, resend, reauthentication — for
//! both clients, with the errors, rate limits and enumeration prevention
//! allauth answers, and 100 concurrent signups with one address.

use std::collections::BTreeMap;

use allauth_api::types;
use allauth_server::config::{
    Config, EmailBackend, EmailVerification, LoginMethod, PreventEnumeration, SignupFieldName,
};
use allauth_server::db::{email_addresses, users};
use serde_json::{json, Value};

use crate::harness::{
    code_in, codes_of, error, field, link_key, mails_to, on_each_backend, pending_flow,
    rate_limits, raw, user, Agent, TestServer, CLIENTS,
};

const PASSWORD: &str = "c0rrect-h0rse-battery";

// ---------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------

/// The oracle's setup: login by email, `email*` + `password1*`, mandatory
/// verification by code; mails to files.
fn by_code(config: &mut Config) {
    config.email.backend = EmailBackend::File;
    config.account.login_methods = vec![LoginMethod::Email];
    config.account.signup_fields = vec![
        field(SignupFieldName::Email, true),
        field(SignupFieldName::Password1, true),
    ];
    config.account.email_verification = EmailVerification::Mandatory;
    config.account.email_verification_by_code_enabled = true;
    config.finalize();
}

/// Verification by link, login by username or email, username required.
fn by_link(config: &mut Config) {
    config.email.backend = EmailBackend::File;
    config.account.login_methods = vec![LoginMethod::Username, LoginMethod::Email];
    config.account.signup_fields = vec![
        field(SignupFieldName::Email, true),
        field(SignupFieldName::Username, true),
        field(SignupFieldName::Password1, true),
    ];
    config.account.email_verification = EmailVerification::Mandatory;
    config.headless.frontend_urls.account_confirm_email =
        Some("https://app.test/verify/{key}".into());
    config.finalize();
}

async fn user_count(server: &TestServer) -> i64 {
    use diesel::prelude::*;
    let db = server.server.context().db.clone();
    db.run(|conn| {
        Ok(allauth_server::db::schema::users::table
            .count()
            .get_result::<i64>(conn)?)
    })
    .await
    .expect("count")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// The oracle's flow: signup → verify_email pending → code → logged in
/// with `methods: []`; then logout, login by password, reauthenticate.
#[tokio::test]
async fn signup_verify_by_code_login_and_reauthenticate() {
    on_each_backend(by_code, |server| async move {
        for client in CLIENTS {
            let email = format!("{client}.Person@Example.com");
            let folded = email.to_lowercase();
            let mut agent = Agent::new(&server, client);

            let (signup_status, signup) = agent
                .post("auth/signup", json!({"email": email, "password": PASSWORD}))
                .await;
            assert_eq!(signup_status, 401, "{:?}", signup);
            assert_eq!(signup["meta"]["is_authenticated"], false);
            assert_eq!(pending_flow(&signup).as_deref(), Some("verify_email"));
            let ids: Vec<&str> = signup["data"]["flows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, ["login", "signup", "verify_email"]);
            if client == "app" {
                assert!(
                    agent.token.is_some(),
                    "the app gets a session token with the stage"
                );
            }
            let (_, session) = agent.get("auth/session", &[]).await;
            assert_eq!(pending_flow(&session).as_deref(), Some("verify_email"));

            let mails = mails_to(&server, &folded).await;
            let code = code_in(&mails[0]);

            // A wrong code: 400 incorrect_code (one attempt used).
            let (wrong_status, wrong) = agent
                .send(
                    "GET",
                    "auth/email/verify",
                    None,
                    &[("X-Email-Verification-Key", "BBBB-BBBB")],
                )
                .await;
            assert_eq!(wrong_status, 400);
            assert_eq!(codes_of(&wrong), error("incorrect_code", Some("key")));

            // GET shows what the code verifies; lower case and no dash are fine.
            let typed = code.replace('-', "").to_lowercase();
            let (info_status, info) = agent
                .send(
                    "GET",
                    "auth/email/verify",
                    None,
                    &[("X-Email-Verification-Key", &typed)],
                )
                .await;
            assert_eq!(info_status, 200, "{:?}", info);
            assert_eq!(
                info["data"]["email"],
                folded.as_str(),
                "signup lowercases the address"
            );
            assert_eq!(info["meta"]["is_authenticating"], true);
            assert_eq!(info["data"]["user"]["has_usable_password"], true);
            let local = folded.split('@').next().unwrap();
            assert_eq!(
                info["data"]["user"]["username"], local,
                "username generated from the address"
            );

            let before = agent.token.clone();
            let (confirmed_status, confirmed) =
                agent.post("auth/email/verify", json!({"key": code})).await;
            assert_eq!(confirmed_status, 200, "{:?}", confirmed);
            assert_eq!(confirmed["meta"]["is_authenticated"], true);
            assert_eq!(
                confirmed["data"]["methods"],
                json!([]),
                "a signup records no authentication"
            );
            assert_eq!(confirmed["data"]["user"]["email"], folded.as_str());
            if client == "app" {
                assert_ne!(agent.token, before, "login rotates the session token");
            }
            // The stage is over.
            let (again_status, _) = agent.post("auth/email/verify", json!({"key": code})).await;
            assert_eq!(again_status, 409);
            // Logged in: login and signup are conflicts.
            let (login_status, _) = agent
                .post("auth/login", json!({"email": folded, "password": PASSWORD}))
                .await;
            assert_eq!(login_status, 409);
            let (signup_status, _) = agent
                .post(
                    "auth/signup",
                    json!({"email": "new@example.com", "password": PASSWORD}),
                )
                .await;
            assert_eq!(signup_status, 409);

            // Reauthenticate: wrong, then right.
            let (wrong_status, wrong) = agent
                .post("auth/reauthenticate", json!({"password": "nope-nope"}))
                .await;
            assert_eq!(wrong_status, 400);
            assert_eq!(
                codes_of(&wrong),
                error("incorrect_password", Some("password"))
            );
            let (right_status, right) = agent
                .post("auth/reauthenticate", json!({"password": PASSWORD}))
                .await;
            assert_eq!(right_status, 200);
            let methods = right["data"]["methods"].as_array().unwrap();
            assert_eq!(methods.len(), 1);
            assert_eq!(methods[0]["method"], "password");
            assert_eq!(methods[0]["reauthenticated"], true);
            assert!(methods[0]["at"].as_f64().is_some());

            // Log out, log in again by password.
            let (out_status, _) = agent.delete("auth/session", None).await;
            assert_eq!(out_status, 401);
            agent.token = None;
            let (anonymous_status, _) = agent
                .post("auth/reauthenticate", json!({"password": PASSWORD}))
                .await;
            assert_eq!(anonymous_status, 401, "reauthentication needs a login");
            let (login_status, login) = agent
                .post("auth/login", json!({"email": email, "password": PASSWORD}))
                .await;
            assert_eq!(login_status, 200, "{:?}", login);
            let methods = login["data"]["methods"].as_array().unwrap();
            assert_eq!(methods.len(), 1);
            assert_eq!(methods[0]["method"], "password");
            assert_eq!(methods[0]["email"], folded.as_str());
        }
        server
    })
    .await;
}

/// Every operation through the generated client (app).
#[tokio::test]
async fn the_generated_client_speaks_every_operation() {
    on_each_backend(
        |config| {
            by_code(config);
            config.account.email_verification_max_resend_count = 2;
        },
        |server| async move {
            let client = server.client();
            let app = types::Client::App;
            let body = types::SignupInput {
                email: Some(types::Email("gen@example.com".into())),
                password: Some(types::Password(PASSWORD.into())),
                phone: None,
                username: None,
            };
            let error = client
                .signup_create(app, None, &body)
                .await
                .expect_err("401");
            let pending = match error {
                allauth_api::client::Error::ErrorResponse(r) => r.into_inner(),
                other => {
                    // Undocumented-status answers carry the body too.
                    panic!("unexpected {other:?}")
                }
            };
            let token = pending["meta"]["session_token"]
                .as_str()
                .expect("token")
                .to_string();

            // Resend: a new code (the first one stops working).
            let first = code_in(&mails_to(&server, "gen@example.com").await[0]);
            // The confirm_email limit (1/10s/key) holds the resend back.
            let limited = client
                .email_verification_resend(app, Some(&token))
                .await
                .expect_err("429");
            assert_eq!(limited.status().map(|s| s.as_u16()), Some(429));
            let db = server.server.context().db.clone();
            db.run(|conn| {
                use diesel::prelude::*;
                diesel::delete(allauth_server::db::schema::rate_limit_hits::table).execute(conn)?;
                Ok(())
            })
            .await
            .expect("limits reset");
            client
                .email_verification_resend(app, Some(&token))
                .await
                .expect("200");
            let mails = mails_to(&server, "gen@example.com").await;
            let second = code_in(&mails[1]);
            assert_ne!(first, second);

            let view = client
                .email_verification_view(app, &second, Some(&token))
                .await
                .expect("200")
                .into_inner();
            assert_eq!(view.data.email.0, "gen@example.com");
            assert!(view.meta.is_authenticating);
            let done = client
                .email_verification_confirm(
                    app,
                    Some(&token),
                    &types::VerifyEmailInput { key: second },
                )
                .await
                .expect("200")
                .into_inner();
            let token = done.meta.session_token.clone().expect("rotated token");

            let reauth = client
                .reauthenticate_password(
                    app,
                    Some(&token),
                    &types::ReauthenticateInput {
                        password: types::Password(PASSWORD.into()),
                    },
                )
                .await
                .expect("200")
                .into_inner();
            assert_eq!(reauth.data.methods.len(), 1);

            let login = types::LoginInput {
                email: Some(types::Email("gen@example.com".into())),
                password: types::Password(PASSWORD.into()),
                phone: None,
                username: None,
            };
            let fresh = client
                .login_password(app, None, &login)
                .await
                .expect("200")
                .into_inner();
            assert!(fresh.meta.session_token.is_some());
            server
        },
    )
    .await;
}

/// Field errors, enumeration prevention, attempts, the login_failed limit.
#[tokio::test]
async fn errors_and_enumeration_prevention_by_code() {
    on_each_backend(by_code, |server| async move {
        for client in CLIENTS {
            let mut agent = Agent::new(&server, client);
            let (empty_status, empty) = agent.post("auth/signup", json!({})).await;
            assert_eq!(empty_status, 400);
            assert_eq!(
                codes_of(&empty),
                vec![("required".into(), Some("email".into())), ("required".into(), Some("password".into()))]
            );
            let (_, bad) = agent.post("auth/signup", json!({"email": "abc", "password": "abc"})).await;
            assert_eq!(
                codes_of(&bad),
                vec![("invalid".into(), Some("email".into())), ("password_too_short".into(), Some("password".into()))]
            );
            let (_, login) = agent.post("auth/login", json!({"password": "x"})).await;
            assert_eq!(codes_of(&login), error("required", Some("email")), "the only login method is required");
            let (_, login) = agent.post("auth/login", json!({"username": "x", "password": "x"})).await;
            assert_eq!(codes_of(&login), error("required", Some("email")), "username is not a login method here");
        }

        // A verified account; a signup with its address pretends success.
        let email = "owner@example.com";
        user(&server, "owner", email, true, Some(PASSWORD)).await;
        for client in CLIENTS {
            let mut agent = Agent::new(&server, client);
            let users_before = user_count(&server).await;
            let hashes_before = server.server.context().passwords.computations();
            let (signup_status, signup) = agent.post("auth/signup", json!({"email": "Owner@Example.com", "password": PASSWORD})).await;
            // The password is hashed as for a new account: the same time.
            assert_eq!(server.server.context().passwords.computations() - hashes_before, 1, "{signup}");
            if signup_status == 429 {
                // The second client within 10 s: the confirm_email limit (by code, as allauth).
                assert_eq!(client, "browser");
                continue;
            }
            assert_eq!(signup_status, 401, "{:?}", signup);
            assert_eq!(pending_flow(&signup).as_deref(), Some("verify_email"));
            assert_eq!(user_count(&server).await, users_before, "no account is made");
            let mails = mails_to(&server, email).await;
            assert!(mails[0].contains("already"), "the owner hears of it: {}", mails[0]);
            assert!(!mails[0].contains('-') || !mails[0].split_whitespace().any(|w| w.len() == 9 && w.as_bytes()[4] == b'-'), "no code in it");
            // Three wrong codes end the stage, then 409; a missing key is
            // one of them.
            let (_, missing) = agent.post("auth/email/verify", json!({})).await;
            assert_eq!(codes_of(&missing), error("required", Some("key")));
            let (_, wrong) = agent.post("auth/email/verify", json!({"key": "CCCC-CCCC"})).await;
            assert_eq!(codes_of(&wrong), error("incorrect_code", Some("key")));
            let (last_status, _) = agent.post("auth/email/verify", json!({"key": "CCCC-CCCC"})).await;
            assert_eq!(last_status, 400);
            let (after_status, _) = agent.post("auth/email/verify", json!({"key": "CCCC-CCCC"})).await;
            assert_eq!(after_status, 409);
            let (_, session) = agent.get("auth/session", &[]).await;
            assert_eq!(pending_flow(&session), None, "the stage ended");
            // Resend without a stage; and resending is off by default.
            let (resend_status, _) = agent.post("auth/email/verify/resend", json!({})).await;
            assert_eq!(resend_status, 409);
        }

        // Login: unknown and wrong answer alike; 5 failures per address, then 400 too_many_login_attempts.
        for client in CLIENTS {
            let mut agent = Agent::new(&server, client);
            let (_, unknown) = agent.post("auth/login", json!({"email": format!("nobody-{client}@example.com"), "password": "wrong-pass"})).await;
            assert_eq!(codes_of(&unknown), error("email_password_mismatch", Some("password")));
        }
        let mut agent = Agent::new(&server, "app");
        for _ in 0..5 {
            let (_, wrong) = agent.post("auth/login", json!({"email": email, "password": "wrong-pass"})).await;
            assert_eq!(codes_of(&wrong), error("email_password_mismatch", Some("password")));
        }
        let (refused_status, refused) = agent.post("auth/login", json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(refused_status, 400);
        assert_eq!(codes_of(&refused), error("too_many_login_attempts", None));
        server
    })
    .await;
}

/// Login of an unverified account stops at the stage and mails a code;
/// logging in there completes with the password record.
#[tokio::test]
async fn login_with_unverified_address_stops_at_verify_email() {
    on_each_backend(by_code, |server| async move {
        for client in CLIENTS {
            let email = format!("late-{client}@example.com").to_lowercase();
            user(
                &server,
                &format!("late{client}"),
                &email,
                false,
                Some(PASSWORD),
            )
            .await;
            let mut agent = Agent::new(&server, client);
            let (login_status, login) = agent
                .post("auth/login", json!({"email": email, "password": PASSWORD}))
                .await;
            assert_eq!(login_status, 401, "{:?}", login);
            assert_eq!(pending_flow(&login).as_deref(), Some("verify_email"));
            // Within the confirm_email window a second login is refused (allauth's dry run).
            let mut other = Agent::new(&server, client);
            let (_, again) = other
                .post("auth/login", json!({"email": email, "password": PASSWORD}))
                .await;
            assert_eq!(codes_of(&again), error("too_many_login_attempts", None));

            let code = code_in(&mails_to(&server, &email).await[0]);
            let (done_status, done) = agent.post("auth/email/verify", json!({"key": code})).await;
            assert_eq!(done_status, 200, "{:?}", done);
            let methods = done["data"]["methods"].as_array().unwrap();
            assert_eq!(methods.len(), 1);
            assert_eq!(methods[0]["method"], "password");
            assert_eq!(methods[0]["email"], email.as_str());
        }
        server
    })
    .await;
}

/// Verification by link: the signed key, login by username, no login on
/// confirmation unless configured, keys work once, tampered keys fail.
#[tokio::test]
async fn verification_by_link() {
    for login_on_confirmation in [false, true] {
        on_each_backend(
            |config| {
                by_link(config);
                config.account.login_on_email_confirmation = login_on_confirmation;
            },
            |server| async move {
                for client in CLIENTS {
                    let name = format!("Link{client}");
                    let email = format!("{}@example.com", name.to_lowercase());
                    let mut agent = Agent::new(&server, client);
                    // The verification-by-code operations are conflicts here.
                    let (resend_status, _) =
                        agent.post("auth/email/verify/resend", json!({})).await;
                    assert_eq!(resend_status, 409);
                    let (signup_status, signup) = agent
                        .post(
                            "auth/signup",
                            json!({"email": email, "username": name, "password": PASSWORD}),
                        )
                        .await;
                    assert_eq!(signup_status, 401, "{:?}", signup);
                    assert_eq!(pending_flow(&signup).as_deref(), Some("verify_email"));
                    let key = link_key(
                        &mails_to(&server, &email).await[0],
                        "https://app.test/verify/",
                    );

                    let (_, bad) = agent
                        .send(
                            "GET",
                            "auth/email/verify",
                            None,
                            &[("X-Email-Verification-Key", &format!("{key}x"))],
                        )
                        .await;
                    assert_eq!(codes_of(&bad), error("invalid_or_expired_key", Some("key")));
                    let (info_status, info) = agent
                        .send(
                            "GET",
                            "auth/email/verify",
                            None,
                            &[("X-Email-Verification-Key", &key)],
                        )
                        .await;
                    assert_eq!(info_status, 200, "{:?}", info);
                    assert_eq!(info["data"]["user"]["username"], name.as_str());
                    assert_eq!(info["meta"]["is_authenticating"], true);
                    // Another session may look at the key too; it is not authenticating there.
                    let mut stranger = Agent::new(&server, client);
                    let (_, seen) = stranger
                        .send(
                            "GET",
                            "auth/email/verify",
                            None,
                            &[("X-Email-Verification-Key", &key)],
                        )
                        .await;
                    assert_eq!(seen["meta"]["is_authenticating"], false);

                    let (confirmed_status, confirmed) =
                        agent.post("auth/email/verify", json!({"key": key})).await;
                    if login_on_confirmation {
                        assert_eq!(confirmed_status, 200, "{:?}", confirmed);
                        assert_eq!(confirmed["data"]["methods"], json!([]));
                    } else {
                        assert_eq!(confirmed_status, 401);
                        assert_eq!(pending_flow(&confirmed), None, "the stage is dropped");
                    }
                    let (_, reused) = stranger
                        .post("auth/email/verify", json!({"key": key}))
                        .await;
                    assert_eq!(
                        codes_of(&reused),
                        error("invalid_or_expired_key", Some("key"))
                    );

                    // Login by username (any case) now works, recorded with the username.
                    let mut fresh = Agent::new(&server, client);
                    let (login_status, login) = fresh
                        .post(
                            "auth/login",
                            json!({"username": name.to_uppercase(), "password": PASSWORD}),
                        )
                        .await;
                    assert_eq!(login_status, 200, "{:?}", login);
                    assert_eq!(login["data"]["methods"][0]["username"], name.to_uppercase());
                    let (_, wrong) = Agent::new(&server, client)
                        .post(
                            "auth/login",
                            json!({"username": name, "password": "wrong-pass"}),
                        )
                        .await;
                    assert_eq!(
                        codes_of(&wrong),
                        error("username_password_mismatch", Some("password"))
                    );
                    let (_, both) = Agent::new(&server, client)
                        .post(
                            "auth/login",
                            json!({"username": name, "email": email, "password": PASSWORD}),
                        )
                        .await;
                    assert_eq!(codes_of(&both), error("invalid_login", None));
                }
                server
            },
        )
        .await;
    }
}

/// Username rules, generated usernames, optional verification, signup closed,
/// the signup limit.
#[tokio::test]
async fn signup_fields_and_rules() {
    on_each_backend(
        |config| {
            config.email.backend = EmailBackend::File;
            config.account.login_methods = vec![LoginMethod::Username];
            config.account.username_blacklist = vec!["Admin".into()];
            config.account.username_min_length = 3;
            config.finalize();
        },
        |server| async move {
            for client in CLIENTS {
                let mut agent = Agent::new(&server, client);
                for (username, code) in [
                    ("admin", "username_blacklisted"),
                    ("ab", "min_length"),
                    ("has space", "invalid"),
                ] {
                    let (_, answer) = agent
                        .post(
                            "auth/signup",
                            json!({"username": username, "password": PASSWORD}),
                        )
                        .await;
                    assert_eq!(
                        codes_of(&answer),
                        error(code, Some("username")),
                        "{username}"
                    );
                }
                let name = format!("Rule{client}");
                let (ok_status, ok) = agent
                    .post(
                        "auth/signup",
                        json!({"username": name, "password": PASSWORD}),
                    )
                    .await;
                assert_eq!(ok_status, 200, "{:?}", ok);
                assert_eq!(ok["data"]["user"]["username"], name.as_str());
                assert_eq!(ok["data"]["user"]["display"], name.as_str());
                assert_eq!(ok["data"]["methods"], json!([]));
                let mut other = Agent::new(&server, client);
                let (_, taken) = other
                    .post(
                        "auth/signup",
                        json!({"username": name.to_lowercase(), "password": PASSWORD}),
                    )
                    .await;
                assert_eq!(codes_of(&taken), error("username_taken", Some("username")));
            }
            server
        },
    )
    .await;

    on_each_backend(
        |config| {
            config.email.backend = EmailBackend::File;
            config.account.login_methods = vec![LoginMethod::Email];
            config.account.signup_fields = vec![
                field(SignupFieldName::Email, true),
                field(SignupFieldName::Password1, true),
            ];
            config.finalize();
        },
        |server| async move {
            user(&server, "ann", "someone@example.com", true, Some(PASSWORD)).await;
            let mut agent = Agent::new(&server, "app");
            // Optional verification: logged in at once, a link mailed; the
            // username comes from the address, made unique.
            let (ok_status, ok) = agent
                .post(
                    "auth/signup",
                    json!({"email": "Ann@example.com", "password": PASSWORD}),
                )
                .await;
            assert_eq!(ok_status, 200, "{:?}", ok);
            let username = ok["data"]["user"]["username"].as_str().unwrap().to_string();
            assert!(
                username.starts_with("ann") && username != "ann",
                "{username}"
            );
            mails_to(&server, "ann@example.com").await;
            // A taken address is an error when verification is not mandatory.
            let mut other = Agent::new(&server, "app");
            let (_, taken) = other
                .post(
                    "auth/signup",
                    json!({"email": "SOMEONE@example.com", "password": PASSWORD}),
                )
                .await;
            assert_eq!(codes_of(&taken), error("email_taken", Some("email")));
            server
        },
    )
    .await;

    on_each_backend(
        |config| {
            config.account.signup_open = false;
            rate_limits(config, "{ signup = \"2/m/ip\" }");
        },
        |server| async move {
            let mut agent = Agent::new(&server, "app");
            for _ in 0..2 {
                let (closed_status, _) = agent
                    .post(
                        "auth/signup",
                        json!({"username": "closed", "password": PASSWORD}),
                    )
                    .await;
                assert_eq!(closed_status, 403);
            }
            let (limited_status, limited) = agent
                .post(
                    "auth/signup",
                    json!({"username": "closed", "password": PASSWORD}),
                )
                .await;
            assert_eq!(limited_status, 429);
            assert_eq!(limited, json!({"status": 429}));
            server
        },
    )
    .await;
}

/// `login` (per ip) answers 429; inactive accounts stay anonymous; Django
/// hashes are upgraded at login.
#[tokio::test]
async fn login_limits_inactive_and_hash_upgrade() {
    on_each_backend(
        |config| rate_limits(config, "{ login = \"3/m/ip\" }"),
        |server| async move {
            let id = user(
                &server,
                "sleepy",
                "sleepy@example.com",
                true,
                Some(PASSWORD),
            )
            .await;
            let db = server.server.context().db.clone();
            db.run(move |conn| users::set_active(conn, id, false))
                .await
                .expect("deactivated");
            let mut agent = Agent::new(&server, "app");
            let (_, first) = agent
                .post(
                    "auth/login",
                    json!({"username": "sleepy", "password": "wrong-pass"}),
                )
                .await;
            assert_eq!(
                codes_of(&first),
                error("username_password_mismatch", Some("password"))
            );
            let (inactive_status, inactive) = agent
                .post(
                    "auth/login",
                    json!({"username": "sleepy", "password": PASSWORD}),
                )
                .await;
            assert_eq!(inactive_status, 401);
            assert_eq!(inactive["meta"]["is_authenticated"], false);

            // A Django PBKDF2 hash of PASSWORD (salt "saltsaltsalt", 1000 iterations).
            let django = django_hash(PASSWORD);
            let id = user(
                &server,
                "legacy",
                "legacy@example.com",
                true,
                Some(PASSWORD),
            )
            .await;
            db.run(move |conn| users::set_password_hash(conn, id, Some(&django)))
                .await
                .expect("stored");
            let (login_status, login) = Agent::new(&server, "browser")
                .post(
                    "auth/login",
                    json!({"username": "legacy", "password": PASSWORD}),
                )
                .await;
            assert_eq!(login_status, 200, "{:?}", login);
            let stored = db
                .run(move |conn| users::by_id(conn, id))
                .await
                .expect("read")
                .expect("user")
                .password_hash
                .expect("hash");
            assert!(stored.starts_with("$argon2id$"), "upgraded: {stored}");

            // Three logins so far from this address; the limit is 3 a minute.
            let (limited_status, limited) = agent
                .post("auth/login", json!({"username": "x", "password": "y"}))
                .await;
            assert_eq!(
                limited_status, 429,
                "the fourth login in a minute: {:?}",
                limited
            );
            assert_eq!(limited, json!({"status": 429}));
            server
        },
    )
    .await;
}

/// Django's `pbkdf2_sha256$1000$saltsaltsalt$…` for `password`.
fn django_hash(password: &str) -> String {
    // Computed with Django 5.2: make_password(PASSWORD, "saltsaltsalt", "pbkdf2_sha256") with 1000 iterations.
    assert_eq!(password, PASSWORD);
    let mut out = [0u8; 32];
    pbkdf2_sha256(password.as_bytes(), b"saltsaltsalt", 1000, &mut out);
    use base64::Engine as _;
    format!(
        "pbkdf2_sha256$1000$saltsaltsalt${}",
        base64::engine::general_purpose::STANDARD.encode(out)
    )
}

fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8; 32]) {
    use hmac::{KeyInit, Mac};
    type H = hmac::Hmac<sha2::Sha256>;
    let mut mac = <H as KeyInit>::new_from_slice(password).expect("key");
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    *out = u;
    for _ in 1..rounds {
        let mut mac = <H as KeyInit>::new_from_slice(password).expect("key");
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
}

/// 100 concurrent signups with one address make exactly one account, with
/// and without mandatory verification.
#[tokio::test]
async fn concurrent_signups_make_one_account() {
    for mandatory in [false, true] {
        on_each_backend(
            |config| {
                config.account.login_methods = vec![LoginMethod::Email];
                config.account.signup_fields = vec![
                    field(SignupFieldName::Email, true),
                    field(SignupFieldName::Password1, true),
                ];
                config.account.prevent_enumeration = PreventEnumeration::Enabled;
                if mandatory {
                    config.account.email_verification = EmailVerification::Mandatory;
                } else {
                    config.account.email_verification = EmailVerification::None;
                }
                rate_limits(config, "false");
                config.database.max_connections = 10;
            },
            |server| async move {
                let url = server.url("/_allauth/app/v1/auth/signup");
                let mut tasks = Vec::new();
                for i in 0..100 {
                    let url = url.clone();
                    let email = if i % 2 == 0 {
                        "race@example.com"
                    } else {
                        "RACE@example.com"
                    };
                    tasks.push(tokio::spawn(async move {
                        let response = raw()
                            .post(url)
                            .json(&json!({"email": email, "password": PASSWORD}))
                            .send()
                            .await
                            .expect("request");
                        let status = response.status().as_u16();
                        let body: Value = response.json().await.expect("json");
                        (status, body)
                    }));
                }
                let mut statuses = BTreeMap::new();
                for task in tasks {
                    let (status, body) = task.await.expect("task");
                    if status == 400 {
                        assert_eq!(body["errors"][0]["code"], "email_taken");
                    }
                    *statuses.entry(status).or_insert(0) += 1;
                }
                if mandatory {
                    assert_eq!(statuses, BTreeMap::from([(401, 100)]), "all answered alike");
                } else {
                    assert_eq!(statuses, BTreeMap::from([(200, 1), (400, 99)]));
                }
                assert_eq!(user_count(&server).await, 1, "exactly one account");
                let db = server.server.context().db.clone();
                let rows = db
                    .run(|conn| email_addresses::by_email_lower(conn, "race@example.com"))
                    .await
                    .expect("rows");
                assert_eq!(rows.len(), 1);
                server
            },
        )
        .await;
    }
}
