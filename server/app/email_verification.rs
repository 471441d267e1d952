//! Email verification: the `verify_email` stage that stops a login or
//! signup under mandatory verification, the mails it sends (a signed link
//! key or a code), and the operations on it — view a key, confirm it, ask
//! for a new code (allauth's `EmailVerificationStage`,
//! `EmailVerificationProcess` and `VerifyEmailView`).
//!
//! Link keys are `codes::sign`ed ids of the address row, valid for
//! `email_confirmation_expire_days` and only while the address is
//! unverified (so a key works once). Codes live hashed in the pending
//! stage with their attempts; reaching `email_verification_by_code_max_attempts`
//! wrong codes, or the code's timeout, ends the stage.

use serde_json::{json, Value};

use crate::app::accounts::{self, Deps};
use crate::app::codes;
use crate::app::ratelimit::Consumed;
use crate::app::session::{CodeState, LiveSession, Pending};
use crate::app::{Error, FieldError};
use crate::config::{Config, EmailVerification};
use crate::db::email_addresses::{self, EmailAddress, NewEmailAddress};
use crate::db::users::{self, User};
use crate::email::{self, FrontendLinks, Message};

/// Salt of the signed link keys.
const KEY_SALT: &str = "email-verification";

/// A login that stops at the verification stage.
pub struct StagedLogin {
    /// `None` under enumeration prevention (signup with a taken address).
    pub user: Option<User>,
    /// The address the login named (login by email, or the signup address).
    pub email: Option<String>,
    pub signup: bool,
    /// The authentication record to add once verified.
    pub record: Option<Value>,
}

fn by_code(config: &Config) -> bool {
    config.account.email_verification_by_code_enabled
}

/// Whether `user` may log in without verifying first (allauth's
/// `has_verified_email`, for `email` or any address).
pub async fn has_verified_email(
    deps: &Deps<'_>,
    user_id: i64,
    email: Option<&str>,
) -> Result<bool, Error> {
    let email = email.map(email_addresses::fold_email);
    Ok(deps
        .db
        .run(move |conn| {
            Ok(match email {
                Some(e) => email_addresses::for_user_by_email_lower(conn, user_id, &e)?
                    .is_some_and(|a| a.verified),
                None => email_addresses::for_user(conn, user_id)?
                    .iter()
                    .any(|a| a.verified),
            })
        })
        .await?)
}

/// Whether a login by password must be refused because the verification
/// code it would send is rate limited (allauth's `is_verification_rate_limited`;
/// checked without using up the limit).
pub async fn is_verification_rate_limited(
    deps: &Deps<'_>,
    user_id: i64,
    email: Option<&str>,
) -> Result<bool, Error> {
    let Some(email) = email else {
        return Ok(false);
    };
    if !by_code(deps.config)
        || deps.config.account.email_verification != EmailVerification::Mandatory
    {
        return Ok(false);
    }
    let folded = email_addresses::fold_email(email);
    let row = deps
        .db
        .run(move |conn| email_addresses::for_user_by_email_lower(conn, user_id, &folded))
        .await?;
    if row.is_none_or(|r| r.verified) {
        return Ok(false);
    }
    match deps
        .consume("confirm_email", None, Some(&email.to_lowercase()))
        .await?
    {
        Consumed::Allowed(ticket) => {
            deps.rate_limiter.release(ticket).await?;
            Ok(false)
        }
        Consumed::Refused => Ok(true),
    }
}

/// The address a staged login verifies (allauth's `get_address_for_login`).
async fn address_for_login(
    deps: &Deps<'_>,
    user_id: i64,
    email: Option<&str>,
) -> Result<Option<EmailAddress>, Error> {
    let email = email.map(email_addresses::fold_email);
    Ok(deps
        .db
        .run(move |conn| match email {
            Some(e) => email_addresses::for_user_by_email_lower(conn, user_id, &e),
            None => {
                let mut rows = email_addresses::for_user(conn, user_id)?;
                rows.sort_by_key(|r| (!r.primary, !r.verified, r.id));
                Ok(rows.into_iter().next())
            }
        })
        .await?)
}

/// Queues `message` to `to` and wakes the sender.
pub async fn send_mail(deps: &Deps<'_>, to: &str, message: Message) -> Result<(), Error> {
    let (config, now, to_owned) = (deps.config.clone(), deps.now_ms, to.to_string());
    deps.db
        .transaction(move |conn| email::enqueue(conn, &config, &to_owned, &message, now))
        .await?;
    deps.mailer.wake();
    Ok(())
}

