//! allauth's password reset: a mailed link (or, with `password_reset_by_code_enabled`, a mailed code) lets the owner of an address set a new password.
//!
//! * **Request** answers the same for known and unknown addresses (under
//!   `prevent_enumeration`); an unknown one gets the "unknown account" mail
//!   when `email_unknown_accounts`. Counted by `reset_password` (per ip and
//!   per address).
//! * **Link keys** play the part of Django's `uidb36-token`: a
//!   [`codes::sign`]ed `"<user id>:<fingerprint>"`, where the fingerprint is
//!   a keyed digest of the user's password hash, last login and primary
//!   address. Setting a password (or logging in) changes the fingerprint, so
//!   a key works once and dies with any password change, like Django's
//!   `PasswordResetTokenGenerator`. Keys expire after Django's
//!   `PASSWORD_RESET_TIMEOUT` (three days).
//! * **Codes** live in the session as [`PasswordResetProcess`] (only
//!   the HMAC of the code is kept) for `password_reset_by_code_timeout`; every
//!   wrong code counts, and the attempt reaching
//!   `password_reset_by_code_max_attempts` ends the flow (then 409). A right
//!   code proves the address: it becomes verified.
//! * **Reset** sets the password (Argon2id), ends every session of the user
//!   (Django invalidates them through the session auth hash), mails the
//!   `PasswordReset` notice when `email_notifications`, and logs in with a
//!   `password_reset` record when `login_on_password_reset`.

use crate::webhooks::{self, Event};
use serde_json::json;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::app::account::accounts::{self, Deps};
use crate::app::security::codes;
use crate::app::security::password_validation::{self, UserAttribute};
use crate::app::security::ratelimit::{self, RateLimitSubject};
use crate::app::security::secrets::{constant_time_eq, hex};
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::{
    check_code, AuthRecord, CodeCheck, CodeLimits, CodeSlot, CodeStage, LiveSession,
    PasswordResetProcess, UserView,
};
use crate::app::{Error, FieldError};
use crate::config::{Config, EmailVerification};
use crate::db::users::{self, User};
use crate::db::{email_addresses, rate_limits, sessions, DbConnection, DbError};
use crate::email::{enqueue, FrontendLinks, Message};

/// Salt of the signed reset keys.
const KEY_SALT: &str = "password-reset";
/// Django's `PASSWORD_RESET_TIMEOUT` default: a link key lives three days.
pub const PASSWORD_RESET_TIMEOUT_SECS: i64 = 3 * 24 * 3600;

/// What a successful request did, so the caller can answer as allauth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// A link was mailed (or pretended): `{"status": 200}`.
    Link,
    /// A code was mailed and the flow is pending: the session's answer.
    Code,
}

/// The input of `POST auth/password/reset`, as far as it parsed.
pub struct ResetInput {
    pub key: String,
    pub password: String,
}

fn invalid_reset_key() -> FieldError {
    FieldError::new(
        "invalid_password_reset",
        Some("key"),
        "The password reset token was invalid.",
    )
}

fn incorrect_code() -> FieldError {
    FieldError::new("incorrect_code", Some("key"), "Incorrect code.")
}

fn config_arc(deps: &Deps<'_>) -> Arc<Config> {
    Arc::new(deps.config.clone())
}

