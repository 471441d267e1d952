//! Sessions as the application sees them: who is logged in, how they
//! authenticated (typed [`AuthRecord`]s, allauth's `AuthenticationMethod`),
//! the login in progress ([`PendingLogin`], waiting in one typed [`Stage`] of
//! the login pipeline) and, apart from it, the processes that run beside a
//! login ([`Processes`]: a password reset by code, the verification of an
//! added address), so that one flow never wipes another's state.
//!
//! Everything here is persisted as the JSON of `sessions.data`; the store
//! (`app::sessions::session_store`) reads and writes it with compare-and-set.

use serde::{Deserialize, Serialize};

use crate::app::features::Built;
use crate::app::security::codes;
use crate::config::{Config, MfaType};

/// One way the user proved who they are in this session (allauth's
/// `AuthenticationMethod` records, `data.methods` on the wire). `at` is
/// seconds since the epoch, with fractions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AuthRecord {
    /// A password, given with an address or a username (or again, to
    /// reauthenticate).
    Password {
        at: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reauthenticated: bool,
    },
    /// A completed password reset that logged the user in.
    PasswordReset {
        at: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    /// A code sent to an address or, by SMS, to a phone number.
    Code {
        at: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<String>,
    },
    /// An account at a third-party provider (allauth's `socialaccount`).
    Socialaccount {
        at: f64,
        provider: String,
        uid: String,
    },
    /// A second factor: authenticator `id` of `kind`, at login, to
    /// reauthenticate, or (a passkey) as the only factor.
    Mfa {
        at: f64,
        id: i64,
        #[serde(rename = "type")]
        kind: MfaType,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reauthenticated: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        passwordless: bool,
    },
}

impl AuthRecord {
    /// Seconds since the epoch for `now_ms`, as records keep them.
    pub fn seconds(now_ms: i64) -> f64 {
        now_ms as f64 / 1000.0
    }

    pub fn at(&self) -> f64 {
        match self {
            AuthRecord::Password { at, .. }
            | AuthRecord::PasswordReset { at, .. }
            | AuthRecord::Code { at, .. }
            | AuthRecord::Socialaccount { at, .. }
            | AuthRecord::Mfa { at, .. } => *at,
        }
    }
}

/// A code sent by mail or SMS for a stage or process: only its hash
/// is kept, with when it was sent and how it has been used. One type for
/// email and phone verification, login by code and password reset by code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeStage {
    pub code_hash: String,
    /// When the code was first sent (unix ms); a resend keeps it.
    pub sent_at: i64,
    pub failed_attempts: u32,
    pub resend_count: u32,
}

impl CodeStage {
    /// A new code sent at `now_ms`: the stage and the code to mail.
    pub fn new(secret: &str, now_ms: i64) -> (CodeStage, String) {
        let code = codes::generate_user_code();
        let stage = CodeStage {
            code_hash: codes::hash_code(secret, &code),
            sent_at: now_ms,
            failed_attempts: 0,
            resend_count: 0,
        };
        (stage, code)
    }

    /// A stage whose code was never mailed (enumeration prevention): no
    /// code typed back can match it.
    pub fn decoy(now_ms: i64) -> CodeStage {
        CodeStage {
            code_hash: String::new(),
            sent_at: now_ms,
            failed_attempts: 0,
            resend_count: 0,
        }
    }

    /// Whether the code has outlived `limits.timeout_secs`.
    pub fn expired(&self, limits: CodeLimits, now_ms: i64) -> bool {
        let timeout_ms = i64::try_from(limits.timeout_secs)
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        now_ms.saturating_sub(self.sent_at) > timeout_ms
    }

    /// A new code in place of the old one, if the resend quota allows;
    /// the code to mail.
    pub fn resend(&mut self, secret: &str, limits: CodeLimits) -> Option<String> {
        if self.resend_count >= limits.max_resends {
            return None;
        }
        let code = codes::generate_user_code();
        self.code_hash = codes::hash_code(secret, &code);
        self.resend_count = self.resend_count.saturating_add(1);
        Some(code)
    }
}

