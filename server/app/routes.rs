//! Which operations the configuration routes, for which client — allauth
//! mounts its URL patterns conditionally, and the served document and the
//! router both follow this one table.

use allauth_api::runtime::ClientKind;

use crate::config::{Config, TokenStrategy};

/// The clients `[headless] clients` enables, in allauth's order.
pub fn enabled_clients(config: &Config) -> Vec<ClientKind> {
    [ClientKind::Browser, ClientKind::App]
        .into_iter()
        .filter(|c| {
            config
                .headless
                .clients
                .iter()
                .any(|name| name == c.as_str())
        })
        .collect()
}

/// Whether allauth, configured like this, would route `operation_id` for
/// `client` at all (an unrouted operation answers 404).
pub fn is_routed(operation_id: &str, client: ClientKind, config: &Config) -> bool {
    if !enabled_clients(config).contains(&client) {
        return false;
    }
    let mfa = &config.mfa;
    let mfa_type = |t: &str| mfa.enabled && mfa.supported_types.iter().any(|s| s == t);
    match operation_id {
        "login_code_request" | "login_code_resend" => config.account.login_by_code_enabled,
        "provider_account_list"
        | "provider_account_disconnect"
        | "provider_token_authenticate"
        | "provider_signup_view"
        | "provider_signup_complete" => config.socialaccount.enabled,
        "provider_redirect_start" => config.socialaccount.enabled && client == ClientKind::Browser,
        "mfa_authenticate" | "mfa_reauthenticate" | "authenticator_list" => mfa.enabled,
        "mfa_trust" => mfa.enabled && mfa.trust_enabled && client == ClientKind::Browser,
        "totp_view" | "totp_activate" | "totp_deactivate" => mfa_type("totp"),
        "recovery_codes_view" | "recovery_codes_regenerate" => mfa_type("recovery_codes"),
        "webauthn_authenticate_options"
        | "webauthn_authenticate"
        | "webauthn_reauthenticate_options"
        | "webauthn_reauthenticate"
        | "webauthn_authenticator_options"
        | "webauthn_authenticator_add"
        | "webauthn_authenticator_rename"
        | "webauthn_authenticator_delete" => mfa_type("webauthn"),
        "webauthn_login_options" | "webauthn_login" => {
            mfa_type("webauthn") && mfa.passkey_login_enabled
        }
        "webauthn_signup_options" | "webauthn_signup_start" | "webauthn_signup_complete" => {
            mfa_type("webauthn") && mfa.passkey_signup_enabled
        }
        "user_session_list" | "user_session_delete" => config.usersessions.enabled,
        "token_refresh" => client == ClientKind::App,
        "token_jwks" => {
            client == ClientKind::App
                && uses_jwt(config)
                && config.headless.jwt_algorithm == crate::config::JwtAlgorithm::RS256
        }
        _ => true,
    }
}

/// Whether refresh tokens exist at all (JWT strategy).
pub fn uses_jwt(config: &Config) -> bool {
    config.headless.token_strategy == TokenStrategy::Jwt
}