/// `POST auth/password/request`.
pub async fn request(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    email: &str,
) -> Result<Requested, Error> {
    let config = deps.config;
    // allauth's `EmailField` lowercases what it cleans.
    let email = accounts::clean_email_field(config, email, "email")
        .map_err(|e| Error::Invalid(vec![e]))?
        .to_lowercase();
    let folded = email_addresses::fold_email(&email);
    let lookup = folded.clone();
    let users: Vec<User> = deps
        .db
        .run(move |conn| accounts::users_with_email(conn, &lookup, true))
        .await?
        .into_iter()
        .filter(|u| u.is_active)
        .collect();
    if users.is_empty() && !config.account.prevent_enumeration.is_enabled() {
        return Err(Error::Invalid(vec![FieldError::new(
            "unknown_email",
            Some("email"),
            "The email address is not assigned to any user account.",
        )]));
    }
    deps.consume_or_429("reset_password", None, Some(&folded))
        .await?;

    let links = FrontendLinks::new(&config.headless.frontend_urls);
    let unknown = (users.is_empty() && config.account.email_unknown_accounts).then(|| {
        Message::UnknownAccount {
            email: email.clone(),
            signup_url: Some(links.signup()),
        }
    });
    let secret = deps.secret().to_owned();
    let now = deps.now_ms;
    let shared = config_arc(deps);

    if config.account.password_reset_by_code_enabled {
        let user_id = users.first().map(|u| u.id);
        let (code_hash, message) = match user_id {
            Some(_) => {
                let code = codes::generate_user_code();
                let message = Message::PasswordResetCode {
                    code: code.clone(),
                    email: email.clone(),
                };
                (codes::hash_code(&secret, &code), Some(message))
            }
            // Nothing was mailed: an empty hash matches no code.
            None => (String::new(), unknown),
        };
        let to = email.clone();
        deps.db
            .transaction(move |conn| {
                if let Some(message) = &message {
                    enqueue(conn, &shared, &to, message, now)?;
                }
                Ok(())
            })
            .await?;
        deps.mailer.wake();
        session.processes_mut().password_reset = Some(PasswordResetProcess {
            user_id,
            email,
            started_at: now,
            code: CodeStage {
                code_hash,
                sent_at: now,
                failed_attempts: 0,
                resend_count: 0,
            },
            verified: false,
        });
        return Ok(Requested::Code);
    }

    let user_ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let to = email.clone();
    deps.db
        .transaction(move |conn| {
            if let Some(message) = &unknown {
                enqueue(conn, &shared, &to, message, now)?;
            }
            let links = FrontendLinks::new(&shared.headless.frontend_urls);
            for id in &user_ids {
                let Some(user) = users::by_id(conn, *id)? else {
                    continue;
                };
                let key = make_key(conn, &secret, &user, now.div_euclid(1000))?;
                let message = Message::PasswordResetLink {
                    url: links.password_reset_from_key(&key),
                    email: to.clone(),
                };
                enqueue(conn, &shared, &to, &message, now)?;
            }
            Ok(())
        })
        .await?;
    deps.mailer.wake();
    Ok(Requested::Link)
}

/// `GET auth/password/reset`: the user the key (or code) belongs to. A
/// wrong or missing code counts as an attempt.
pub async fn view(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    key: &str,
) -> Result<UserView, Error> {
    let key = key.trim();
    if deps.config.account.password_reset_by_code_enabled {
        resume(deps, session).await?;
        let stage = check_reset_code(deps, session, key).await?;
        let user = match stage.user_id {
            Some(id) => load_user(deps, id).await?,
            None => None,
        };
        let Some(user) = user else {
            return Err(Error::Invalid(vec![incorrect_code()]));
        };
        if !stage.verified {
            verify_indirectly(deps, user.id, &stage.email).await?;
            let started_at = stage.started_at;
            deps.sessions()
                .update(session, move |data| {
                    if let Some(p) = data
                        .processes
                        .password_reset
                        .as_mut()
                        .filter(|p| p.started_at == started_at)
                    {
                        p.verified = true;
                    }
                })
                .await?;
        }
        return view_of(deps, user).await;
    }
    if key.is_empty() {
        return Err(Error::Invalid(vec![accounts::required("key")]));
    }
    let Some(user) = check_key(deps, key).await? else {
        return Err(Error::Invalid(vec![invalid_reset_key()]));
    };
    view_of(deps, user).await
}