/// The rules of one kind of code, from the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeLimits {
    pub max_attempts: u32,
    pub timeout_secs: u64,
    pub max_resends: u32,
}

impl CodeLimits {
    pub fn login_by_code(config: &Config) -> CodeLimits {
        let account = &config.account;
        CodeLimits {
            max_attempts: account.login_by_code_max_attempts,
            timeout_secs: account.login_by_code_timeout,
            max_resends: account.login_by_code_max_resend_count,
        }
    }

    pub fn email_verification(config: &Config) -> CodeLimits {
        let account = &config.account;
        CodeLimits {
            max_attempts: account.email_verification_by_code_max_attempts,
            timeout_secs: account.email_verification_by_code_timeout,
            max_resends: account.email_verification_max_resend_count,
        }
    }

    pub fn phone_verification(config: &Config) -> CodeLimits {
        let account = &config.account;
        CodeLimits {
            max_attempts: account.phone_verification_max_attempts,
            timeout_secs: account.phone_verification_timeout,
            max_resends: account.phone_verification_max_resend_count(),
        }
    }

    pub fn password_reset(config: &Config) -> CodeLimits {
        let account = &config.account;
        CodeLimits {
            max_attempts: account.password_reset_by_code_max_attempts,
            timeout_secs: account.password_reset_by_code_timeout,
            max_resends: 0,
        }
    }
}

/// The steps of the login pipeline, in allauth's order. A login passes the
/// ones that apply to it, one after the other; it waits in a [`Stage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The first factor, when it takes a round trip (login by code).
    Authenticate,
    /// Phone verification (a signup's number, or an unverified one).
    VerifyPhone,
    /// Mandatory email verification.
    VerifyEmail,
    /// The second factor, for a user who has one.
    MfaAuthenticate,
    /// Whether to trust this browser (browser clients, after the second factor).
    MfaTrust,
    /// A passkey signup's passkey.
    PasskeySignup,
}

/// Where a login waits, with that stage's own state. Each variant is one
/// of allauth's pending flow ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Login by code: a code was mailed (to an account's address or, under
    /// enumeration prevention, nowhere).
    LoginByCode { code: CodeStage },
    /// The number `phone` must be verified first, by the code sent to it.
    /// For a decoy (a signup with a taken number or address) the code was
    /// never sent, and nothing can match it.
    VerifyPhone {
        phone: String,
        code: CodeStage,
        /// How often the number was changed while waiting here.
        #[serde(default)]
        change_count: u32,
        /// The number it was changed to has an account (enumeration
        /// prevention: that number got the "account exists" text).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        account_already_exists: bool,
    },
    /// The address `email` must be verified first: by a mailed code, or
    /// by the link (`code` is `None`).
    VerifyEmail {
        email: String,
        code: Option<CodeStage>,
    },
    /// A second factor is asked for; `types` are the user's kinds of
    /// authenticator (the flow lists them).
    MfaAuthenticate { types: Vec<MfaType> },
    /// The second factor was given: trust this browser?
    MfaTrust,
    /// A signup by passkey waits for its passkey.
    MfaSignupWebauthn,
    /// A provider login that cannot sign up on its own: the account
    /// details the provider did not give (or that are taken) are asked
    /// for (`auth/provider/signup`).
    ProviderSignup {
        login: Box<crate::app::social::SocialLogin>,
    },
}

impl Stage {
    pub fn step(&self) -> Step {
        match self {
            Stage::LoginByCode { .. } | Stage::ProviderSignup { .. } => Step::Authenticate,
            Stage::VerifyPhone { .. } => Step::VerifyPhone,
            Stage::VerifyEmail { .. } => Step::VerifyEmail,
            Stage::MfaAuthenticate { .. } => Step::MfaAuthenticate,
            Stage::MfaTrust => Step::MfaTrust,
            Stage::MfaSignupWebauthn => Step::PasskeySignup,
        }
    }

