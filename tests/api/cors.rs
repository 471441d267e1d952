//! CORS: exact origins, credentials, the allauth headers, a preflight on
//! every API path, and nothing at all for a disallowed origin.

use std::collections::BTreeSet;

use allauth_api::OPERATIONS;

use crate::harness::{on_each_backend, raw, CLIENTS};

const ALLOWED: &str = "https://app.example.com";

fn configure(config: &mut allauth_server::config::Config) {
    config.cors.allowed_origins = vec![ALLOWED.to_string()];
}

#[tokio::test]
async fn allowed_origin_is_echoed_with_credentials() {
    on_each_backend(configure, |server| async move {
        for client in CLIENTS {
            let response = raw()
                .get(server.url(&format!("/_allauth/{client}/v1/config")))
                .header("Origin", ALLOWED)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            let headers = response.headers();
            assert_eq!(headers["access-control-allow-origin"], ALLOWED);
            assert_eq!(headers["access-control-allow-credentials"], "true");
            assert!(headers
                .get_all("vary")
                .iter()
                .any(|v| v.to_str().unwrap_or_default().contains("Origin")));
        }
        server
    })
    .await;
}

#[tokio::test]
async fn disallowed_origin_gets_no_cors_headers() {
    on_each_backend(configure, |server| async move {
        for origin in [
            "https://evil.example.com",
            "https://app.example.com.evil.com",
            "null",
        ] {
            let response = raw()
                .get(server.url("/_allauth/browser/v1/config"))
                .header("Origin", origin)
                .send()
                .await
                .expect("request");
            assert!(
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{origin}"
            );
            assert!(
                response
                    .headers()
                    .get("access-control-allow-credentials")
                    .is_none(),
                "{origin}"
            );
            let preflight = raw()
                .request(
                    reqwest::Method::OPTIONS,
                    server.url("/_allauth/browser/v1/auth/login"),
                )
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .send()
                .await
                .expect("preflight");
            assert!(
                preflight
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{origin}"
            );
            assert!(
                preflight
                    .headers()
                    .get("access-control-allow-methods")
                    .is_none(),
                "{origin}"
            );
        }
        server
    })
    .await;
}

#[tokio::test]
async fn preflight_is_answered_on_every_api_path() {
    on_each_backend(configure, |server| async move {
        let paths: BTreeSet<&str> = OPERATIONS.iter().map(|op| op.path).collect();
        assert_eq!(paths.len(), 35, "allauth's 34 paths and our JWKS document");
        for path in paths {
            let methods: Vec<&str> = OPERATIONS
                .iter()
                .filter(|op| op.path == path)
                .map(|op| op.method)
                .collect();
            for client in CLIENTS {
                let url = server.url(&path.replace("{client}", client));
                let response = raw()
                    .request(reqwest::Method::OPTIONS, &url)
                    .header("Origin", ALLOWED)
                    .header("Access-Control-Request-Method", methods[0])
                    .header(
                        "Access-Control-Request-Headers",
                        "content-type, x-session-token",
                    )
                    .send()
                    .await
                    .expect("preflight");
                assert_eq!(response.status(), 200, "{url}");
                let headers = response.headers();
                assert_eq!(headers["access-control-allow-origin"], ALLOWED, "{url}");
                assert_eq!(headers["access-control-allow-credentials"], "true", "{url}");
                let allowed_methods = headers["access-control-allow-methods"]
                    .to_str()
                    .expect("ascii");
                for method in &methods {
                    assert!(
                        allowed_methods.contains(method),
                        "{url}: {method} not in {allowed_methods}"
                    );
                }
                let allowed_headers = headers["access-control-allow-headers"]
                    .to_str()
                    .expect("ascii");
                for header in [
                    "x-session-token",
                    "x-email-verification-key",
                    "x-password-reset-key",
                    "x-csrftoken",
                    "authorization",
                    "content-type",
                ] {
                    assert!(allowed_headers.contains(header), "{url}: {header}");
                }
            }
        }
        server
    })
    .await;
}

#[test]
fn wildcard_origin_with_credentials_is_refused() {
    let result = allauth_server::config::Config::from_sources(
        "[cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n",
        &[],
    );
    let error = result.expect_err("\"*\" with credentials must be refused");
    assert!(error.to_string().contains("cors"), "{error}");
}