/// The link mail for an address row.
fn link_message(deps: &Deps<'_>, address: &EmailAddress) -> Message {
    let key = codes::sign(
        deps.secret(),
        KEY_SALT,
        &address.id.to_string(),
        deps.now_secs(),
    );
    let url = FrontendLinks::new(&deps.config.headless.frontend_urls).email_verification(&key);
    Message::EmailVerificationLink {
        url,
        email: address.email.clone(),
    }
}

fn already_exists_message(deps: &Deps<'_>, email: &str) -> Message {
    Message::AccountAlreadyExists {
        email: email.to_string(),
        password_reset_url: Some(
            FrontendLinks::new(&deps.config.headless.frontend_urls).password_reset(),
        ),
    }
}

/// Sends a verification link for `address`, unless `confirm_email` is
/// exhausted (links stay valid, so a skipped mail loses nothing).
pub async fn send_link(deps: &Deps<'_>, address: &EmailAddress) -> Result<bool, Error> {
    let key = address.email.to_lowercase();
    if !deps
        .consume("confirm_email", None, Some(&key))
        .await?
        .is_allowed()
    {
        return Ok(false);
    }
    send_mail(deps, &address.email, link_message(deps, address)).await?;
    Ok(true)
}

/// Stops `login` at the `verify_email` stage (the answer is then the
/// session's 401 with the stage pending): mails the code or link (or,
/// for a taken address at signup, the "account already exists" mail) and
/// leaves the stage pending. By code, an exhausted `confirm_email` is a 429.
pub async fn stage_login(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    login: StagedLogin,
) -> Result<(), Error> {
    let (user_id, email) = match &login.user {
        Some(user) => {
            let address = address_for_login(deps, user.id, login.email.as_deref()).await?;
            let email = address
                .as_ref()
                .map(|a| a.email.clone())
                .or(login.email.clone())
                .unwrap_or_default();
            if !by_code(deps.config) {
                if let Some(address) = address.filter(|a| !a.verified) {
                    send_link(deps, &address).await?;
                }
            }
            (Some(user.id), email)
        }
        None => {
            let email = login.email.clone().unwrap_or_default();
            if !by_code(deps.config) && !email.is_empty() {
                let key = email.to_lowercase();
                if deps
                    .consume("confirm_email", None, Some(&key))
                    .await?
                    .is_allowed()
                {
                    send_mail(deps, &email, already_exists_message(deps, &email)).await?;
                }
            }
            (None, email)
        }
    };
    let code = if by_code(deps.config) && !email.is_empty() {
        let code = codes::generate_user_code();
        deps.consume_or_429("confirm_email", None, Some(&email.to_lowercase()))
            .await?;
        let message = match user_id {
            Some(_) => Message::EmailVerificationCode {
                code: code.clone(),
                email: email.clone(),
            },
            None => already_exists_message(deps, &email),
        };
        send_mail(deps, &email, message).await?;
        Some(CodeState {
            code_hash: codes::hash_code(deps.secret(), &code),
            sent_at: deps.now_ms,
            failed_attempts: 0,
            resend_count: 0,
        })
    } else {
        None
    };
    session.set_pending(Some(Pending::VerifyEmail {
        user_id,
        email,
        started_at: deps.now_ms,
        code,
        record: login.record,
    }));
    Ok(())
}

/// The verification stage pending in this session, if it is live.
fn live_stage(deps: &Deps<'_>, session: &LiveSession) -> Option<Pending> {
    session
        .data
        .live_pending(deps.config, deps.now_ms)
        .filter(|p| matches!(p, Pending::VerifyEmail { .. }))
        .cloned()
}

/// What a valid key refers to.
struct Verification {
    /// The address row; `None` when the code names an address the user no
    /// longer has a row for (it is added when confirmed).
    address: Option<EmailAddress>,
    email: String,
    user: User,
}

/// What the key is checked against.
enum Process {
    /// Verification by code: the stage's code.
    Code(Pending),
    /// Verification by link: any signed key.
    Link,
}

fn incorrect_code() -> Error {
    Error::Invalid(vec![FieldError::new(
        "incorrect_code",
        Some("key"),
        "The code is not correct.",
    )])
}

fn invalid_key() -> Error {
    Error::Invalid(vec![FieldError::new(
        "invalid_or_expired_key",
        Some("key"),
        "The key is not valid, or has expired.",
    )])
}