    pub fn flow(&self) -> FlowKind {
        match self {
            Stage::LoginByCode { .. } => FlowKind::LoginByCode,
            Stage::VerifyPhone { .. } => FlowKind::VerifyPhone,
            Stage::VerifyEmail { .. } => FlowKind::VerifyEmail,
            Stage::MfaAuthenticate { .. } => FlowKind::MfaAuthenticate,
            Stage::MfaTrust => FlowKind::MfaTrust,
            Stage::MfaSignupWebauthn => FlowKind::MfaSignupWebauthn,
            Stage::ProviderSignup { .. } => FlowKind::ProviderSignup,
        }
    }

    fn code_mut(&mut self) -> Option<&mut CodeStage> {
        match self {
            Stage::LoginByCode { code } | Stage::VerifyPhone { code, .. } => Some(code),
            Stage::VerifyEmail { code, .. } => code.as_mut(),
            Stage::MfaAuthenticate { .. }
            | Stage::MfaTrust
            | Stage::MfaSignupWebauthn
            | Stage::ProviderSignup { .. } => None,
        }
    }
}

/// A login (or signup) in progress: who it is for, what it has proved so
/// far, and the stage it waits in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// `None` for a decoy under enumeration prevention (a signup with a
    /// taken address, a code asked for an unknown one): it never completes.
    pub user_id: Option<i64>,
    /// The address the login named, or the signup's.
    #[serde(default)]
    pub email: Option<String>,
    /// The phone number the login named (login by code), or the signup's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default)]
    pub signup: bool,
    /// A signup by passkey (the account has no password).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passkey: bool,
    /// A login through a provider: `socialaccount.email_verification`
    /// applies instead of `account.email_verification`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub social: bool,
    /// When the login began (unix ms); it lapses after `login_timeout`.
    pub started_at: i64,
    /// The records of the steps passed, added to the session at the end.
    #[serde(default)]
    pub records: Vec<AuthRecord>,
    pub stage: Stage,
}

/// A password reset by code in progress (beside any login).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetProcess {
    pub user_id: Option<i64>,
    pub email: String,
    pub started_at: i64,
    pub code: CodeStage,
    /// A right code was shown once: the address is verified.
    #[serde(default)]
    pub verified: bool,
}

/// A logged-in user's verification by code of an address they added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmailVerificationProcess {
    pub user_id: i64,
    pub email: String,
    pub code: CodeStage,
}

/// A logged-in user's change of phone number: the new number waits here,
/// with its code, until the code is typed back (allauth's
/// `ChangePhoneVerificationProcess`); the old number stays meanwhile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhoneChangeProcess {
    pub user_id: i64,
    pub phone: String,
    pub code: CodeStage,
}

/// Flows that run beside the login, each in its own place.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Processes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_reset: Option<PasswordResetProcess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verification: Option<EmailVerificationProcess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_change: Option<PhoneChangeProcess>,
}

/// Where a code lives in the session data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSlot {
    /// The code of the pending login's stage.
    LoginStage,
    PasswordReset,
    EmailVerification,
    PhoneChange,
}

impl CodeSlot {
    pub fn get_mut(self, data: &mut SessionData) -> Option<&mut CodeStage> {
        match self {
            CodeSlot::LoginStage => data.login.as_mut().and_then(|l| l.stage.code_mut()),
            CodeSlot::PasswordReset => data.processes.password_reset.as_mut().map(|p| &mut p.code),
            CodeSlot::EmailVerification => data
                .processes
                .email_verification
                .as_mut()
                .map(|p| &mut p.code),
            CodeSlot::PhoneChange => data.processes.phone_change.as_mut().map(|p| &mut p.code),
        }
    }

