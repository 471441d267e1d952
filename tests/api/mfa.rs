//! MFA (`Account: 2FA`, `Authentication: 2FA`) for both clients on both
//! databases: TOTP set-up with a secret from the session, the recovery
//! codes that come with it, the `mfa_authenticate` stage of a login with a
//! TOTP or recovery code (each used once, also when sent simultaneously),
//! reauthentication by code, trusting a browser, the limits and the
//! notices. TOTP codes come from `totp-rs`, as an authenticator app would
//! compute them.

use allauth_api::types;
use allauth_server::config::Config;
use serde_json::{json, Value};
use totp_rs::{Builder, Secret};

use crate::harness::{
    mails, now_secs, on_each_backend, on_each_backend_and_client, response_cookie, session_for,
    user, Agent, TestServer, CLIENTS, CSRF,
};

const PASSWORD: &str = "a sturdy passphrase 42";

/// allauth's defaults, with notices on and a step of tolerance: a code of
/// the next step is accepted now, so that a test need not wait for one.
fn configure(config: &mut Config) {
    config.account.email_notifications = true;
    config.mfa.totp_tolerance = 1;
}

/// The TOTP code of `secret` for the step `offset` steps from now.
fn totp_code(secret: &str, offset: i64) -> String {
    let bytes = Secret::try_from_base32(secret).expect("base32 secret");
    let totp = Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .build_noncompliant();
    let at = (now_secs() as i64 + offset * 30).max(0);
    totp.generate(u64::try_from(at).expect("time")).to_string()
}

/// A user with a verified address and a password, signed in (a fresh
/// password login) with `client`.
async fn signed_in(server: &TestServer, client: &'static str, name: &str) -> (Agent, i64) {
    let email = format!("{name}@example.com");
    let id = user(server, name, &email, true, Some(PASSWORD)).await;
    let mut agent = Agent::new(server, client);
    let (status, body) = login(&mut agent, name).await;
    assert_eq!(status, 200, "{body}");
    (agent, id)
}

/// Logs out; the app's token is dead afterwards.
async fn logout(agent: &mut Agent) {
    let (status, _) = agent.call("DELETE", "auth/session", None).await;
    assert_eq!(status, 401);
    agent.token = None;
}

async fn login(agent: &mut Agent, name: &str) -> (u16, Value) {
    agent
        .call(
            "POST",
            "auth/login",
            Some(json!({"username": name, "password": PASSWORD})),
        )
        .await
}

/// `POST auth/2fa/authenticate` with `code`.
async fn second_factor(agent: &mut Agent, code: &str) -> (u16, Value) {
    agent
        .call(
            "POST",
            "auth/2fa/authenticate",
            Some(json!({ "code": code })),
        )
        .await
}

/// `POST auth/2fa/reauthenticate` with `code`.
async fn reauthenticate(agent: &mut Agent, code: &str) -> (u16, Value) {
    agent
        .call(
            "POST",
            "auth/2fa/reauthenticate",
            Some(json!({ "code": code })),
        )
        .await
}

