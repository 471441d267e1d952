//! `GET config`: what the frontend needs to know about this server's setup,
//! in allauth's shape (sections appear only for enabled apps).

use serde_json::{json, Map, Value};

use crate::app::features::Built;
use crate::config::{Config, LoginMethod};

/// The `data` of the config response.
pub fn config_data(config: &Config, built: Built) -> Value {
    let account = &config.account;
    let methods: Vec<&str> = account
        .login_methods
        .iter()
        .map(login_method_name)
        .collect();
    let has = |m: LoginMethod| account.login_methods.contains(&m);
    let mut account_data = Map::new();
    account_data.insert("login_methods".into(), json!(methods));
    account_data.insert(
        "is_open_for_signup".into(),
        json!(account.signup_open && built.signup),
    );
    account_data.insert(
        "email_verification_by_code_enabled".into(),
        json!(account.email_verification_by_code_enabled && built.email_verification_by_code),
    );
    account_data.insert(
        "login_by_code_enabled".into(),
        json!(account.login_by_code_enabled && built.login_by_code),
    );
    account_data.insert(
        "password_reset_by_code_enabled".into(),
        json!(account.password_reset_by_code_enabled && built.password_reset_by_code),
    );
    // allauth still sends this older field, derived from the login methods.
    let legacy = match (has(LoginMethod::Email), has(LoginMethod::Username)) {
        (true, true) => Some("username_email"),
        (true, false) => Some("email"),
        (false, true) => Some("username"),
        (false, false) => None,
    };
    if let Some(legacy) = legacy {
        account_data.insert("authentication_method".into(), json!(legacy));
    }

    let mut data = Map::new();
    data.insert("account".into(), Value::Object(account_data));
    if config.socialaccount.enabled && built.socialaccount {
        let mut providers: Vec<&crate::config::ProviderConfig> =
            config.socialaccount.providers.iter().collect();
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        let entries: Vec<Value> = providers
            .into_iter()
            .map(|p| {
                let mut entry = Map::new();
                entry.insert("id".into(), json!(p.id));
                entry.insert("name".into(), json!(p.name));
                entry.insert(
                    "flows".into(),
                    json!(["provider_redirect", "provider_token"]),
                );
                entry.insert("client_id".into(), json!(p.client_id));
                if let Some(url) = &p.openid_configuration_url {
                    entry.insert("openid_configuration_url".into(), json!(url));
                }
                Value::Object(entry)
            })
            .collect();
        data.insert("socialaccount".into(), json!({ "providers": entries }));
    }
    if config.mfa.enabled && built.mfa {
        data.insert(
            "mfa".into(),
            json!({
                "supported_types": config.mfa.supported_types,
                "passkey_login_enabled": config.mfa.passkey_login_enabled,
            }),
        );
    }
    if config.usersessions.enabled && built.usersessions {
        data.insert(
            "usersessions".into(),
            json!({ "track_activity": config.usersessions.track_activity }),
        );
    }
    Value::Object(data)
}

fn login_method_name(method: &LoginMethod) -> &'static str {
    match method {
        LoginMethod::Email => "email",
        LoginMethod::Username => "username",
        LoginMethod::Phone => "phone",
    }
}