/// allauth's `VerifyEmailView.handle`: which process the call works on,
/// or 409. An expired code ends the stage.
fn resume(deps: &Deps<'_>, session: &mut LiveSession) -> Result<(Option<Pending>, Process), Error> {
    let stage = live_stage(deps, session);
    if !by_code(deps.config) {
        return Ok((stage, Process::Link));
    }
    let Some(stage) = stage else {
        return Err(Error::Conflict);
    };
    let Pending::VerifyEmail {
        code: Some(code), ..
    } = &stage
    else {
        return Err(Error::Conflict);
    };
    let timeout_ms = i64::try_from(deps.config.account.email_verification_by_code_timeout)
        .unwrap_or(i64::MAX / 2000)
        .saturating_mul(1000);
    if deps.now_ms.saturating_sub(code.sent_at) > timeout_ms {
        session.set_pending(None);
        return Err(Error::Conflict);
    }
    Ok((Some(stage.clone()), Process::Code(stage)))
}

/// Counts a wrong code; the last allowed one ends the stage.
fn record_invalid_attempt(deps: &Deps<'_>, session: &mut LiveSession, mut stage: Pending) {
    if let Pending::VerifyEmail {
        code: Some(code), ..
    } = &mut stage
    {
        code.failed_attempts += 1;
        if code.failed_attempts >= deps.config.account.email_verification_by_code_max_attempts {
            session.set_pending(None);
        } else {
            session.set_pending(Some(stage));
        }
    }
}

/// allauth's `VerifyEmailInput.clean_key`.
async fn check_key(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    process: &Process,
    key: &str,
) -> Result<Verification, Error> {
    if key.trim().is_empty() {
        if let Process::Code(stage) = process {
            record_invalid_attempt(deps, session, stage.clone());
        }
        return Err(Error::Invalid(vec![accounts::required("key")]));
    }
    let verification = match process {
        Process::Code(stage) => {
            let Pending::VerifyEmail {
                user_id,
                email,
                code: Some(code),
                ..
            } = stage
            else {
                return Err(Error::Conflict);
            };
            let matches = codes::verify_code_hash(deps.secret(), &code.code_hash, key);
            let found = match (matches, *user_id) {
                (true, Some(user_id)) => {
                    let folded = email_addresses::fold_email(email);
                    deps.db
                        .run(move |conn| {
                            let Some(user) = users::by_id(conn, user_id)? else {
                                return Ok(None);
                            };
                            let address =
                                email_addresses::for_user_by_email_lower(conn, user_id, &folded)?;
                            Ok(Some((user, address)))
                        })
                        .await?
                }
                _ => None,
            };
            let Some((user, address)) = found else {
                record_invalid_attempt(deps, session, stage.clone());
                return Err(incorrect_code());
            };
            Verification {
                email: address
                    .as_ref()
                    .map_or_else(|| email.clone(), |a| a.email.clone()),
                address,
                user,
            }
        }
        Process::Link => {
            let max_age = i64::from(deps.config.account.email_confirmation_expire_days) * 86_400;
            let Ok(id) = codes::unsign(
                deps.secret(),
                KEY_SALT,
                key.trim(),
                max_age,
                deps.now_secs(),
            ) else {
                return Err(invalid_key());
            };
            let Ok(id) = id.parse::<i64>() else {
                return Err(invalid_key());
            };
            let found = deps
                .db
                .run(move |conn| {
                    let Some(address) = email_addresses::by_id(conn, id)? else {
                        return Ok(None);
                    };
                    if address.verified {
                        return Ok(None);
                    }
                    Ok(users::by_id(conn, address.user_id)?.map(|u| (u, address)))
                })
                .await?;
            let Some((user, address)) = found else {
                return Err(invalid_key());
            };
            Verification {
                email: address.email.clone(),
                address: Some(address),
                user,
            }
        }
    };
    // allauth's `can_set_verified`: nobody else has it verified.
    let verified = verification.address.as_ref().is_some_and(|a| a.verified);
    if !verified && deps.config.account.unique_email {
        let (folded, user_id) = (
            email_addresses::fold_email(&verification.email),
            verification.user.id,
        );
        let owner = deps
            .db
            .run(move |conn| email_addresses::verified_by_email_lower(conn, &folded))
            .await?;
        if owner.is_some_and(|o| o.user_id != user_id) {
            return Err(Error::Invalid(vec![accounts::email_taken("key")]));
        }
    }
    Ok(verification)
}

