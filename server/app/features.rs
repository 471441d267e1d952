//! What this build of the server implements. An operation that is routed by
//! the configuration but not built yet answers a 404 `not_implemented`
//! envelope, and the config endpoint does not advertise its feature; the
//! README lists these operations (a test keeps that list honest).

/// The operations with a real implementation.
pub const IMPLEMENTED_OPERATIONS: &[&str] = &[
    "login_code_request",
    "login_code_confirm",
    "login_code_resend",
    "email_list",
    "email_add",
    "email_verification_request",
    "email_mark_primary",
    "email_remove",
    "config_view",
    "session_view",
    "session_logout",
    "user_session_list",
    "user_session_delete",
    "login_password",
    "signup_create",
    "email_verification_view",
    "email_verification_confirm",
    "email_verification_resend",
    "reauthenticate_password",
    "password_reset_request",
    "password_reset_view",
    "password_reset_confirm",
    "password_change",
    "token_refresh",
    "token_jwks",
];

pub fn is_implemented(operation_id: &str) -> bool {
    IMPLEMENTED_OPERATIONS.contains(&operation_id)
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
    pub usersessions: bool,
}

impl Built {
    /// This build.
    pub const CURRENT: Built = Built {
        login_by_code: true,
        email_verification_by_code: true,
        password_reset_by_code: true,
        signup: true,
        socialaccount: false,
        mfa: false,
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
        usersessions: true,
    };
}