/// Sets up TOTP for the signed-in `agent`; the secret.
async fn activate_totp(agent: &mut Agent) -> String {
    let (status, body) = agent.call("GET", "account/authenticators/totp", None).await;
    assert_eq!(status, 404, "{body}");
    let secret = body["meta"]["secret"].as_str().expect("secret").to_owned();
    let (status, body) = agent
        .call(
            "POST",
            "account/authenticators/totp",
            Some(json!({"code": totp_code(&secret, 0)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    secret
}

async fn unused_codes(agent: &mut Agent) -> Vec<String> {
    let (status, body) = agent
        .call("GET", "account/authenticators/recovery-codes", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["unused_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

fn error(code: &str, param: Option<&str>, message: &str) -> Value {
    let mut item = json!({"code": code, "message": message});
    if let Some(param) = param {
        item["param"] = json!(param);
    }
    json!({"status": 400, "errors": [item]})
}

fn incorrect_code() -> Value {
    error("incorrect_code", Some("code"), "Incorrect code.")
}

fn mfa_pending(body: &Value) -> bool {
    body["data"]["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .any(|f| {
            f == &json!({"id": "mfa_authenticate", "is_pending": true, "types": ["recovery_codes", "totp"]})
        })
}

#[tokio::test]
async fn totp_set_up_then_login_by_totp_and_by_recovery_code() {
    on_each_backend_and_client(configure, async |server, client| {
        let (mut agent, user_id) = signed_in(server, client, &format!("tina{client}")).await;
        let (status, body) = agent.call("GET", "account/authenticators", None).await;
        assert_eq!((status, body), (200, json!({"status": 200, "data": []})));

        // A secret is offered, and kept for the activation.
        let (status, body) = agent.call("GET", "account/authenticators/totp", None).await;
        assert_eq!(status, 404, "{body}");
        let secret = body["meta"]["secret"].as_str().expect("secret").to_owned();
        assert_eq!(secret.len(), 32);
        let url = body["meta"]["totp_url"].as_str().expect("url");
        assert_eq!(
            url,
            format!(
                "otpauth://totp/tina{client}%40example.com?secret={secret}&issuer=allauth-server"
            )
        );
        assert_eq!(body.as_object().expect("body").len(), 2, "{body}");

        let (status, body) = agent
            .call(
                "POST",
                "account/authenticators/totp",
                Some(json!({"code": "000000x"})),
            )
            .await;
        assert_eq!((status, body), (400, incorrect_code()));
        let (status, body) = agent
            .call("POST", "account/authenticators/totp", Some(json!({})))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["code"], "required");
        assert_eq!(body["errors"][0]["param"], "code");

        let code = totp_code(&secret, 0);
        let (status, body) = agent
            .call(
                "POST",
                "account/authenticators/totp",
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["type"], "totp");
        assert!(body["data"]["created_at"].as_f64().is_some());
        assert_eq!(body["data"]["last_used_at"], Value::Null);

        // The recovery codes came with it; the notice went out.
        let (status, body) = agent.call("GET", "account/authenticators", None).await;
        assert_eq!(status, 200);
        let list = body["data"].as_array().expect("list");
        assert_eq!(list.len(), 2, "{body}");
        assert_eq!(list[0]["type"], "totp");
        assert_eq!(list[1]["type"], "recovery_codes");
        assert_eq!(list[1]["total_code_count"], 10);
        assert_eq!(list[1]["unused_code_count"], 10);
        assert!(list[1].get("unused_codes").is_none(), "{body}");
        let sent = mails(server).await;
        let notices: Vec<&String> = sent.iter().map(|(_, subject, _)| subject).collect();
        assert!(
            notices.iter().any(|s| *s == "Authenticator app activated"),
            "{notices:?}"
        );

        let codes = unused_codes(&mut agent).await;
        assert_eq!(codes.len(), 10);
        assert!(codes
            .iter()
            .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit())));
        // Active now: the GET shows it.
        let (status, body) = agent.call("GET", "account/authenticators/totp", None).await;
        assert_eq!((status, &body["data"]["type"]), (200, &json!("totp")));

        // A new login waits for the second factor.
        logout(&mut agent).await;
        let (status, body) = login(&mut agent, &format!("tina{client}")).await;
        assert_eq!(status, 401, "{body}");
        assert!(mfa_pending(&body), "{body}");
        let (status, body) = agent.call("GET", "auth/session", None).await;
        assert!(status == 401 && mfa_pending(&body), "{body}");

        // The code that activated TOTP is used up.
        let (status, body) = second_factor(&mut agent, &code).await;
        assert_eq!((status, body), (400, incorrect_code()));
        // The next step's code works, once.
        let next = totp_code(&secret, 1);
        let (status, body) = second_factor(&mut agent, &next).await;
        assert_eq!(status, 200, "{body}");
        let methods = body["data"]["methods"].as_array().expect("methods");
        assert_eq!(methods.len(), 2, "{body}");
        assert_eq!(methods[0]["method"], "password");
        assert_eq!(methods[1]["method"], "mfa");
        assert_eq!(methods[1]["type"], "totp");
        assert!(methods[1]["id"].as_i64().is_some());
        assert_eq!(body["data"]["user"]["id"], user_id);
        // No stage any more.
        let (status, body) = second_factor(&mut agent, &next).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["meta"]["is_authenticated"], Value::Null);

        logout(&mut agent).await;
        let (status, _) = login(&mut agent, &format!("tina{client}")).await;
        assert_eq!(status, 401);
        let (status, body) = second_factor(&mut agent, &next).await;
        assert_eq!(
            (status, body),
            (400, incorrect_code()),
            "a TOTP code serves once"
        );
        // A recovery code, typed with spaces around it.
        let (status, body) = second_factor(&mut agent, &format!(" {} ", codes[3])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["methods"][1]["type"], "recovery_codes");

        let (_, body) = agent.call("GET", "account/authenticators", None).await;
        assert_eq!(body["data"][1]["unused_code_count"], 9);
        assert!(body["data"][1]["last_used_at"].as_f64().is_some());
        assert!(body["data"][0]["last_used_at"].as_f64().is_some());
        let left = unused_codes(&mut agent).await;
        assert!(!left.contains(&codes[3]) && left.len() == 9);

        logout(&mut agent).await;
        login(&mut agent, &format!("tina{client}")).await;
        let (status, body) = second_factor(&mut agent, &codes[3]).await;
        assert_eq!(
            (status, body),
            (400, incorrect_code()),
            "a recovery code serves once"
        );
        let (status, _) = second_factor(&mut agent, &codes[4]).await;
        assert_eq!(status, 200);
    })
    .await;
}

#[tokio::test]
async fn changes_need_a_recent_authentication_which_a_code_gives() {
    let config = |c: &mut Config| {
        configure(c);
        c.account.reauthentication_required = true;
    };
    on_each_backend_and_client(config, async |server, client| {
        let (mut agent, user_id) = signed_in(server, client, &format!("rex{client}")).await;
        let secret = activate_totp(&mut agent).await;
        let codes = unused_codes(&mut agent).await;

        // A session whose last authentication is an hour old.
        let token = session_for(server, client, user_id, now_secs() - 3600.0).await;
        let mut old = Agent::with_token(server, client, &token);
        let flows = json!([
            {"id": "reauthenticate"},
            {"id": "mfa_reauthenticate", "types": ["recovery_codes", "totp"]}
        ]);
        for (method, path) in [
            ("DELETE", "account/authenticators/totp"),
            ("GET", "account/authenticators/recovery-codes"),
            ("POST", "account/authenticators/recovery-codes"),
        ] {
            let (status, body) = old.call(method, path, None).await;
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert_eq!(body["data"]["flows"], flows, "{body}");
            assert_eq!(body["meta"]["is_authenticated"], true);
        }
        // Listing needs none.
        let (status, _) = old.call("GET", "account/authenticators", None).await;
        assert_eq!(status, 200);

        let (status, body) = reauthenticate(&mut old, "12345678").await;
        assert_eq!((status, body), (400, incorrect_code()));
        let (status, body) = reauthenticate(&mut old, &codes[0]).await;
        assert_eq!(status, 200, "{body}");
        let last = body["data"]["methods"]
            .as_array()
            .expect("methods")
            .last()
            .cloned();
        let last = last.expect("a record");
        assert_eq!(last["method"], "mfa");
        assert_eq!(last["type"], "recovery_codes");
        assert_eq!(last["reauthenticated"], true);

        // Now TOTP can go, and the recovery codes go with it.
        let (status, body) = old
            .call("DELETE", "account/authenticators/totp", None)
            .await;
        assert_eq!((status, body), (200, json!({"status": 200})));
        let (status, body) = old.call("GET", "account/authenticators", None).await;
        assert_eq!((status, body), (200, json!({"status": 200, "data": []})));
        let subjects: Vec<String> = mails(server).await.into_iter().map(|m| m.1).collect();
        assert!(subjects
            .iter()
            .any(|s| s == "Authenticator app deactivated"));
        // Deleting what is not there is fine, without reauthentication.
        let token = session_for(server, client, user_id, now_secs() - 3600.0).await;
        let mut old = Agent::with_token(server, client, &token);
        let (status, _) = old
            .call("DELETE", "account/authenticators/totp", None)
            .await;
        assert_eq!(status, 200);
        // Without authenticators the only reauthentication flow is the password.
        let (status, body) = old
            .call(
                "POST",
                "account/email",
                Some(json!({"email": "second@example.com"})),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["data"]["flows"], json!([{"id": "reauthenticate"}]));
        // The old secret does not log in any more.
        logout(&mut agent).await;
        let (status, body) = login(&mut agent, &format!("rex{client}")).await;
        assert_eq!(status, 200, "no second factor: {body}");
        let (status, _) = reauthenticate(&mut agent, &totp_code(&secret, 1)).await;
        assert_eq!(status, 400);
    })
    .await;
}

#[tokio::test]
async fn recovery_codes_regenerate_and_their_rules() {
    on_each_backend_and_client(configure, async |server, client| {
        let (mut agent, _) = signed_in(server, client, &format!("rita{client}")).await;
        let (status, body) = agent
            .call("GET", "account/authenticators/recovery-codes", None)
            .await;
        assert_eq!((status, body), (404, json!({"status": 404})));
        let (status, body) = agent
            .call("POST", "account/authenticators/recovery-codes", None)
            .await;
        assert_eq!(
            (status, body),
            (
                400,
                error(
                    "cannot_generate_recovery_codes",
                    None,
                    "You cannot generate recovery codes without having two-factor authentication enabled."
                )
            )
        );
        activate_totp(&mut agent).await;
        let old = unused_codes(&mut agent).await;
        let (status, body) = agent
            .call("POST", "account/authenticators/recovery-codes", None)
            .await;
        assert_eq!(status, 200, "{body}");
        let new: Vec<String> = body["data"]["unused_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        assert_eq!(new.len(), 10);
        assert_ne!(new, old);
        assert_eq!(body["data"]["unused_code_count"], 10);
        let subjects: Vec<String> = mails(server).await.into_iter().map(|m| m.1).collect();
        assert!(subjects.iter().any(|s| s == "New recovery codes generated"));

        logout(&mut agent).await;
        login(&mut agent, &format!("rita{client}")).await;
        let (status, _) = second_factor(&mut agent, &old[0]).await;
        assert_eq!(status, 400, "the old set is gone");
        let (status, _) = second_factor(&mut agent, &new[0]).await;
        assert_eq!(status, 200);
    })
    .await;
    // Shown once: a second view has the counts only.
    on_each_backend(
        |c| {
            configure(c);
            c.mfa.recovery_codes_show_once = true;
        },
        |server| async move {
            for client in CLIENTS {
                let (mut agent, _) = signed_in(&server, client, &format!("once{client}")).await;
                activate_totp(&mut agent).await;
                assert_eq!(unused_codes(&mut agent).await.len(), 10);
                let (status, body) = agent
                    .call("GET", "account/authenticators/recovery-codes", None)
                    .await;
                assert_eq!(status, 200);
                assert!(body["data"].get("unused_codes").is_none(), "{body}");
                assert_eq!(body["data"]["unused_code_count"], 10);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn an_unverified_address_blocks_adding_a_factor() {
    on_each_backend_and_client(configure, async |server, client| {
        let name = format!("una{client}");
        let email = format!("{name}@example.com");
        let id = user(server, &name, &email, false, Some(PASSWORD)).await;
        let token = session_for(server, client, id, now_secs()).await;
        let mut agent = Agent::with_token(server, client, &token);
        let message =
            "You cannot activate two-factor authentication until you have verified your email address.";
        let (status, body) = agent.call("GET", "account/authenticators/totp", None).await;
        assert_eq!(
            (status, body),
            (
                409,
                json!({"status": 409, "errors": [{"code": "unverified_email", "message": message}]})
            )
        );
        let (status, body) = agent
            .call("POST", "account/authenticators/totp", Some(json!({"code": "123456"})))
            .await;
        assert_eq!((status, body), (400, error("unverified_email", Some("code"), message)));
    })
    .await;
}

#[tokio::test]
async fn anonymous_callers_get_the_401() {
    let config = |c: &mut Config| {
        configure(c);
        c.mfa.trust_enabled = true;
    };
    on_each_backend_and_client(config, async |server, client| {
        let mut agent = Agent::new(server, client);
        for (method, path, body) in [
            ("GET", "account/authenticators", None),
            ("GET", "account/authenticators/totp", None),
            (
                "POST",
                "account/authenticators/totp",
                Some(json!({"code": "123456"})),
            ),
            ("DELETE", "account/authenticators/totp", None),
            ("GET", "account/authenticators/recovery-codes", None),
            ("POST", "account/authenticators/recovery-codes", None),
            (
                "POST",
                "auth/2fa/reauthenticate",
                Some(json!({"code": "123456"})),
            ),
        ] {
            let (status, answer) = agent.call(method, path, body).await;
            assert_eq!(status, 401, "{method} {path}: {answer}");
            assert_eq!(answer["meta"]["is_authenticated"], false);
        }
        // No stage pending: allauth's UnauthorizedResponse.
        let (status, answer) = second_factor(&mut agent, "123456").await;
        assert_eq!(status, 401);
        assert_eq!(answer["meta"]["is_authenticated"], Value::Null);
        assert_eq!(answer["data"]["flows"][0]["id"], "login");
        if client == "browser" {
            let (status, answer) = agent
                .call("POST", "auth/2fa/trust", Some(json!({"trust": true})))
                .await;
            assert_eq!(status, 401, "{answer}");
            assert_eq!(answer["meta"]["is_authenticated"], Value::Null);
        }
    })
    .await;
}

#[tokio::test]
async fn wrong_codes_count_toward_the_login_failed_limit() {
    // A server per client: the limit per address (10 a minute) is shared.
    for client in CLIENTS {
        on_each_backend(configure, |server| async move {
            let name = format!("lim{client}");
            let (mut agent, user_id) = signed_in(&server, client, &name).await;
            activate_totp(&mut agent).await;
            let codes = unused_codes(&mut agent).await;
            logout(&mut agent).await;
            login(&mut agent, &name).await;
            // login_failed: 5 per 5 minutes for the account's key.
            for _ in 0..5 {
                let (status, body) = second_factor(&mut agent, "00000000").await;
                assert_eq!((status, body), (400, incorrect_code()));
            }
            let (status, body) = second_factor(&mut agent, &codes[0]).await;
            assert_eq!(
                (status, body),
                (
                    400,
                    error(
                        "too_many_login_attempts",
                        Some("code"),
                        "Too many failed login attempts. Try again later."
                    )
                )
            );
            // Reauthentication counts against the same key.
            let token = session_for(&server, client, user_id, now_secs()).await;
            let mut other = Agent::with_token(&server, client, &token);
            let (status, body) = reauthenticate(&mut other, &codes[0]).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["errors"][0]["code"], "too_many_login_attempts");
            server
        })
        .await;
    }
}

/// `count` simultaneous `POST auth/2fa/authenticate` with `code`, each
/// from its own login waiting for the second factor; how many succeeded.
async fn simultaneous_second_factors(
    server: &TestServer,
    client: &'static str,
    name: &str,
    code: &str,
    count: usize,
) -> usize {
    let mut agents = Vec::new();
    for _ in 0..count {
        let mut agent = Agent::new(server, client);
        let (status, _) = login(&mut agent, name).await;
        assert_eq!(status, 401);
        agents.push(agent);
    }
    let tasks: Vec<_> = agents
        .iter()
        .map(|agent| {
            let request = agent.request(
                "POST",
                "auth/2fa/authenticate",
                Some(json!({"code": code})),
                &[],
            );
            tokio::spawn(async move { request.send().await.expect("request").status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test]
async fn a_code_sent_many_times_at_once_logs_in_once() {
    on_each_backend(
        |c| {
            configure(c);
            // The limit is not what is tested here.
            let off =
                Config::from_sources("[account]\nrate_limits = false\n", &[]).expect("config");
            c.account.rate_limits = off.account.rate_limits;
        },
        |server| async move {
            for client in CLIENTS {
                let name = format!("burst{client}");
                let (mut agent, _) = signed_in(&server, client, &name).await;
                let secret = activate_totp(&mut agent).await;
                let codes = unused_codes(&mut agent).await;
                let wins = simultaneous_second_factors(&server, client, &name, &codes[0], 8).await;
                assert_eq!(wins, 1, "{client}: one recovery code, one login");
                let totp = totp_code(&secret, 1);
                let wins = simultaneous_second_factors(&server, client, &name, &totp, 8).await;
                assert_eq!(wins, 1, "{client}: one TOTP code, one login");
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_trusted_browser_skips_the_second_factor_until_the_setup_changes() {
    on_each_backend(
        |c| {
            configure(c);
            c.mfa.trust_enabled = true;
        },
        |server| async move {
            // The app client has no trust stage: the login completes.
            let (mut app, _) = signed_in(&server, "app", "apptrust").await;
            let secret = activate_totp(&mut app).await;
            logout(&mut app).await;
            login(&mut app, "apptrust").await;
            let (status, _) = second_factor(&mut app, &totp_code(&secret, 1)).await;
            assert_eq!(status, 200);

            let (mut browser, _) = signed_in(&server, "browser", "trusty").await;
            activate_totp(&mut browser).await;
            let codes = unused_codes(&mut browser).await;
            logout(&mut browser).await;
            login(&mut browser, "trusty").await;
            let (status, body) = second_factor(&mut browser, &codes[0]).await;
            assert_eq!(status, 401, "{body}");
            assert!(body["data"]["flows"]
                .as_array()
                .expect("flows")
                .contains(&json!({"id": "mfa_trust", "is_pending": true})));

            // Through the generated client, with this browser's cookies.
            let mut headers = reqwest::header::HeaderMap::new();
            let cookie = format!(
                "csrftoken={CSRF}; sessionid={}",
                browser.token.clone().expect("session")
            );
            headers.insert("Cookie", cookie.parse().expect("header"));
            headers.insert("X-CSRFToken", CSRF.parse().expect("header"));
            let http = reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("client");
            let base = server.url("");
            let client = allauth_api::client::Client::new_with_client(&base, http);
            let done = client
                .mfa_trust(
                    types::BrowserClient::Browser,
                    None,
                    &types::MfaTrustInput { trust: Some(true) },
                )
                .await
                .expect("200");
            let cookies: Vec<String> = done
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let trust = cookies
                .iter()
                .find(|c| c.starts_with("mfa_trusted="))
                .expect("the trust cookie");
            assert!(trust.contains("Max-Age=1209600"), "{trust}");
            let value = trust
                .trim_start_matches("mfa_trusted=")
                .split(';')
                .next()
                .expect("value")
                .to_owned();
            let done = done.into_inner();
            assert_eq!(done.data.methods.len(), 2);
            let new_session = cookies
                .iter()
                .find(|c| c.starts_with("sessionid="))
                .expect("rotated session cookie");
            assert!(!new_session.starts_with("sessionid=;"));

            // The next login from this browser needs no second factor.
            let mut again = Agent::new(&server, "browser");
            let (status, _) = login(&mut again, "trusty").await;
            assert_eq!(status, 401, "an untrusted browser is asked");
            let mut trusted = Agent::new(&server, "browser").with_cookie("mfa_trusted", &value);
            let (status, body) = login(&mut trusted, "trusty").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body["data"]["methods"].as_array().expect("methods").len(),
                1
            );

            // New recovery codes change the setup: the trust ends.
            let (status, trusted_regenerated) = trusted
                .call("POST", "account/authenticators/recovery-codes", None)
                .await;
            assert_eq!(status, 200);
            logout(&mut trusted).await;
            let (status, body) = login(&mut trusted, "trusty").await;
            assert_eq!(status, 401, "{body}");
            assert!(mfa_pending(&body));
            let new_codes = unused_codes_of(&trusted_regenerated);
            let (status, body) = second_factor(&mut trusted, &new_codes[0]).await;
            assert_eq!(status, 401, "{body}");
            // Declining to trust sets no cookie and still completes.
            let response = trusted
                .request("POST", "auth/2fa/trust", Some(json!({"trust": false})), &[])
                .send()
                .await
                .expect("request");
            assert_eq!(response.status().as_u16(), 200);
            assert!(response_cookie(&response, "mfa_trusted").is_none());
            server
        },
    )
    .await;
}

fn unused_codes_of(body: &Value) -> Vec<String> {
    body["data"]["unused_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

#[tokio::test]
async fn the_generated_client_speaks_mfa() {
    on_each_backend(configure, |server| async move {
        let app = types::Client::App;
        let (mut agent, _) = signed_in(&server, "app", "gen").await;
        let token = agent.token.clone().expect("token");
        let client = server.client();
        let listed = client
            .authenticator_list(app, Some(&token))
            .await
            .expect("200")
            .into_inner();
        assert!(listed.data.is_empty());
        let offer = client.totp_view(app, Some(&token)).await;
        let offer = match offer {
            Err(allauth_api::client::Error::ErrorResponse(r)) => r,
            other => panic!("a 404 with the secret, got {:?}", other.map(|r| r.status())),
        };
        assert_eq!(offer.status().as_u16(), 404);
        let offer: Value = offer.into_inner();
        let secret = offer["meta"]["secret"].as_str().expect("secret").to_owned();
        let active = client
            .totp_activate(
                app,
                Some(&token),
                &types::ActivateTotpInput {
                    code: types::AuthenticatorCode(totp_code(&secret, 0)),
                },
            )
            .await
            .expect("200")
            .into_inner();
        assert_eq!(active.data.type_, types::TotpAuthenticatorType::Totp);
        let codes = client
            .recovery_codes_view(app, Some(&token))
            .await
            .expect("200")
            .into_inner();
        assert_eq!(codes.data.unused_codes.len(), 10);
        let regenerated = client
            .recovery_codes_regenerate(app, Some(&token))
            .await
            .expect("200")
            .into_inner();
        assert_ne!(regenerated.data.unused_codes, codes.data.unused_codes);
        let again = client
            .mfa_reauthenticate(
                app,
                Some(&token),
                &types::MfaAuthenticateInput {
                    code: regenerated.data.unused_codes[0].clone(),
                },
            )
            .await
            .expect("200")
            .into_inner();
        assert_eq!(again.data.methods.len(), 2);

        logout(&mut agent).await;
        let (status, _) = login(&mut agent, "gen").await;
        assert_eq!(status, 401);
        let pending = agent.token.clone().expect("pending session");
        let done = client
            .mfa_authenticate(
                app,
                Some(&pending),
                &types::MfaAuthenticateInput {
                    code: regenerated.data.unused_codes[1].clone(),
                },
            )
            .await
            .expect("200")
            .into_inner();
        let token = done.meta.session_token.expect("a new token");
        let off = client
            .totp_deactivate(app, Some(&token))
            .await
            .expect("200")
            .into_inner();
        assert_eq!(off.status, types::StatusOk::try_from(200).expect("200"));
        server
    })
    .await;
}

#[tokio::test]
async fn an_address_cannot_be_added_to_a_protected_account() {
    on_each_backend_and_client(configure, async |server, client| {
        let (mut agent, _) = signed_in(server, client, &format!("guard{client}")).await;
        let add = json!({"email": "extra@example.com"});
        activate_totp(&mut agent).await;
        let (status, body) = agent
            .call("POST", "account/email", Some(add.clone()))
            .await;
        assert_eq!(
            (status, body),
            (
                400,
                error(
                    "add_email_blocked",
                    Some("email"),
                    "You cannot add an email address to an account protected by two-factor authentication."
                )
            )
        );
        // Without the second factor it can.
        let (status, _) = agent
            .call("DELETE", "account/authenticators/totp", None)
            .await;
        assert_eq!(status, 200);
        let (status, body) = agent.call("POST", "account/email", Some(add)).await;
        assert_eq!(status, 200, "{body}");
    })
    .await;
}
