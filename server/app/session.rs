//! Sessions as the application sees them: who is logged in, how they
//! authenticated (`methods`), and the pending stage of an unfinished flow — a
//! typed state persisted with the session, not loose flags.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::app::features::Built;
use crate::config::Config;

/// A code sent by mail for a flow stage: only its hash is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeState {
    pub code_hash: String,
    /// When the code was sent (unix ms).
    pub sent_at: i64,
    pub failed_attempts: u32,
    pub resend_count: u32,
}

/// The stage a flow waits in. Each variant is one of allauth's pending flow ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Pending {
    /// Login or signup waits until the address is verified (mandatory verification).
    VerifyEmail {
        /// `None` under enumeration prevention: a signup with a taken
        /// address waits here too, for a code that was never mailed.
        user_id: Option<i64>,
        email: String,
        /// When the stage began (unix ms); it lapses after `login_timeout`.
        started_at: i64,
        /// Present when verification is by code.
        code: Option<CodeState>,
        /// Method record to add once verified (the login that was stopped).
        record: Option<Value>,
    },
    /// Login by code: a code was mailed (to an account's address or, under
    /// enumeration prevention, to an unknown one).
    LoginByCode {
        user_id: Option<i64>,
        email: String,
        started_at: i64,
        code: CodeState,
    },
    /// Password reset by code.
    PasswordResetByCode {
        user_id: Option<i64>,
        email: String,
        started_at: i64,
        code: CodeState,
        verified: bool,
    },
}

impl Pending {
    /// allauth's flow id of the stage.
    pub fn flow_id(&self) -> &'static str {
        match self {
            Pending::VerifyEmail { .. } => "verify_email",
            Pending::LoginByCode { .. } => "login_by_code",
            Pending::PasswordResetByCode { .. } => "password_reset_by_code",
        }
    }

    pub fn started_at(&self) -> i64 {
        match self {
            Pending::VerifyEmail { started_at, .. }
            | Pending::LoginByCode { started_at, .. }
            | Pending::PasswordResetByCode { started_at, .. } => *started_at,
        }
    }

    /// Whether the stage appears in the flows list as the login stage
    /// (password reset by code is reported separately).
    fn is_login_stage(&self) -> bool {
        !matches!(self, Pending::PasswordResetByCode { .. })
    }
}

/// What a session keeps besides its user: the JSON in `sessions.data`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// Authentication records, as sent in `data.methods`.
    #[serde(default)]
    pub methods: Vec<Value>,
    #[serde(default)]
    pub pending: Option<Pending>,
    /// The login was revoked (a password change or reset elsewhere): the
    /// next use of the session ends it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