/// `GET auth/email/verify`: what the key verifies, and whether verifying
/// completes a login pending here.
pub async fn view(deps: &Deps<'_>, session: &mut LiveSession, key: &str) -> Result<Value, Error> {
    let (stage, process) = resume(deps, session)?;
    let verification = check_key(deps, session, &process, key).await?;
    let user = verification.user.clone();
    let view = deps
        .db
        .run(move |conn| accounts::view_of(conn, &user))
        .await?;
    Ok(json!({
        "status": 200,
        "data": {"email": verification.email, "user": view.to_json()},
        // A login or signup waits on this verification (not a logged-in
        // user verifying an address they added).
        "meta": {"is_authenticating": stage.is_some() && session.user.is_none()},
    }))
}

/// Marks the address verified, and primary when the user has none (or,
/// with `change_email`, primary in place of every other address).
async fn mark_verified(deps: &Deps<'_>, verification: &Verification) -> Result<(), Error> {
    let (user_id, email) = (verification.user.id, verification.email.clone());
    let address_id = verification.address.as_ref().map(|a| a.id);
    let change_email = deps.config.account.change_email;
    let result = deps
        .db
        .transaction(move |conn| {
            let id = match address_id {
                Some(id) => {
                    email_addresses::mark_verified(conn, id)?;
                    id
                }
                None => {
                    email_addresses::insert(
                        conn,
                        &NewEmailAddress::new(user_id, &email, true, false),
                    )?
                    .id
                }
            };
            let has_primary = email_addresses::primary_for_user(conn, user_id)?.is_some();
            if change_email || !has_primary {
                email_addresses::set_primary(conn, user_id, id)?;
            }
            if change_email {
                for other in email_addresses::for_user(conn, user_id)? {
                    if other.id != id {
                        email_addresses::delete(conn, user_id, other.id)?;
                    }
                }
            }
            Ok(())
        })
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_unique_violation() => {
            Err(Error::Invalid(vec![accounts::email_taken("key")]))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST auth/email/verify`: verifies; completes the pending login when
/// allauth would (`login_on_verification`), else ends the stage.
pub async fn confirm(deps: &Deps<'_>, session: &mut LiveSession, key: &str) -> Result<(), Error> {
    let (stage, process) = resume(deps, session)?;
    let verification = check_key(deps, session, &process, key).await?;
    mark_verified(deps, &verification).await?;
    let Some(Pending::VerifyEmail {
        user_id, record, ..
    }) = stage
    else {
        return Ok(());
    };
    let login_allowed = deps.config.account.login_on_email_confirmation || by_code(deps.config);
    if !login_allowed || session.is_authenticated() || user_id != Some(verification.user.id) {
        session.set_pending(None);
        return Ok(());
    }
    let (user_id, now) = (verification.user.id, deps.now_ms);
    let user = deps
        .db
        .run(move |conn| {
            let Some(user) = users::by_id(conn, user_id)? else {
                return Ok(None);
            };
            users::set_last_login(conn, user_id, now)?;
            Ok(Some(accounts::view_of(conn, &user)?))
        })
        .await?;
    match user {
        Some(view) => session.login(view, record),
        None => session.set_pending(None),
    }
    Ok(())
}

/// `POST auth/email/verify/resend`: a new code for the pending stage.
pub async fn resend(deps: &Deps<'_>, session: &mut LiveSession) -> Result<(), Error> {
    if !by_code(deps.config) {
        return Err(Error::Conflict);
    }
    let (_, process) = resume(deps, session)?;
    let Process::Code(mut stage) = process else {
        return Err(Error::Conflict);
    };
    let Pending::VerifyEmail {
        user_id,
        email,
        code: Some(code_state),
        ..
    } = &mut stage
    else {
        return Err(Error::Conflict);
    };
    if code_state.resend_count >= deps.config.account.email_verification_max_resend_count {
        return Err(Error::Conflict);
    }
    let code = codes::generate_user_code();
    deps.consume_or_429("confirm_email", None, Some(&email.to_lowercase()))
        .await?;
    // A resend never repeats the enumeration mails.
    if user_id.is_some() {
        let message = Message::EmailVerificationCode {
            code: code.clone(),
            email: email.clone(),
        };
        send_mail(deps, email, message).await?;
    }
    code_state.code_hash = codes::hash_code(deps.secret(), &code);
    code_state.resend_count += 1;
    session.set_pending(Some(stage));
    Ok(())
}
