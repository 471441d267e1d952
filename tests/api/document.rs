//! The served document: JSON, YAML and HTML, pruned to the configuration.

use allauth_server::config::HeadlessClient;
use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::{on_each_backend, raw};

fn operation_ids(doc: &Value) -> BTreeSet<String> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .filter_map(|op| {
            op.get("operationId")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

async fn fetch(server: &crate::harness::TestServer, name: &str) -> crate::harness::RawResponse {
    raw()
        .get(server.url(&format!("/_allauth/{name}")))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn everything_enabled_serves_all_56_operations_in_json_and_yaml() {
    on_each_backend(crate::harness::everything, |server| async move {
        let response = fetch(&server, "openapi.json").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.oai.openapi+json"
        );
        let json: Value = response.json().await.expect("json document");
        assert_eq!(json["openapi"], "3.0.3");
        assert_eq!(operation_ids(&json).len(), 56);

        let response = fetch(&server, "openapi.yaml").await;
        assert_eq!(response.status(), 200);
        let yaml: Value =
            serde_yaml::from_str(&response.text().await.expect("text")).expect("yaml document");
        assert_eq!(yaml, json, "YAML and JSON renderings say the same");
        server
    })
    .await;
}

#[tokio::test]
async fn served_document_is_pruned_like_allauth() {
    on_each_backend(
        |config| {
            config.headless.serve_specification = true;
            config.mfa.enabled = false;
            config.usersessions.enabled = false;
        },
        |server| async move {
            let json: Value = fetch(&server, "openapi.json")
                .await
                .json()
                .await
                .expect("json");
            let ids = operation_ids(&json);
            for absent in [
                "login_code_request",
                "login_code_resend",
                "mfa_authenticate",
                "totp_view",
                "user_session_list",
                "webauthn_login",
            ] {
                assert!(!ids.contains(absent), "{absent} should be pruned");
            }
            for present in [
                "config_view",
                "login_password",
                "login_code_confirm",
                "token_refresh",
                "provider_redirect_start",
            ] {
                assert!(ids.contains(present), "{present} should be served");
            }
            let tags: BTreeSet<&str> = json["tags"]
                .as_array()
                .expect("tags")
                .iter()
                .filter_map(|t| t["name"].as_str())
                .collect();
            assert!(
                !tags.contains("Account: 2FA") && !tags.contains("Sessions"),
                "{tags:?}"
            );
            assert!(tags.contains("Configuration"));
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_single_client_is_pinned_into_the_paths() {
    on_each_backend(
        |config| {
            config.headless.serve_specification = true;
            config.headless.clients = vec![HeadlessClient::App];
        },
        |server| async move {
            let json: Value = fetch(&server, "openapi.json")
                .await
                .json()
                .await
                .expect("json");
            let paths: Vec<&String> = json["paths"].as_object().expect("paths").keys().collect();
            assert!(
                paths.iter().all(|p| p.starts_with("/_allauth/app/v1/")),
                "{paths:?}"
            );
            let ids = operation_ids(&json);
            assert!(ids.contains("token_refresh"));
            assert!(
                !ids.contains("provider_redirect_start"),
                "browser-only operation served to app only"
            );
            assert!(!json
                .to_string()
                .contains("#/components/parameters/Client\""));
            server
        },
    )
    .await;
}

#[tokio::test]
async fn specification_is_not_served_unless_enabled() {
    on_each_backend(
        |_| {},
        |server| async move {
            for name in ["openapi.json", "openapi.yaml", "openapi.html"] {
                let response = fetch(&server, name).await;
                assert_eq!(response.status(), 404, "{name}");
                let body: Value = response.json().await.expect("envelope");
                assert_eq!(body["status"], 404);
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn html_page_uses_a_cdn_or_local_assets() {
    on_each_backend(crate::harness::everything, |server| async move {
        let html = fetch(&server, "openapi.html")
            .await
            .text()
            .await
            .expect("html");
        assert!(html.contains("<redoc spec-url=\"openapi.json\">"), "{html}");
        assert!(
            html.contains("https://cdn.jsdelivr.net/npm/redoc@"),
            "{html}"
        );
        server
    })
    .await;

    let assets = tempfile::tempdir().expect("assets dir");
    std::fs::write(assets.path().join("redoc.standalone.js"), "/* renderer */").expect("asset");
    let dir = assets.path().to_path_buf();
    on_each_backend(
        move |config| {
            crate::harness::everything(config);
            config.headless.specification_assets_dir = Some(dir.clone());
        },
        |server| async move {
            let html = fetch(&server, "openapi.html")
                .await
                .text()
                .await
                .expect("html");
            assert!(
                html.contains("<script src=\"redoc.standalone.js\">"),
                "{html}"
            );
            assert!(!html.contains("cdn.jsdelivr.net"));
            let script = fetch(&server, "redoc.standalone.js").await;
            assert_eq!(script.status(), 200);
            assert_eq!(
                script.headers()["content-type"],
                "text/javascript; charset=utf-8"
            );
            assert_eq!(script.text().await.expect("text"), "/* renderer */");
            for hostile in ["..%2Fsecret", ".env", "%2Fetc%2Fpasswd", "missing.js"] {
                assert_eq!(fetch(&server, hostile).await.status(), 404, "{hostile}");
            }
            server
        },
    )
    .await;
}