impl SessionData {
    pub fn parse(text: &str) -> SessionData {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// The pending password reset by code, unless it has outlived
    /// `password_reset_by_code_timeout` (allauth's `abort_if_invalid`: the
    /// reset process has its own timeout, not the login stage's).
    pub fn live_password_reset(&self, config: &Config, now_ms: i64) -> Option<&Pending> {
        let timeout_ms = i64::try_from(config.account.password_reset_by_code_timeout)
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        self.pending.as_ref().filter(|p| {
            matches!(p, Pending::PasswordResetByCode { .. })
                && now_ms.saturating_sub(p.started_at()) <= timeout_ms
        })
    }

    /// The pending stage, unless it has lapsed.
    pub fn live_pending(&self, config: &Config, now_ms: i64) -> Option<&Pending> {
        let timeout_ms = i64::try_from(config.account.login_timeout)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
        self.pending
            .as_ref()
            .filter(|p| now_ms.saturating_sub(p.started_at()) < timeout_ms)
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

    /// `{id, display, has_usable_password, email, username}`.
    pub fn to_json(&self) -> Value {
        let display = self
            .username
            .clone()
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| self.id.to_string());
        let mut user = Map::new();
        user.insert("id".into(), json!(self.id));
        user.insert("display".into(), json!(display));
        user.insert(
            "has_usable_password".into(),
            json!(self.has_usable_password),
        );
        if let Some(email) = &self.email {
            user.insert("email".into(), json!(email));
        }
        if let Some(username) = &self.username {
            user.insert("username".into(), json!(username));
        }
        Value::Object(user)
    }
}

/// An authentication record for `data.methods`, stamped with `at` (seconds).
pub fn record(method: &str, now_ms: i64, extra: &[(&str, Value)]) -> Value {
    let mut entry = Map::new();
    entry.insert("method".into(), json!(method));
    entry.insert("at".into(), json!(now_ms as f64 / 1000.0));
    for (key, value) in extra {
        entry.insert((*key).to_string(), value.clone());
    }
    Value::Object(entry)
}

/// The flows an anonymous (or pending) client may take next, in allauth's order.
pub fn anonymous_flows(
    config: &Config,
    built: Built,
    data: &SessionData,
    now_ms: i64,
) -> Vec<Value> {
    let mut flows = vec![json!({"id": "login"})];
    if config.account.login_by_code_enabled && built.login_by_code {
        flows.push(json!({"id": "login_by_code"}));
    }
    if config.account.signup_open && built.signup {
        flows.push(json!({"id": "signup"}));
    }
    if config.mfa.enabled && built.mfa && config.mfa.passkey_login_enabled {
        flows.push(json!({"id": "mfa_login_webauthn"}));
    }
    let pending = data.live_pending(config, now_ms);
    if let Some(stage) = pending.filter(|p| p.is_login_stage()) {
        let id = stage.flow_id();
        match flows.iter_mut().find(|f| f["id"] == id) {
            Some(flow) => {
                flow["is_pending"] = json!(true);
            }
            None => flows.push(json!({"id": id, "is_pending": true})),
        }
    }
    if config.account.password_reset_by_code_enabled && built.password_reset_by_code {
        let pending_reset = data.live_password_reset(config, now_ms).is_some();
        flows.push(json!({"id": "password_reset_by_code", "is_pending": pending_reset}));
    }
    flows
}

/// The flows offered to a logged-in user who must reauthenticate.
pub fn reauthentication_flows(config: &Config, built: Built, user: &UserView) -> Vec<Value> {
    let mut flows = Vec::new();
    if user.has_usable_password {
        flows.push(json!({"id": "reauthenticate"}));
    }
    if config.mfa.enabled && built.mfa {
        flows.push(json!({"id": "mfa_reauthenticate"}));
    }
    flows
}

/// Whether the last authentication is recent enough for a sensitive change.
pub fn recently_authenticated(config: &Config, data: &SessionData, now_ms: i64) -> bool {
    let window = config.account.reauthentication_timeout as f64;
    data.methods
        .iter()
        .filter_map(|m| m.get("at").and_then(Value::as_f64))
        .fold(None, |latest: Option<f64>, at| {
            Some(latest.map_or(at, |l| l.max(at)))
        })
        .is_some_and(|at| now_ms as f64 / 1000.0 - at <= window)
}

/// The session of the request being handled. Flows change it through these
/// methods; the HTTP layer loads it before and saves it after.
#[derive(Debug, Default)]
pub struct LiveSession {
    /// The stored row, if there is one.
    pub row_id: Option<i64>,
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
    modified: bool,
    ended: bool,
}

impl LiveSession {
    pub fn loaded(
        row_id: i64,
        key_hash: String,
        user: Option<UserView>,
        data: SessionData,
    ) -> Self {
        LiveSession {
            row_id: Some(row_id),
            key_hash: Some(key_hash),
            user,
            data,
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

    /// Logs `user` in: a new session key (no fixation), the pending stage
    /// cleared, `record` added to the authentication records.
    pub fn login(&mut self, user: UserView, record: Option<Value>) {
        self.user = Some(user);
        self.data.pending = None;
        self.data.methods.extend(record);
        self.new_token = Some(crate::app::codes::new_token());
        self.rotate_csrf = true;
        self.logged_in = true;
        self.modified = true;
    }

    /// A new key for the same session and user (Django's `cycle_key`, as
    /// `update_session_auth_hash` does after a password change).
    pub fn cycle_key(&mut self) {
        self.new_token = Some(crate::app::codes::new_token());
        self.modified = true;
    }

    /// Adds an authentication record to a logged-in session (reauthentication).
    pub fn add_record(&mut self, record: Value) {
        self.data.methods.push(record);
        self.modified = true;
    }

    /// Replaces the pending stage.
    pub fn set_pending(&mut self, pending: Option<Pending>) {
        self.data.pending = pending;
        self.modified = true;
        if self.row_id.is_none() && self.new_token.is_none() {
            self.new_token = Some(crate::app::codes::new_token());
        }
    }

    /// Ends the session: the row goes, the client's token stops working.
    pub fn logout(&mut self) {
        self.user = None;
        self.data = SessionData::default();
        self.new_token = None;
        self.ended = true;
        self.modified = true;
    }

    /// Whether saving keeps a row (a user or a stage to remember). A stored
    /// row outlives the end of its flow (as a Django session does): the
    /// client's token keeps working — a later call is a 409 or the
    /// anonymous 401, not a 410. Only logout deletes it.
    pub fn worth_keeping(&self) -> bool {
        !self.ended && (self.user.is_some() || self.data.pending.is_some() || self.row_id.is_some())
    }
}
