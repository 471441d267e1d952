//! `GET config` for both clients: allauth's shape for the same settings,
//! limited to the features this server builds.

use allauth_api::runtime::ClientKind;
use allauth_api::types;
use allauth_server::app::features::Built;
use allauth_server::config::Config;
use allauth_server::config::{HeadlessClient, MfaType};
use allauth_server::http::configuration::configuration;
use serde_json::{json, Value};

use crate::harness::{on_each_backend, raw};

#[tokio::test]
async fn config_view_defaults_for_both_clients() {
    on_each_backend(
        |_| {},
        |server| async move {
            for client in [types::Client::App, types::Client::Browser] {
                let response = server
                    .client()
                    .config_view(client)
                    .await
                    .expect("config answers 200");
                assert_eq!(response.status(), 200);
                let body = serde_json::to_value(response.into_inner()).expect("serializes");
                assert_eq!(
                    body,
                    json!({
                        "status": 200,
                        "data": {
                            "account": {
                                "login_methods": ["username"],
                                "is_open_for_signup": true,
                                "email_verification_by_code_enabled": false,
                                "login_by_code_enabled": false,
                                "password_reset_by_code_enabled": false,
                                "authentication_method": "username",
                            },
                            "mfa": {
                                "supported_types": ["recovery_codes", "totp"],
                                "passkey_login_enabled": false,
                            },
                            "socialaccount": {"providers": []},
                            "usersessions": {"track_activity": false},
                        }
                    })
                );
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn config_view_follows_login_methods_and_never_advertises_unbuilt_features() {
    on_each_backend(
        |config| {
            config.account.login_methods = vec![
                allauth_server::config::LoginMethod::Email,
                allauth_server::config::LoginMethod::Username,
            ];
            config.account.login_by_code_enabled = true;
            config.mfa.supported_types =
                vec![MfaType::Totp, MfaType::RecoveryCodes, MfaType::Webauthn];
        },
        |server| async move {
            let body: Value = raw()
                .get(server.url("/_allauth/browser/v1/config"))
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json body");
            assert_eq!(
                body["data"]["account"]["login_methods"],
                json!(["email", "username"])
            );
            assert_eq!(
                body["data"]["account"]["authentication_method"],
                "username_email"
            );
            assert_eq!(
                body["data"]["account"]["login_by_code_enabled"], true,
                "login by code is built"
            );
            // MFA is built, WebAuthn included, in the configured order.
            assert_eq!(
                body["data"]["mfa"],
                json!({"supported_types": ["totp", "recovery_codes", "webauthn"], "passkey_login_enabled": false})
            );
            // Social login is on by default, with no provider configured.
            assert_eq!(body["data"]["socialaccount"], json!({"providers": []}));
            assert_eq!(
                body["data"]["usersessions"],
                json!({"track_activity": false})
            );
            server
        },
    )
    .await;
}

/// The oracle (django-allauth 65.21.1, settings of `shared/oracle`) answered
/// this for `GET /_allauth/browser/v1/config`; with every feature counted as
/// built and the same settings, ours is identical.
#[test]
fn config_data_matches_allauth_for_the_same_settings() {
    let oracle: Value =
        serde_json::from_str(include_str!("../fixtures/oracle-config.json")).expect("fixture");
    let config = Config::from_sources(
        r#"
        [account]
        login_methods = ["email"]
        signup_fields = ["email*", "password1*"]
        email_verification = "mandatory"
        email_verification_by_code_enabled = true
        login_by_code_enabled = true
        [mfa]
        supported_types = ["totp", "recovery_codes", "webauthn"]
        passkey_login_enabled = true
        [[socialaccount.providers.openid_connect.apps]]
        provider_id = "dummy-oidc"
        name = "Dummy OIDC"
        client_id = "oracle-client-id"
        secret = "oracle-secret"
        settings = { server_url = "http://127.0.0.1:9/realms/dummy" }
        "#,
        &[],
    )
    .expect("oracle-equivalent configuration");
    assert_eq!(
        json!({"status": 200, "data": configuration(&config, Built::EVERYTHING, ClientKind::Browser)}),
        oracle
    );
}

#[tokio::test]
async fn config_view_answers_404_for_disabled_and_unknown_clients() {
    on_each_backend(
        |config| config.headless.clients = vec![HeadlessClient::App],
        |server| async move {
            for path in ["/_allauth/browser/v1/config", "/_allauth/desktop/v1/config"] {
                let response = raw().get(server.url(path)).send().await.expect("request");
                assert_eq!(response.status(), 404, "{path}");
                let body: Value = response.json().await.expect("envelope");
                assert_eq!(body["status"], 404);
                assert_eq!(body["errors"][0]["code"], "not_found");
            }
            let ok = raw()
                .get(server.url("/_allauth/app/v1/config"))
                .send()
                .await
                .expect("request");
            assert_eq!(ok.status(), 200);
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_generated_secret_key_is_kept_in_the_data_dir() {
    let dir = tempfile::tempdir().expect("dir");
    let start = |dir: std::path::PathBuf| async move {
        let mut config = Config::from_sources("", &[]).expect("defaults");
        config.server.bind = "127.0.0.1:0".into();
        config.server.data_dir = dir.clone();
        config.database.url = format!("sqlite://{}", dir.join("db.sqlite3").display());
        let server = allauth_server::start(config).await.expect("starts");
        let key = server
            .context()
            .config
            .server
            .secret_key
            .as_ref()
            .expect("a key")
            .expose()
            .to_string();
        server.stop().await.expect("stops");
        key
    };
    let first = start(dir.path().to_path_buf()).await;
    assert!(first.len() >= 50);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("secret_key")).expect("stored"),
        first
    );
    let second = start(dir.path().to_path_buf()).await;
    assert_eq!(first, second, "the key survives a restart");
}
