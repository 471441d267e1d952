//! Whatever arrives, the answer is an allauth envelope with a 4xx status:
//! operations not built yet, unknown clients, garbage bodies.
//!
//! Router-level exception: a path outside the API, or a method a path does
//! not have, is refused by dropshot's router before any handler runs and gets
//! dropshot's own 404/405 body (`{"request_id", "message", …}`).

use allauth_api::OPERATIONS;
use allauth_server::app::features::is_implemented;
use serde_json::Value;

use crate::harness::{on_each_backend, raw, CLIENTS};

fn assert_envelope(body: &Value, status: u16, code: &str, what: &str) {
    assert_eq!(body["status"], status, "{what}: {body}");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors list in {body}"));
    assert_eq!(errors[0]["code"], code, "{what}: {body}");
    assert!(
        errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// Every operation not built yet answers the `not_implemented` 404 for both
/// clients — whatever body it is sent — and never pretends to work.
#[tokio::test]
async fn unbuilt_operations_answer_not_implemented() {
    on_each_backend(crate::harness::everything, |server| async move {
        let bodies: [&[u8]; 4] = [
            b"",
            b"{\"email\": \"a@example.com\"}",
            b"{not json",
            b"[1, 2]",
        ];
        for op in OPERATIONS.iter().filter(|op| !is_implemented(op.id)) {
            for client in CLIENTS {
                let only = match op.operation_id {
                    "provider_redirect_start" | "mfa_trust" => Some("browser"),
                    "token_refresh" => Some("app"),
                    _ => None,
                };
                let (status, code) = match only {
                    Some(only) if only != client => (404, "not_found"),
                    _ => (404, "not_implemented"),
                };
                for body in bodies {
                    let method = reqwest::Method::from_bytes(op.method.as_bytes()).expect("method");
                    let url = server.url(&op.path.replace("{client}", client));
                    let response = raw()
                        .request(method, &url)
                        .header("content-type", "application/json")
                        .body(body.to_vec())
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(response.status().as_u16(), status, "{} {url}", op.method);
                    assert_eq!(response.headers()["content-type"], "application/json");
                    let json: Value = response.json().await.expect("envelope");
                    assert_envelope(&json, status, code, op.operation_id);
                }
            }
        }
        server
    })
    .await;
}

#[tokio::test]
async fn unknown_client_is_a_404_envelope() {
    on_each_backend(
        |_| {},
        |server| async move {
            for path in [
                "/_allauth/desktop/v1/config",
                "/_allauth/APP/v1/auth/session",
                "/_allauth/%00/v1/config",
            ] {
                let response = raw().get(server.url(path)).send().await.expect("request");
                assert_eq!(response.status(), 404, "{path}");
                let json: Value = response.json().await.expect("envelope");
                assert_envelope(&json, 404, "not_found", path);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn oversize_and_odd_requests_never_cause_a_server_error() {
    on_each_backend(
        |config| config.server.request_body_max_bytes = 1024,
        |server| async move {
            let big = vec![b'a'; 10_000];
            for (method, path) in [
                (reqwest::Method::POST, "/_allauth/app/v1/auth/login"),
                (reqwest::Method::GET, "/_allauth/app/v1/config"),
                (reqwest::Method::POST, "/_allauth/browser/v1/auth/signup"),
            ] {
                let response = raw()
                    .request(method, server.url(path))
                    .header("content-type", "text/plain")
                    .body(big.clone())
                    .send()
                    .await
                    .expect("request");
                assert!(
                    response.status().is_client_error() || response.status().is_success(),
                    "{path}"
                );
                let json: Value = response.json().await.expect("envelope");
                assert!(json["status"].is_u64(), "{path}: {json}");
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn router_level_misses_and_missing_methods() {
    on_each_backend(
        |_| {},
        |server| async move {
            let response = raw()
                .get(server.url("/nowhere"))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 404);
            let response = raw()
                .get(server.url("/_allauth/app/v1/auth/login"))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 405, "GET is not a method of auth/login");
            let allow = response.headers().get("allow").cloned();
            assert_eq!(
                response.json::<Value>().await.expect("envelope"),
                serde_json::json!({"status": 405})
            );
            assert_eq!(
                allow.as_ref().map(|v| v.to_str().unwrap()),
                Some("POST, OPTIONS")
            );
            server
        },
    )
    .await;
}

#[tokio::test]
async fn answers_are_never_cached() {
    on_each_backend(
        |_| {},
        |server| async move {
            for path in [
                "/_allauth/app/v1/config",
                "/_allauth/browser/v1/auth/session",
                "/_allauth/desktop/v1/config",
            ] {
                let response = raw().get(server.url(path)).send().await.expect("request");
                let cache = response.headers()["cache-control"].to_str().expect("ascii");
                assert!(
                    cache.contains("no-store") && cache.contains("private"),
                    "{path}: {cache}"
                );
            }
            server
        },
    )
    .await;
}

/// Like a Django form, a login reports every field's error at once, in
/// field order, whichever layer finds it; an explicit null is a missing
/// field; an empty body is an empty form.
#[tokio::test]
async fn login_form_errors_name_every_field_in_order() {
    use crate::harness::{on_each_backend_and_client, Agent};
    let by_email = |config: &mut allauth_server::config::Config| {
        let parsed = allauth_server::config::Config::from_sources(
            "[account]\nlogin_methods = [\"email\"]\nsignup_fields = [\"email*\", \"password1*\"]\n",
            &[],
        )
        .expect("account settings");
        config.account = parsed.account;
        config.finalize();
    };
    on_each_backend_and_client(by_email, async |server, client| {
        let codes = |body: &serde_json::Value| -> Vec<(String, String)> {
            body["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .map(|e| {
                    (
                        e["param"].as_str().unwrap_or_default().to_owned(),
                        e["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        };
        let pair = |p: &str, c: &str| (p.to_owned(), c.to_owned());
        let mut agent = Agent::new(server, client);
        for body in [
            Some(serde_json::json!({})),
            Some(serde_json::json!({"email": null, "password": null})),
            None,
        ] {
            let (status, answer) = agent.call("POST", "auth/login", body.clone()).await;
            assert_eq!(status, 400, "{client} {body:?}: {answer}");
            assert_eq!(
                codes(&answer),
                [pair("email", "required"), pair("password", "required")],
                "{client} {body:?}: {answer}"
            );
        }
        // A null where the form wants a value is a missing value.
        let (status, answer) = agent
            .call(
                "POST",
                "auth/login",
                Some(serde_json::json!({"email": null, "password": "x"})),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            codes(&answer),
            [pair("email", "required")],
            "{client}: {answer}"
        );
        let (status, answer) = agent
            .call(
                "POST",
                "auth/login",
                Some(serde_json::json!({"email": "x"})),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            codes(&answer),
            [pair("email", "invalid"), pair("password", "required")],
            "{client}: {answer}"
        );
    })
    .await;
}

/// Rate limits are taken before the input is looked at, as allauth's views
/// take them: thirty empty logins from one address, then 429; empty
/// reauthentications count toward the user's limit.
#[tokio::test]
async fn rate_limits_come_before_input_validation() {
    use crate::harness::{on_each_backend_and_client, session_for, user, Agent, CLIENTS};
    on_each_backend_and_client(
        |_| {},
        async |server, client| {
            // The `login` limit is per address, shared by both clients: the
            // first client uses it up (30 answered on their input, then
            // 429), the second is refused at once.
            let mut agent = Agent::new(server, client);
            let allowed = if client == CLIENTS[0] { 30 } else { 0 };
            for attempt in 1..=allowed {
                let (status, body) = agent
                    .call("POST", "auth/login", Some(serde_json::json!({})))
                    .await;
                assert_eq!(status, 400, "{client} attempt {attempt}: {body}");
            }
            let (status, body) = agent
                .call("POST", "auth/login", Some(serde_json::json!({})))
                .await;
            assert_eq!(status, 429, "{client}: {body}");

            let name = format!("limited{client}");
            let password = "c0rrect-h0rse-battery";
            let id = user(
                server,
                &name,
                &format!("{name}@example.com"),
                true,
                Some(password),
            )
            .await;
            // The login limit is per address and used up: a session made
            // directly.
            let token = session_for(server, client, id, crate::harness::now_secs()).await;
            let mut signed_in = Agent::with_token(server, client, &token);
            for attempt in 1..=10 {
                let (status, body) = signed_in
                    .call("POST", "auth/reauthenticate", Some(serde_json::json!({})))
                    .await;
                assert_eq!(status, 400, "{client} attempt {attempt}: {body}");
            }
            let (status, body) = signed_in
                .call(
                    "POST",
                    "auth/reauthenticate",
                    Some(serde_json::json!({"password": password})),
                )
                .await;
            assert_eq!(status, 429, "{client}: {body}");
        },
    )
    .await;
}

/// A method a path lacks is admitted like any call, then answered as
/// allauth's view answers it: a browser's unsafe request without its CSRF
/// token gets the CSRF 403; where the view takes one input for every method
/// (`auth/login`, `auth/password/reset`) the input is checked first (400),
/// else 405; other paths answer 405 at once.
#[tokio::test]
async fn methods_a_path_lacks_answer_as_allauth() {
    use crate::harness::{on_each_backend_and_client, Agent};
    on_each_backend_and_client(
        |_| {},
        async |server, client| {
            if client == "browser" {
                let response = raw()
                    .request(
                        reqwest::Method::PUT,
                        server.url("/_allauth/browser/v1/auth/login"),
                    )
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 403);
                assert!(
                    response.headers().get("set-cookie").is_none(),
                    "no cookie with the CSRF 403"
                );
            }
            let mut agent = Agent::new(server, client);
            let (status, body) = agent
                .call("PUT", "auth/login", Some(serde_json::json!({})))
                .await;
            assert_eq!(status, 400, "{client}: {body}");
            assert_eq!(body["errors"][0]["param"], "password", "{body}");
            let (status, body) = agent
                .call(
                    "PATCH",
                    "auth/login",
                    Some(serde_json::json!({"username": "nobody", "password": "x"})),
                )
                .await;
            assert_eq!(status, 405, "{client}: {body}");
            let (status, body) = agent
                .call("DELETE", "auth/password/reset", Some(serde_json::json!({})))
                .await;
            assert_eq!(status, 400, "{client}: {body}");
            let (status, body) = agent
                .call("PUT", "auth/signup", Some(serde_json::json!({})))
                .await;
            assert_eq!(
                (status, body),
                (405, serde_json::json!({"status": 405})),
                "{client}"
            );
            let (status, _) = agent
                .call("POST", "config", Some(serde_json::json!({})))
                .await;
            assert_eq!(status, 405, "{client}");
        },
    )
    .await;
}
