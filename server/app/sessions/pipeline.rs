//! The login pipeline: every way in (password, code, password reset,
//! signup, passkey, provider) authenticates a user, then passes the same
//! steps in allauth's order — verify phone, verify email, MFA authenticate,
//! trust this browser, a passkey signup's passkey — and ends in one [`complete`], which records
//! how the user authenticated, marks the login and rotates the session key
//! (the HTTP layer then hands out the new token or cookie, and JWTs).
//!
//! A step that must wait for the client becomes the login's typed
//! [`Stage`], persisted with the session ([`PendingLogin`]); the operation
//! that finishes a stage claims it atomically from the store and calls
//! [`advance`] with the step it finished. Adding a way to log in is a call
//! to [`authenticated`]; adding a step is one `Step` variant, its stage and
//! one arm in [`advance`].

use crate::app::account::accounts::{self, Deps};
use crate::app::account::email_verification;
use crate::app::account::phones::{self, PhoneStep};
use crate::app::mfa;
use crate::app::sessions::session::{AuthRecord, LiveSession, PendingLogin, Stage, Step, UserView};
use crate::app::Error;
use crate::db::users::{self, User};
use crate::db::{DbConnection, DbError};
use crate::webhooks::{self, Event};
use serde_json::json;

/// Every step, in the order a login passes them.
const STEPS: [Step; 6] = [
    Step::Authenticate,
    Step::VerifyPhone,
    Step::VerifyEmail,
    Step::MfaAuthenticate,
    Step::MfaTrust,
    Step::PasskeySignup,
];

/// A login on its way through the pipeline.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `None` for a decoy under enumeration prevention: it can wait in a
    /// stage like a real login, but never completes.
    pub user: Option<User>,
    /// The address the login named (or the signup's).
    pub email: Option<String>,
    /// The phone number the login named (or the signup's).
    pub phone: Option<String>,
    pub signup: bool,
    /// A signup by passkey: it ends with the passkey's creation.
    pub passkey: bool,
    /// A login through a provider (`socialaccount.email_verification`).
    pub social: bool,
    /// What has been proved so far, recorded when the login completes.
    pub records: Vec<AuthRecord>,
    /// When the login began (unix ms).
    pub started_at: i64,
}

impl Attempt {
    /// A login of `user` that has just passed its first factor.
    pub fn new(deps: &Deps<'_>, user: Option<User>, email: Option<String>) -> Attempt {
        Attempt {
            user,
            email,
            phone: None,
            signup: false,
            passkey: false,
            social: false,
            records: Vec::new(),
            started_at: deps.now_ms,
        }
    }

    pub fn with_record(mut self, record: AuthRecord) -> Attempt {
        self.records.push(record);
        self
    }

    /// The login that waited in `pending`, with its user read again (an
    /// account deleted or deactivated meanwhile makes it a decoy).
    pub async fn resume(deps: &Deps<'_>, pending: PendingLogin) -> Result<Attempt, Error> {
        let user = match pending.user_id {
            Some(id) => deps
                .db
                .run(move |conn| users::by_id(conn, id))
                .await?
                .filter(|u| u.is_active),
            None => None,
        };
        Ok(Attempt {
            user,
            email: pending.email,
            phone: pending.phone,
            signup: pending.signup,
            passkey: pending.passkey,
            social: pending.social,
            records: pending.records,
            started_at: pending.started_at,
        })
    }

    /// This login waiting in `stage`.
    pub fn pending(&self, stage: Stage) -> PendingLogin {
        PendingLogin {
            user_id: self.user.as_ref().map(|u| u.id),
            email: self.email.clone(),
            phone: self.phone.clone(),
            signup: self.signup,
            passkey: self.passkey,
            social: self.social,
            started_at: self.started_at,
            records: self.records.clone(),
            stage,
        }
    }
}

/// The first factor succeeded: the remaining steps, then the login.
pub async fn authenticated(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    attempt: Attempt,
) -> Result<(), Error> {
    advance(deps, session, attempt, Step::Authenticate).await
}

/// Runs the steps after `done` in order: the first one that has to wait
/// for the client becomes the login's stage; when none does, the login
/// completes.
pub async fn advance(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    attempt: Attempt,
    done: Step,
) -> Result<(), Error> {
    for step in STEPS.into_iter().filter(|s| *s > done) {
        let stage = match step {
            Step::Authenticate => None,
            Step::VerifyPhone => match phones::stage_for(deps, &attempt).await? {
                PhoneStep::Pass => None,
                PhoneStep::Wait(stage) => Some(stage),
                PhoneStep::Abort => {
                    session.end_login();
                    return Ok(());
                }
            },
            Step::VerifyEmail => email_verification::stage_for(deps, &attempt).await?,
            Step::MfaAuthenticate => mfa::authenticate::stage_for(deps, session, &attempt).await?,
            Step::MfaTrust => mfa::authenticate::trust_stage_for(deps, session, &attempt),
            Step::PasskeySignup => {
                (attempt.passkey && attempt.user.is_some()).then_some(Stage::MfaSignupWebauthn)
            }
        };
        if let Some(stage) = stage {
            session.begin_login(attempt.pending(stage));
            return Ok(());
        }
    }
    complete(deps, session, attempt).await
}

/// The webhook event of a completed login.
const LOGGED_IN: &str = "user.logged_in";

/// Logs the user in: `last_login`, the records, a new session key. A
/// decoy cannot get here with a user; it ends as a conflict.
pub async fn complete(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    attempt: Attempt,
) -> Result<(), Error> {
    let Some(user) = attempt.user else {
        session.end_login();
        return Err(Error::Conflict);
    };
    let now = deps.now_ms;
    let method = login_method(&attempt.records, attempt.signup);
    let view = if webhooks::wanted(deps.config, LOGGED_IN) {
        // The event is kept in the login's transaction.
        let config = deps.config.clone();
        deps.db
            .transaction(move |conn| {
                let view = record_login(conn, &user, now)?;
                let event = Event::new(LOGGED_IN, user.id, json!({"method": method}));
                webhooks::emit(conn, &config, event, now)?;
                Ok(view)
            })
            .await?
    } else {
        // Without an event, a transaction would only add a BEGIN and a
        // COMMIT.
        deps.db
            .run(move |conn| record_login(conn, &user, now))
            .await?
    };
    crate::metrics::login(method);
    session.login(view, attempt.records);
    Ok(())
}

/// Writes `last_login` and reads what the session shows of the user.
fn record_login(conn: &mut DbConnection, user: &User, now: i64) -> Result<UserView, DbError> {
    users::set_last_login(conn, user.id, now)?;
    accounts::view_of(conn, user)
}

/// How a login began, for the metrics: its first record's method (a
/// signup or verification without one counts as `signup`).
fn login_method(records: &[AuthRecord], signup: bool) -> &'static str {
    match records.first() {
        Some(AuthRecord::Password { .. }) => "password",
        Some(AuthRecord::PasswordReset { .. }) => "password_reset",
        Some(AuthRecord::Code { .. }) => "code",
        Some(AuthRecord::Socialaccount { .. }) => "socialaccount",
        Some(AuthRecord::Mfa { .. }) => "passkey",
        None if signup => "signup",
        None => "other",
    }
}
