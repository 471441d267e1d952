//! Limits and single-use rules under concurrent requests on one session,
//! for both clients on both databases: wrong codes are counted at most up
//! to the limit, a right code or a reset key serves one request, and one
//! login hands out one live token.

use allauth_server::config::Config;
use serde_json::{json, Value};

use crate::harness::{
    last_code_to, on_each_backend, on_each_backend_and_client, reset_key_to, response_cookie, user,
    Agent,
};

/// How many requests each test fires at once.
const BURST: usize = 24;

/// What one of the simultaneous requests got back: the status, the body,
/// and the session token it handed out (app `meta.session_token`, browser
/// `sessionid` cookie), if any.
struct Answer {
    status: u16,
    body: Value,
    token: Option<String>,
}

/// `count` simultaneous `method path` requests with `agent`'s session
/// (token or cookie, and the CSRF pair), each with the body `body(i)`.
async fn burst(
    agent: &Agent,
    count: usize,
    method: &str,
    path: &str,
    body: impl Fn(usize) -> Option<Value>,
) -> Vec<Answer> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let request = agent.request(method, path, body(i), &[]);
            tokio::spawn(async move {
                let response = request.send().await.expect("request");
                let status = response.status().as_u16();
                let cookie = response_cookie(&response, "sessionid").filter(|c| !c.is_empty());
                let body: Value = response.json().await.expect("json body");
                let token = body["meta"]["session_token"]
                    .as_str()
                    .map(str::to_string)
                    .or(cookie);
                Answer {
                    status,
                    body,
                    token,
                }
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(count);
    for task in tasks {
        answers.push(task.await.expect("request task"));
    }
    answers
}

/// Every rate limit off (`rate_limits = false`): the tests count the flows'
/// own limits.
fn no_rate_limits(config: &mut Config) {
    let off = Config::from_sources("[account]\nrate_limits = false\n", &[]).expect("config");
    config.account.rate_limits = off.account.rate_limits;
    config.email.backend = allauth_server::config::EmailBackend::File;
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// Every answer is one of `allowed`.
fn only(answers: &[Answer], allowed: &[u16]) {
    for answer in answers {
        assert!(
            allowed.contains(&answer.status),
            "unexpected {}: {}",
            answer.status,
            answer.body
        );
    }
}

/// Login by email, mandatory verification, every code flow on, no rate
/// limits (the tests count the flows' own limits).
fn codes_on(config: &mut Config) {
    let toml = r#"
[account]
login_methods = ["email"]
signup_fields = ["email*", "password1*"]
email_verification = "mandatory"
email_verification_by_code_enabled = true
login_by_code_enabled = true
password_reset_by_code_enabled = true
rate_limits = false
"#;
    let wanted = Config::from_sources(toml, &[]).expect("config");
    config.account = wanted.account;
    config.email.backend = allauth_server::config::EmailBackend::File;
}

#[tokio::test]
async fn wrong_login_codes_are_counted_up_to_the_limit() {
    on_each_backend_and_client(codes_on, async |server, client| {
        let email = format!("burst-{client}@example.com");
        user(server, &format!("burst{client}"), &email, true, None).await;
        let mut agent = Agent::new(server, client);
        let (status, _) = agent
            .post("auth/code/request", json!({ "email": email }))
            .await;
        assert_eq!(status, 401);
        let code = last_code_to(server, &email).await;

        let answers = burst(&agent, BURST, "POST", "auth/code/confirm", |_| {
            Some(json!({"code": "BBBB-BBBB"}))
        })
        .await;
        only(&answers, &[400, 409]);
        // allauth's limit is 3 attempts: three are checked, the flow
        // ends, everything after is a conflict.
        assert_eq!(count(&answers, 400), 3, "{client}");
        // The right code comes too late: the flow is over.
        let (status, body) = agent
            .post("auth/code/confirm", json!({ "code": code }))
            .await;
        assert_eq!(status, 409, "{client}: {body}");
    })
    .await;
}

#[tokio::test]
async fn a_right_login_code_logs_in_once_with_one_live_token() {
    on_each_backend_and_client(codes_on, async |server, client| {
        let email = format!("once-{client}@example.com");
        user(server, &format!("once{client}"), &email, true, None).await;
        let mut agent = Agent::new(server, client);
        agent
            .post("auth/code/request", json!({ "email": email }))
            .await;
        let code = last_code_to(server, &email).await;

        let answers = burst(&agent, BURST, "POST", "auth/code/confirm", |_| {
            Some(json!({ "code": code }))
        })
        .await;
        // Late app requests name the rotated-away token: 410.
        let late = if client == "app" { 410 } else { 409 };
        only(&answers, &[200, 409, late]);
        assert_eq!(count(&answers, 200), 1, "{client}");
        let tokens: Vec<&String> = answers.iter().filter_map(|a| a.token.as_ref()).collect();
        assert_eq!(tokens.len(), 1, "{client}: one new token handed out");

        // That token is signed in; the one the flow started with is
        // not (its key was rotated).
        let mut winner = Agent::with_token(server, client, tokens[0]);
        let (status, _) = winner.get("auth/session", &[]).await;
        assert_eq!(status, 200, "{client}");
        let (status, _) = agent.get("auth/session", &[]).await;
        assert_ne!(
            status, 200,
            "{client}: the pre-login token is not signed in"
        );
    })
    .await;
}

#[tokio::test]
async fn wrong_verification_codes_are_counted_up_to_the_limit() {
    on_each_backend_and_client(codes_on, async |server, client| {
        let email = format!("verify-{client}@example.com");
        let mut agent = Agent::new(server, client);
        let (status, body) = agent
            .post(
                "auth/signup",
                json!({"email": email, "password": "a long enough passphrase"}),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        let code = last_code_to(server, &email).await;

        // Half the wrong codes by POST, half (missing key) by GET.
        let posts = burst(&agent, BURST / 2, "POST", "auth/email/verify", |_| {
            Some(json!({"key": "BBBB-BBBB"}))
        });
        let gets = burst(&agent, BURST / 2, "GET", "auth/email/verify", |_| None);
        let (posts, gets) = tokio::join!(posts, gets);
        let answers: Vec<Answer> = posts.into_iter().chain(gets).collect();
        only(&answers, &[400, 409]);
        assert_eq!(count(&answers, 400), 3, "{client}");
        let (status, body) = agent
            .post("auth/email/verify", json!({ "key": code }))
            .await;
        assert_eq!(status, 409, "{client}: {body}");
    })
    .await;
}

#[tokio::test]
async fn a_right_verification_code_completes_the_signup_once() {
    on_each_backend_and_client(codes_on, async |server, client| {
        let email = format!("verified-{client}@example.com");
        let mut agent = Agent::new(server, client);
        agent
            .post(
                "auth/signup",
                json!({"email": email, "password": "a long enough passphrase"}),
            )
            .await;
        let code = last_code_to(server, &email).await;
        let answers = burst(&agent, BURST, "POST", "auth/email/verify", |_| {
            Some(json!({ "key": code }))
        })
        .await;
        // An app request that arrives after the winner rotated the session
        // key names a token that is gone: 410, as allauth answers it.
        let late = if client == "app" { 410 } else { 409 };
        only(&answers, &[200, 409, late]);
        assert_eq!(count(&answers, 200), 1, "{client}");
        let tokens = answers.iter().filter(|a| a.token.is_some()).count();
        assert_eq!(tokens, 1, "{client}: one new token handed out");
    })
    .await;
}

#[tokio::test]
async fn wrong_reset_codes_are_counted_and_a_right_one_resets_once() {
    on_each_backend_and_client(codes_on, async |server, client| {
        let email = format!("reset-{client}@example.com");
        user(
            server,
            &format!("reset{client}"),
            &email,
            true,
            Some("first passphrase 1"),
        )
        .await;

        // Wrong codes: three counted, then the reset is over.
        let mut agent = Agent::new(server, client);
        agent
            .post("auth/password/request", json!({ "email": email }))
            .await;
        let code = last_code_to(server, &email).await;
        let answers = burst(&agent, BURST, "POST", "auth/password/reset", |_| {
            Some(json!({"key": "BBBB-BBBB", "password": "second passphrase 2"}))
        })
        .await;
        only(&answers, &[400, 409]);
        assert_eq!(count(&answers, 400), 3, "{client}");
        let (status, _) = agent
            .post(
                "auth/password/reset",
                json!({"key": code, "password": "second passphrase 2"}),
            )
            .await;
        assert_eq!(status, 409, "{client}");

        // A right code, many times at once: one reset.
        let mut agent = Agent::new(server, client);
        agent
            .post("auth/password/request", json!({ "email": email }))
            .await;
        let code = last_code_to(server, &email).await;
        let answers = burst(&agent, BURST, "POST", "auth/password/reset", |i| {
            Some(json!({"key": code, "password": format!("parallel passphrase {i}")}))
        })
        .await;
        // 401: reset, not logged in (login_on_password_reset is off).
        only(&answers, &[401, 409]);
        let winners: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| a.status == 401)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(winners.len(), 1, "{client}");
        // The password that was set is the winner's.
        let mut login = Agent::new(server, client);
        let (status, body) = login
            .post(
                "auth/login",
                json!({"email": email, "password": format!("parallel passphrase {}", winners[0])}),
            )
            .await;
        assert_eq!(status, 200, "{client}: {body}");
    })
    .await;
}

#[tokio::test]
async fn a_reset_link_key_serves_one_reset() {
    on_each_backend_and_client(no_rate_limits, async |server, client| {
        let email = format!("link-{client}@example.com");
        user(
            server,
            &format!("link{client}"),
            &email,
            true,
            Some("first passphrase 1"),
        )
        .await;
        let mut agent = Agent::new(server, client);
        let (status, _) = agent
            .post("auth/password/request", json!({ "email": email }))
            .await;
        assert_eq!(status, 200);
        let key = reset_key_to(server, &email).await;
        let answers = burst(&agent, BURST, "POST", "auth/password/reset", |i| {
            Some(json!({"key": key, "password": format!("parallel passphrase {i}")}))
        })
        .await;
        only(&answers, &[400, 401]);
        assert_eq!(count(&answers, 401), 1, "{client}: one reset");
        for answer in answers.iter().filter(|a| a.status == 400) {
            assert_eq!(
                answer.body["errors"][0]["code"], "invalid_password_reset",
                "{client}"
            );
        }
    })
    .await;
}

/// The view rate limits taken before the input hold under simultaneous
/// requests: 40 empty logins at once from one address, 20 from each client,
/// 30 answered on their input and the rest refused (the `login` limit,
/// 30/m per address, shared by the clients).
#[tokio::test]
async fn simultaneous_empty_logins_are_counted_before_their_input() {
    on_each_backend(
        |_| {},
        |server| async move {
            let (app, browser) = (Agent::new(&server, "app"), Agent::new(&server, "browser"));
            let (mut answers, from_browser) = tokio::join!(
                burst(&app, 20, "POST", "auth/login", |_| Some(json!({}))),
                burst(&browser, 20, "POST", "auth/login", |_| Some(json!({}))),
            );
            answers.extend(from_browser);
            only(&answers, &[400, 429]);
            assert_eq!(count(&answers, 400), 30);
            assert_eq!(count(&answers, 429), 10);
            server
        },
    )
    .await;
}