    /// Ends the flow that holds the code.
    pub fn clear(self, data: &mut SessionData) {
        match self {
            CodeSlot::LoginStage => data.login = None,
            CodeSlot::PasswordReset => data.processes.password_reset = None,
            CodeSlot::EmailVerification => data.processes.email_verification = None,
            CodeSlot::PhoneChange => data.processes.phone_change = None,
        }
    }
}

/// What checking a typed code against the session found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// No live code there (none, lapsed, or used up): allauth's 409.
    Gone,
    /// Wrong (or missing): counted; `ended` when that was the last attempt.
    Wrong {
        ended: bool,
    },
    Right,
}

/// Checks `given` against the code in `slot` and counts a wrong one: the
/// attempt that reaches `limits.max_attempts` ends the flow. Pure, so that
/// the store can run it inside a compare-and-set: concurrent attempts are
/// counted one after the other, never lost.
pub fn check_code(
    data: &mut SessionData,
    slot: CodeSlot,
    limits: CodeLimits,
    secret: &str,
    given: &str,
    now_ms: i64,
) -> CodeCheck {
    let Some(stage) = slot.get_mut(data) else {
        return CodeCheck::Gone;
    };
    if stage.expired(limits, now_ms) || stage.failed_attempts >= limits.max_attempts {
        slot.clear(data);
        return CodeCheck::Gone;
    }
    if !stage.code_hash.is_empty() && codes::verify_code_hash(secret, &stage.code_hash, given) {
        return CodeCheck::Right;
    }
    CodeCheck::Wrong {
        ended: count_failed_attempt(data, slot, limits),
    }
}

/// Counts a failed attempt at the code in `slot`; the attempt that reaches
/// `limits.max_attempts` ends the flow (true). Also for a right code that
/// cannot be used (a phone number taken meanwhile), which allauth counts.
pub fn count_failed_attempt(data: &mut SessionData, slot: CodeSlot, limits: CodeLimits) -> bool {
    let Some(stage) = slot.get_mut(data) else {
        return false;
    };
    stage.failed_attempts = stage.failed_attempts.saturating_add(1);
    let ended = stage.failed_attempts >= limits.max_attempts;
    if ended {
        slot.clear(data);
    }
    ended
}

/// What a session keeps besides its user: the JSON in `sessions.data`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// Authentication records, as sent in `data.methods`.
    #[serde(default)]
    pub methods: Vec<AuthRecord>,
    /// The login in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<PendingLogin>,
    #[serde(default)]
    pub processes: Processes,
    /// The login was revoked (a password change or reset elsewhere): the
    /// next use of the session ends it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
    /// The TOTP secret offered for activation, sealed (allauth keeps it in
    /// the session between `GET` and `POST account/authenticators/totp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_setup: Option<String>,
    /// The WebAuthn ceremony in progress (allauth's `mfa.webauthn.state`),
    /// as `app::mfa::webauthn::Ceremony` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<serde_json::Value>,
    /// Provider redirects under way, by their `state` parameter (allauth's
    /// `socialaccount_states`, at most ten).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub social_states: std::collections::BTreeMap<String, crate::app::social::RedirectState>,
}

