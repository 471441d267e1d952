//! What this build of the server implements. An operation that is routed by
//! the configuration but not built yet answers a 404 `not_implemented`
//! envelope, and the config endpoint does not advertise its feature; the
//! README lists these operations (a test keeps that list honest).

use allauth_api::api::OperationId;

/// Whether `operation` has a real implementation. Exhaustive: an operation
/// added to the document must be declared built or not here.
pub const fn is_implemented(operation: OperationId) -> bool {
    use OperationId as O;
    match operation {
        O::LoginCodeRequest
        | O::LoginCodeConfirm
        | O::LoginCodeResend
        | O::EmailList
        | O::EmailAdd
        | O::EmailVerificationRequest
        | O::EmailMarkPrimary
        | O::EmailRemove
        | O::ConfigView
        | O::SessionView
        | O::SessionLogout
        | O::UserSessionList
        | O::UserSessionDelete
        | O::LoginPassword
        | O::SignupCreate
        | O::EmailVerificationView
        | O::EmailVerificationConfirm
        | O::EmailVerificationResend
        | O::ReauthenticatePassword
        | O::PasswordResetRequest
        | O::PasswordResetView
        | O::PasswordResetConfirm
        | O::PasswordChange
        | O::TokenRefresh
        | O::TokenJwks
        | O::MfaAuthenticate
        | O::MfaReauthenticate
        | O::MfaTrust
        | O::AuthenticatorList
        | O::TotpView
        | O::TotpActivate
        | O::TotpDeactivate
        | O::RecoveryCodesView
        | O::RecoveryCodesRegenerate
        | O::WebauthnAuthenticateOptions
        | O::WebauthnAuthenticate
        | O::WebauthnReauthenticateOptions
        | O::WebauthnReauthenticate
        | O::WebauthnLoginOptions
        | O::WebauthnLogin
        | O::WebauthnAuthenticatorOptions
        | O::WebauthnAuthenticatorRename
        | O::WebauthnAuthenticatorAdd
        | O::WebauthnAuthenticatorDelete
        | O::WebauthnSignupOptions
        | O::WebauthnSignupComplete
        | O::WebauthnSignupStart
        | O::ProviderRedirectStart
        | O::ProviderTokenAuthenticate
        | O::ProviderSignupView
        | O::ProviderSignupComplete
        | O::ProviderAccountList
        | O::ProviderAccountDisconnect
        | O::PhoneVerificationConfirm
        | O::PhoneVerificationResend
        | O::PhoneView
        | O::PhoneChange => true,
    }
}

/// The operations with a real implementation, in document order.
pub fn implemented_operations() -> impl Iterator<Item = OperationId> {
    OperationId::ALL
        .into_iter()
        .filter(|op| is_implemented(*op))
}

/// Feature switches the config endpoint reports, limited to what is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Built {
    pub login_by_code: bool,
    pub email_verification_by_code: bool,
    pub password_reset_by_code: bool,
    pub signup: bool,
    pub socialaccount: bool,
    pub mfa: bool,
    /// WebAuthn authenticators and passkeys (part of `mfa` in allauth).
    pub webauthn: bool,
    pub usersessions: bool,
}

impl Built {
    /// This build.
    pub const CURRENT: Built = Built {
        login_by_code: true,
        email_verification_by_code: true,
        password_reset_by_code: true,
        signup: true,
        socialaccount: true,
        mfa: true,
        webauthn: true,
        usersessions: true,
    };

    /// Everything, for comparing the config endpoint's shape with allauth's.
    pub const EVERYTHING: Built = Built {
        login_by_code: true,
        email_verification_by_code: true,
        password_reset_by_code: true,
        signup: true,
        socialaccount: true,
        mfa: true,
        webauthn: true,
        usersessions: true,
    };
}
