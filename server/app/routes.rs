//! Which operations the configuration routes, for which client — allauth
//! mounts its URL patterns conditionally, and the served document and the
//! router both follow this one table.

use allauth_api::api::OperationId;
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
/// `client` at all (an unrouted operation answers 404). The operations
/// allauth always mounts are listed last.
pub fn is_routed(operation_id: OperationId, client: ClientKind, config: &Config) -> bool {
    if !enabled_clients(config).contains(&client) {
        return false;
    }
    let mfa = &config.mfa;
    let mfa_type = |t: &str| mfa.enabled && mfa.supported_types.iter().any(|s| s == t);
    use OperationId as O;
    // Exhaustive: an operation added to the document must be decided on here.
    match operation_id {
        O::LoginCodeRequest | O::LoginCodeResend => config.account.login_by_code_enabled,
        O::ProviderAccountList
        | O::ProviderAccountDisconnect
        | O::ProviderTokenAuthenticate
        | O::ProviderSignupView
        | O::ProviderSignupComplete => config.socialaccount.enabled,
        O::ProviderRedirectStart => config.socialaccount.enabled && client == ClientKind::Browser,
        O::MfaAuthenticate | O::MfaReauthenticate | O::AuthenticatorList => mfa.enabled,
        O::MfaTrust => mfa.enabled && mfa.trust_enabled && client == ClientKind::Browser,
        O::TotpView | O::TotpActivate | O::TotpDeactivate => mfa_type("totp"),
        O::RecoveryCodesView | O::RecoveryCodesRegenerate => mfa_type("recovery_codes"),
        O::WebauthnAuthenticateOptions
        | O::WebauthnAuthenticate
        | O::WebauthnReauthenticateOptions
        | O::WebauthnReauthenticate
        | O::WebauthnAuthenticatorOptions
        | O::WebauthnAuthenticatorAdd
        | O::WebauthnAuthenticatorRename
        | O::WebauthnAuthenticatorDelete => mfa_type("webauthn"),
        O::WebauthnLoginOptions | O::WebauthnLogin => {
            mfa_type("webauthn") && mfa.passkey_login_enabled
        }
        O::WebauthnSignupOptions | O::WebauthnSignupStart | O::WebauthnSignupComplete => {
            mfa_type("webauthn") && mfa.passkey_signup_enabled
        }
        O::UserSessionList | O::UserSessionDelete => config.usersessions.enabled,
        O::TokenRefresh => client == ClientKind::App,
        O::TokenJwks => {
            client == ClientKind::App
                && uses_jwt(config)
                && config.headless.jwt_algorithm == crate::config::JwtAlgorithm::RS256
        }
        // Not mounted under `SOCIALACCOUNT_ONLY`.
        O::LoginPassword
        | O::SignupCreate
        | O::EmailVerificationView
        | O::EmailVerificationConfirm
        | O::EmailVerificationResend
        | O::PhoneVerificationConfirm
        | O::PhoneVerificationResend
        | O::PasswordResetRequest
        | O::PasswordResetView
        | O::PasswordResetConfirm
        | O::EmailList
        | O::EmailVerificationRequest
        | O::EmailAdd
        | O::EmailRemove
        | O::EmailMarkPrimary
        | O::PhoneView
        | O::PhoneChange
        | O::PasswordChange => !config.socialaccount.only,
        O::ConfigView
        | O::ReauthenticatePassword
        | O::LoginCodeConfirm
        | O::SessionView
        | O::SessionLogout => true,
    }
}

/// Whether refresh tokens exist at all (JWT strategy).
pub fn uses_jwt(config: &Config) -> bool {
    config.headless.token_strategy == TokenStrategy::Jwt
}

/// How allauth's view behind an operation treats a method its path lacks,
/// when the view takes one input for every method (`input_class` a single
/// form): that input is checked first, after the view's login requirement
/// and rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleInputView {
    /// `AuthenticatedAPIView`: anonymous callers get the 401 first.
    pub login_required: bool,
    /// The view's `rate_limit` decorator.
    pub rate_limit: Option<&'static str>,
}

/// [`SingleInputView`] of the view behind `operation_id`, if it is one.
pub fn single_input_view(operation_id: OperationId) -> Option<SingleInputView> {
    use OperationId as O;
    let view = |login_required, rate_limit| {
        Some(SingleInputView {
            login_required,
            rate_limit,
        })
    };
    match operation_id {
        O::LoginPassword => view(false, Some("login")),
        O::PasswordResetConfirm => view(false, Some("reset_password_from_key")),
        O::PasswordChange => view(true, Some("change_password")),
        O::ReauthenticatePassword => view(true, Some("reauthenticate")),
        O::LoginCodeRequest | O::PasswordResetRequest | O::TokenRefresh => view(false, None),
        _ => None,
    }
}