impl SessionData {
    pub fn parse(text: &str) -> SessionData {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// The login in progress, unless it has outlived `login_timeout`.
    pub fn live_login(&self, config: &Config, now_ms: i64) -> Option<&PendingLogin> {
        let timeout_ms = i64::try_from(config.account.login_timeout)
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        self.login
            .as_ref()
            .filter(|l| now_ms.saturating_sub(l.started_at) < timeout_ms)
    }

    /// The live login, if it waits in a stage `is_stage` accepts.
    pub fn login_waiting_in(
        &self,
        config: &Config,
        now_ms: i64,
        is_stage: fn(&Stage) -> bool,
    ) -> Option<&PendingLogin> {
        self.live_login(config, now_ms)
            .filter(|l| is_stage(&l.stage))
    }

    /// The password reset by code, unless it has outlived
    /// `password_reset_by_code_timeout` (allauth's `abort_if_invalid`: the
    /// reset process has its own timeout, not the login's).
    pub fn live_password_reset(
        &self,
        config: &Config,
        now_ms: i64,
    ) -> Option<&PasswordResetProcess> {
        let timeout_ms = i64::try_from(config.account.password_reset_by_code_timeout)
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        self.processes
            .password_reset
            .as_ref()
            .filter(|p| now_ms.saturating_sub(p.started_at) <= timeout_ms)
    }

    /// The added address waiting for its code, unless the code lapsed.
    pub fn live_email_verification(
        &self,
        config: &Config,
        now_ms: i64,
    ) -> Option<&EmailVerificationProcess> {
        let limits = CodeLimits::email_verification(config);
        self.processes
            .email_verification
            .as_ref()
            .filter(|p| !p.code.expired(limits, now_ms))
    }
}

/// The logged-in user, as allauth serializes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserView {
    pub id: i64,
    pub username: Option<String>,
    pub email: Option<String>,
    pub has_usable_password: bool,
}

impl UserView {
    pub fn from_row(user: &crate::db::users::User, email: Option<String>) -> Self {
        UserView {
            id: user.id,
            username: user.username.clone(),
            email,
            has_usable_password: user.has_usable_password(),
        }
    }

    /// allauth's `display`: the username, else the address, else the id.
    pub fn display(&self) -> String {
        self.username
            .clone()
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// allauth's flow ids, as far as this server offers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKind {
    Login,
    LoginByCode,
    Signup,
    MfaLoginWebauthn,
    VerifyEmail,
    VerifyPhone,
    MfaAuthenticate,
    MfaTrust,
    MfaSignupWebauthn,
    PasswordResetByCode,
    Reauthenticate,
    MfaReauthenticate,
    ProviderRedirect,
    ProviderToken,
    ProviderSignup,
}

/// One entry of `data.flows`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub id: FlowKind,
    /// `None`: the field is left out.
    pub is_pending: Option<bool>,
    /// The user's kinds of second factor (`mfa_authenticate`,
    /// `mfa_reauthenticate`); empty: the field is left out.
    pub types: Vec<MfaType>,
    /// (`provider_redirect`, `provider_token`) the providers' ids.
    pub providers: Option<Vec<String>>,
    /// (`provider_signup`) the provider.
    pub provider: Option<crate::app::social::ProviderInfo>,
}

impl Flow {
    pub fn plain(id: FlowKind) -> Flow {
        Flow {
            id,
            is_pending: None,
            types: Vec::new(),
            providers: None,
            provider: None,
        }
    }
}

/// The flows an anonymous (or pending) client may take next, in allauth's order.
pub fn anonymous_flows(
    config: &Config,
    built: Built,
    client: allauth_api::runtime::ClientKind,
    data: &SessionData,
    now_ms: i64,
) -> Vec<Flow> {
    // `SOCIALACCOUNT_ONLY`: no local login, signup or reset.
    let local = !config.socialaccount.only;
    let mut flows = Vec::new();
    if local {
        flows.push(Flow::plain(FlowKind::Login));
    }
    if config.account.login_by_code_enabled && built.login_by_code {
        flows.push(Flow::plain(FlowKind::LoginByCode));
    }
    if config.account.signup_open && built.signup && local {
        flows.push(Flow::plain(FlowKind::Signup));
    }
    if config.socialaccount.enabled && built.socialaccount {
        flows.extend(crate::app::social::provider_flows(
            config, client, data, now_ms,
        ));
    }
    if config.mfa.enabled && built.webauthn && config.mfa.passkey_login_enabled {
        flows.push(Flow::plain(FlowKind::MfaLoginWebauthn));
    }
    if let Some(login) = data.live_login(config, now_ms) {
        let id = login.stage.flow();
        let types = match &login.stage {
            Stage::MfaAuthenticate { types } => types.clone(),
            _ => Vec::new(),
        };
        match flows.iter_mut().find(|f| f.id == id) {
            Some(flow) => flow.is_pending = Some(true),
            None => flows.push(Flow {
                types,
                is_pending: Some(true),
                ..Flow::plain(id)
            }),
        }
    }
    if local && config.account.password_reset_by_code_enabled && built.password_reset_by_code {
        let pending_reset = data.live_password_reset(config, now_ms).is_some();
        flows.push(Flow {
            is_pending: Some(pending_reset),
            ..Flow::plain(FlowKind::PasswordResetByCode)
        });
    }
    flows
}