/// `POST auth/password/reset`. `input` is the parsed body, or the errors of
/// parsing it (a key error there counts as a wrong code). The caller answers
/// with the session: 200 when logged in after the reset, else 401.
pub async fn confirm(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    input: Result<ResetInput, Error>,
) -> Result<(), Error> {
    let config = deps.config;
    deps.consume_or_429("reset_password_from_key", None, None)
        .await?;
    let by_code = config.account.password_reset_by_code_enabled;
    if by_code {
        resume(deps, session).await?;
    }
    let input = match input {
        Ok(input) => input,
        Err(error) => {
            if let (true, Error::Invalid(errors)) = (by_code, &error) {
                if errors.iter().any(|e| e.param.as_deref() == Some("key")) {
                    // A key that did not parse is a wrong code.
                    check_reset_code(deps, session, "").await.ok();
                }
            }
            return Err(error);
        }
    };
    let key = input.key.trim();
    let password = input.password.trim();

    let mut errors = Vec::new();
    // The user whose password would be set: the key's (link), or the
    // flow's, whatever the code (allauth validates the password against it
    // in both cases). A code is checked (and a wrong one counted) in one
    // compare-and-set.
    let (user, stage, key_error) = if by_code {
        let process = session
            .data
            .live_password_reset(config, deps.now_ms)
            .cloned();
        let user = match process.as_ref().and_then(|p| p.user_id) {
            Some(id) => load_user(deps, id).await?,
            None => None,
        };
        match check_reset_code(deps, session, key).await {
            Ok(stage) if user.is_some() => (user, Some(stage), None),
            Ok(_) => (user, None, Some(incorrect_code())),
            Err(Error::Invalid(mut e)) => (user, None, e.pop()),
            Err(other) => return Err(other),
        }
    } else if key.is_empty() {
        (None, None, Some(accounts::required("key")))
    } else {
        match check_key(deps, key).await? {
            Some(user) => (Some(user), None, None),
            None => (None, None, Some(invalid_reset_key())),
        }
    };
    errors.extend(key_error);
    if password.is_empty() {
        errors.push(accounts::required("password"));
    } else if let Some(user) = &user {
        let view = view_of(deps, user.clone()).await?;
        errors.extend(password_errors(deps, &view, password, "password"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let Some(user) = user else {
        return Err(Error::Invalid(vec![invalid_reset_key()]));
    };
    if let Some(stage) = &stage {
        // The right code serves one reset: claim the process.
        let (started_at, code_hash) = (stage.started_at, stage.code.code_hash.clone());
        let claimed =
            deps.sessions()
                .update(session, move |data| {
                    let same = data.processes.password_reset.as_ref().is_some_and(|p| {
                        p.started_at == started_at && p.code.code_hash == code_hash
                    });
                    if same {
                        data.processes.password_reset = None;
                    }
                    same
                })
                .await?;
        if !claimed {
            return Err(Error::Conflict);
        }
    }

    let hash = deps.passwords.hash(password).await?;
    let email = stage.as_ref().map(|s| s.email.clone());
    let verify = stage
        .as_ref()
        .filter(|s| !s.verified)
        .map(|s| s.email.clone());
    let log_in = config.account.login_on_password_reset;
    let keep = session
        .row_id
        .filter(|_| log_in || session.user.as_ref().is_none_or(|u| u.id != user.id));
    let shared = config_arc(deps);
    let now = deps.now_ms;
    let user_id = user.id;
    let old_hash = user.password_hash.clone();
    let ip = deps.ip.to_owned();
    let origin = deps.change_origin();
    let updated = deps
        .db
        .transaction(move |conn| {
            // Only if nobody set a password since the key was checked: a
            // link key (bound to the old hash) works once.
            if !users::replace_password_hash(conn, user_id, old_hash.as_deref(), &hash)? {
                return Ok(Err(()));
            }
            if let Some(email) = &verify {
                verify_owned_address(conn, user_id, email)?;
            }
            // Every session of the user is logged out (Django's session auth
            // hash); the caller's own stays when it logs in now.
            sessions::revoke_for_user(conn, user_id, keep)?;
            let addresses = email_addresses::for_user(conn, user_id)?;
            // The failed-login counters of every address start afresh (as
            // allauth's `_delete_login_attempts_cached_email`).
            let counters: Vec<String> = addresses
                .iter()
                .flat_map(|a| {
                    let subject = RateLimitSubject {
                        ip: Some(ip.clone()),
                        user: None,
                        key: Some(a.email.to_lowercase()),
                    };
                    ratelimit::counter_keys(&shared, "login_failed", &subject)
                })
                .collect();
            rate_limits::clear(conn, "login_failed", &counters)?;
            let verified = addresses.iter().any(|a| a.verified);
            let may_log_in = log_in
                && (shared.account.email_verification != EmailVerification::Mandatory || verified);
            let primary = email_addresses::primary_for_user(conn, user_id)?.map(|a| a.email);
            webhooks::emit(
                conn,
                &shared,
                Event::new("password.reset", user_id, json!({})),
                now,
            )?;
            if shared.account.email_notifications {
                if let Some(to) = &primary {
                    enqueue(conn, &shared, to, &Message::PasswordReset { origin }, now)?;
                }
            }
            let user = users::by_id(conn, user_id)?;
            Ok(Ok(user.map(|u| (u, may_log_in))))
        })
        .await?;
    deps.mailer.wake();
    let Ok(updated) = updated else {
        return Err(Error::Invalid(vec![if by_code {
            incorrect_code()
        } else {
            invalid_reset_key()
        }]));
    };
    let Some((user, may_log_in)) = updated else {
        return Ok(());
    };
    if may_log_in {
        let record = AuthRecord::PasswordReset {
            at: AuthRecord::seconds(now),
            email,
        };
        let attempt = Attempt::new(deps, Some(user), None).with_record(record);
        pipeline::authenticated(deps, session, attempt).await
    } else {
        if session.user.as_ref().is_some_and(|u| u.id == user.id) {
            session.logout();
        }
        Ok(())
    }
}

/// Django's password validators for `user`, then the length limit, with `param`.
pub fn password_errors(
    deps: &Deps<'_>,
    user: &UserView,
    password: &str,
    param: &str,
) -> Vec<FieldError> {
    let mut attributes = Vec::new();
    if let Some(username) = &user.username {
        attributes.push(UserAttribute::username(username));
    }
    if let Some(email) = &user.email {
        attributes.push(UserAttribute::email(email));
    }
    let mut errors =
        password_validation::validate_password(&deps.config.account, password, &attributes)
            .err()
            .unwrap_or_default();
    errors.extend(deps.passwords.check_length(password).err());
    for error in &mut errors {
        error.param = Some(param.to_owned());
    }
    errors
}

/// The live reset process (allauth's `resume`), or 409. A lapsed one is ended.
async fn resume(deps: &Deps<'_>, session: &mut LiveSession) -> Result<(), Error> {
    if session
        .data
        .live_password_reset(deps.config, deps.now_ms)
        .is_some()
    {
        return Ok(());
    }
    if session.data.processes.password_reset.is_some() {
        session.processes_mut().password_reset = None;
    }
    Err(Error::Conflict)
}

/// Checks a reset code and counts a wrong (or missing) one in one
/// compare-and-set of the session: the process as it was when the code
/// was right; a 400 (`required` or `incorrect_code`) when wrong; 409 when
/// no process is live (lapsed, or its attempts used up).
async fn check_reset_code(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    key: &str,
) -> Result<PasswordResetProcess, Error> {
    let limits = CodeLimits::password_reset(deps.config);
    let (secret, now) = (deps.secret().to_owned(), deps.now_ms);
    let given = key.trim().to_owned();
    let outcome = deps
        .sessions()
        .update(session, move |data| {
            let process = data.processes.password_reset.clone();
            let check = check_code(data, CodeSlot::PasswordReset, limits, &secret, &given, now);
            (check, process)
        })
        .await?;
    match outcome {
        (CodeCheck::Right, Some(process)) => Ok(process),
        (CodeCheck::Wrong { .. }, _) if key.trim().is_empty() => {
            Err(Error::Invalid(vec![accounts::required("key")]))
        }
        (CodeCheck::Wrong { .. }, _) => Err(Error::Invalid(vec![incorrect_code()])),
        _ => Err(Error::Conflict),
    }
}

async fn load_user(deps: &Deps<'_>, id: i64) -> Result<Option<User>, Error> {
    Ok(deps
        .db
        .run(move |conn| users::by_id(conn, id))
        .await?
        .filter(|u| u.is_active))
}

async fn view_of(deps: &Deps<'_>, user: User) -> Result<UserView, Error> {
    Ok(deps
        .db
        .run(move |conn| accounts::view_of(conn, &user))
        .await?)
}

/// Typing the mailed code proves the address (allauth's
/// `verify_email_indirectly`).
async fn verify_indirectly(deps: &Deps<'_>, user_id: i64, email: &str) -> Result<(), Error> {
    let email = email.to_owned();
    deps.db
        .transaction(move |conn| verify_owned_address(conn, user_id, &email))
        .await?;
    Ok(())
}

/// Marks the user's row of `email` verified unless another account has it
/// verified, and makes it primary when the user has none.
fn verify_owned_address(conn: &mut DbConnection, user_id: i64, email: &str) -> Result<(), DbError> {
    let folded = email_addresses::fold_email(email);
    let Some(row) = email_addresses::for_user_by_email_lower(conn, user_id, &folded)? else {
        return Ok(());
    };
    if !row.verified {
        let owner = email_addresses::verified_by_email_lower(conn, &folded)?;
        if owner.is_some_and(|o| o.user_id != user_id) {
            return Ok(());
        }
        email_addresses::mark_verified(conn, row.id)?;
    }
    if email_addresses::primary_for_user(conn, user_id)?.is_none() {
        email_addresses::set_primary(conn, user_id, row.id)?;
    }
    Ok(())
}

/// A keyed digest of what a reset must change: the password hash, the last
/// login and the primary address (Django's token hashes the same).
fn fingerprint(secret: &str, user: &User, primary: Option<&str>) -> String {
    let mut digest = Sha256::new();
    for part in [
        "allauth-server:password-reset-state",
        secret,
        &user.id.to_string(),
        user.password_hash.as_deref().unwrap_or(""),
        &user.last_login.map(|t| t.to_string()).unwrap_or_default(),
        primary.unwrap_or(""),
    ] {
        digest.update(part.len().to_le_bytes());
        digest.update(part.as_bytes());
    }
    hex(&digest.finalize()[..16])
}

/// A new reset key for `user`.
fn make_key(
    conn: &mut DbConnection,
    secret: &str,
    user: &User,
    now_secs: i64,
) -> Result<String, DbError> {
    let primary = email_addresses::primary_for_user(conn, user.id)?.map(|a| a.email);
    let value = format!(
        "{}.{}",
        user.id,
        fingerprint(secret, user, primary.as_deref())
    );
    Ok(codes::sign(secret, KEY_SALT, &value, now_secs))
}

/// The active user a link key belongs to, if the key is authentic, recent
/// and its fingerprint still matches.
async fn check_key(deps: &Deps<'_>, key: &str) -> Result<Option<User>, Error> {
    let secret = deps.secret().to_owned();
    let Ok(value) = codes::unsign(
        &secret,
        KEY_SALT,
        key,
        PASSWORD_RESET_TIMEOUT_SECS,
        deps.now_secs(),
    ) else {
        return Ok(None);
    };
    let Some((id, given)) = value.split_once(['.', ':']) else {
        return Ok(None);
    };
    let Ok(id) = id.parse::<i64>() else {
        return Ok(None);
    };
    let given = given.to_owned();
    Ok(deps
        .db
        .run(move |conn| {
            let Some(user) = users::by_id(conn, id)?.filter(|u| u.is_active) else {
                return Ok(None);
            };
            let primary = email_addresses::primary_for_user(conn, id)?.map(|a| a.email);
            let expected = fingerprint(&secret, &user, primary.as_deref());
            Ok(constant_time_eq(expected.as_bytes(), given.as_bytes()).then_some(user))
        })
        .await?)
}