/// The flows offered to a logged-in user who must reauthenticate:
/// `reauthenticate` with a usable password, `mfa_reauthenticate` (with
/// `mfa_types`, the user's kinds of authenticator) when there are any.
pub fn reauthentication_flows(
    config: &Config,
    built: Built,
    user: &UserView,
    mfa_types: &[MfaType],
) -> Vec<Flow> {
    let mut flows = Vec::new();
    if user.has_usable_password {
        flows.push(Flow::plain(FlowKind::Reauthenticate));
    }
    if config.mfa.enabled && built.mfa && !mfa_types.is_empty() {
        flows.push(Flow {
            types: mfa_types.to_vec(),
            ..Flow::plain(FlowKind::MfaReauthenticate)
        });
    }
    flows
}

/// Whether the last authentication is recent enough for a sensitive change.
pub fn recently_authenticated(config: &Config, data: &SessionData, now_ms: i64) -> bool {
    let window = config.account.reauthentication_timeout as f64;
    data.methods
        .iter()
        .map(AuthRecord::at)
        .fold(None, |latest: Option<f64>, at| {
            Some(latest.map_or(at, |l| l.max(at)))
        })
        .is_some_and(|at| AuthRecord::seconds(now_ms) - at <= window)
}

/// The session of the request being handled. Flows change it through these
/// methods; the store (`app::sessions::session_store`) loads it before and saves it
/// after, with compare-and-set on `version`.
#[derive(Debug, Default)]
pub struct LiveSession {
    /// The stored row, if there is one.
    pub row_id: Option<i64>,
    /// The version of the row this value was read at (or last wrote).
    pub version: i64,
    /// The SHA-256 (hex) of the row's current key; JWTs are bound to it.
    pub key_hash: Option<String>,
    pub user: Option<UserView>,
    pub data: SessionData,
    /// A token to hand to the client: the session was created or rotated.
    pub new_token: Option<String>,
    /// The CSRF secret must be replaced (browser; at login, as Django does).
    pub rotate_csrf: bool,
    /// Somebody logged in during this call: the stored row starts afresh as
    /// that login's session (allauth records a new user session at login).
    pub logged_in: bool,
    /// The client's session was revoked and ended by this call: a browser's
    /// cookie is deleted unless a new session replaces it.
    pub forget_cookie: bool,
    /// The browser's trust-this-browser cookie, both ways.
    pub trust: TrustCookie,
    modified: bool,
    ended: bool,
}

/// allauth's "trust this browser" cookie as a flow sees it: only browser
/// clients have one (`browser`); `received` is what the request sent,
/// `issue` a new value for the answer to set.
#[derive(Debug, Default)]
pub struct TrustCookie {
    pub browser: bool,
    pub received: Option<String>,
    pub issue: Option<String>,
}

impl LiveSession {
    pub fn loaded(
        row_id: i64,
        version: i64,
        key_hash: String,
        user: Option<UserView>,
        data: SessionData,
    ) -> Self {
        LiveSession {
            row_id: Some(row_id),
            version,
            key_hash: Some(key_hash),
            user,
            data,
            ..Default::default()
        }
    }

    /// No session, and the client's stale one is forgotten (a browser's
    /// cookie is deleted).
    pub fn forgotten() -> Self {
        LiveSession {
            forget_cookie: true,
            ..Default::default()
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.user.is_some()
    }

    pub fn is_modified(&self) -> bool {
        self.modified
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Logs `user` in: a new session key (no fixation), the login in
    /// progress cleared, its `records` added.
    pub fn login(&mut self, user: UserView, records: Vec<AuthRecord>) {
        if self.user.as_ref().is_some_and(|u| u.id != user.id) {
            // Django flushes the session when another user logs in.
            self.data.methods.clear();
        }
        self.user = Some(user);
        self.data.login = None;
        self.data.methods.extend(records);
        self.new_token = Some(codes::new_token());
        self.rotate_csrf = true;
        self.logged_in = true;
        self.modified = true;
    }

    /// A new key for the same session and user (Django's `cycle_key`, as
    /// `update_session_auth_hash` does after a password change).
    pub fn cycle_key(&mut self) {
        self.new_token = Some(codes::new_token());
        self.modified = true;
    }

    /// Adds an authentication record to a logged-in session (reauthentication).
    pub fn add_record(&mut self, record: AuthRecord) {
        self.data.methods.push(record);
        self.modified = true;
    }

    /// Starts (or replaces) the login in progress.
    pub fn begin_login(&mut self, login: PendingLogin) {
        self.data.login = Some(login);
        self.mark_modified();
    }

    /// Ends the login in progress.
    pub fn end_login(&mut self) {
        if self.data.login.take().is_some() {
            self.mark_modified();
        }
    }

    /// Keeps (or forgets) the sealed TOTP secret offered for activation.
    pub fn set_totp_setup(&mut self, sealed: Option<String>) {
        if self.data.totp_setup != sealed {
            self.data.totp_setup = sealed;
            self.mark_modified();
        }
    }

    /// Starts (or, with `None`, forgets) a WebAuthn ceremony.
    pub fn set_webauthn(&mut self, ceremony: Option<serde_json::Value>) {
        if ceremony.is_some() || self.data.webauthn.is_some() {
            self.data.webauthn = ceremony;
            self.mark_modified();
        }
    }

    /// Changes the processes beside the login.
    pub fn processes_mut(&mut self) -> &mut Processes {
        self.mark_modified();
        &mut self.data.processes
    }

    /// The data changed: it is saved at the end of the call (a client
    /// without a session gets one).
    pub fn mark_modified(&mut self) {
        self.modified = true;
        if self.row_id.is_none() && self.new_token.is_none() {
            self.new_token = Some(codes::new_token());
        }
    }

    /// Django's `logout` before another login: the user and the session's
    /// data go, and the session continues under a new key.
    pub fn restart(&mut self) {
        self.user = None;
        self.data = SessionData::default();
        self.new_token = Some(codes::new_token());
        self.rotate_csrf = true;
        self.modified = true;
    }

    /// Changes the provider redirects under way.
    pub fn social_states_mut(
        &mut self,
    ) -> &mut std::collections::BTreeMap<String, crate::app::social::RedirectState> {
        self.mark_modified();
        &mut self.data.social_states
    }

    /// Ends the session: the row goes, the client's token stops working.
    pub fn logout(&mut self) {
        self.user = None;
        self.data = SessionData::default();
        self.new_token = None;
        self.ended = true;
        self.modified = true;
    }

    /// Whether saving keeps a row (a user or a flow to remember). A stored
    /// row outlives the end of its flow (as a Django session does): the
    /// client's token keeps working — a later call is a 409 or the
    /// anonymous 401, not a 410. Only logout deletes it.
    pub fn worth_keeping(&self) -> bool {
        !self.ended
            && (self.user.is_some()
                || self.data.login.is_some()
                || self.data.webauthn.is_some()
                || !self.data.social_states.is_empty()
                || self.data.processes != Processes::default()
                || self.row_id.is_some())
    }
}
