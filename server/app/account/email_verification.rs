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

use crate::app::account::accounts::{self, Deps};
use crate::app::security::codes;
use crate::app::security::ratelimit::Consumed;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::{
    check_code, CodeCheck, CodeLimits, CodeSlot, CodeStage, LiveSession, PendingLogin, SessionData,
    Stage, Step, UserView,
};
use crate::app::{Error, FieldError};
use crate::config::{Config, EmailVerification};
use crate::db::email_addresses::{self, EmailAddress, NewEmailAddress};
use crate::db::users::{self, User};
use crate::email::{self, FrontendLinks, Message};
use crate::webhooks::{self, Event};
use serde_json::json;

/// Salt of the signed link keys.
const KEY_SALT: &str = "email-verification";

/// The verification rule of a login: `socialaccount.email_verification`
/// (by default the account's) for a login through a provider.
pub fn verification_for(config: &Config, social: bool) -> EmailVerification {
    if social {
        config
            .socialaccount
            .email_verification
            .unwrap_or(config.account.email_verification)
    } else {
        config.account.email_verification
    }
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

/// The pipeline's `verify_email` step: under mandatory verification, a
/// login without a verified address (or a decoy) waits in the
/// `verify_email` stage. Starting it mails the code or link (or, for a
/// taken address at signup, the "account already exists" mail). By code,
/// an exhausted `confirm_email` is a 429.
pub async fn stage_for(deps: &Deps<'_>, attempt: &Attempt) -> Result<Option<Stage>, Error> {
    if verification_for(deps.config, attempt.social) != EmailVerification::Mandatory {
        return Ok(None);
    }
    let email = match &attempt.user {
        Some(user) => {
            if has_verified_email(deps, user.id, attempt.email.as_deref()).await? {
                return Ok(None);
            }
            let address = address_for_login(deps, user.id, attempt.email.as_deref()).await?;
            let email = address
                .as_ref()
                .map(|a| a.email.clone())
                .or(attempt.email.clone())
                .unwrap_or_default();
            if !by_code(deps.config) {
                if let Some(address) = address.filter(|a| !a.verified) {
                    send_link(deps, &address).await?;
                }
            }
            email
        }
        None => {
            let email = attempt.email.clone().unwrap_or_default();
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
            email
        }
    };
    let code = if by_code(deps.config) && !email.is_empty() {
        deps.consume_or_429("confirm_email", None, Some(&email.to_lowercase()))
            .await?;
        let (stage, message) = match &attempt.user {
            Some(_) => {
                let (stage, code) = CodeStage::new(deps.secret(), deps.now_ms);
                let message = Message::EmailVerificationCode {
                    code,
                    email: email.clone(),
                };
                (stage, message)
            }
            None => (
                CodeStage::decoy(deps.now_ms),
                already_exists_message(deps, &email),
            ),
        };
        send_mail(deps, &email, message).await?;
        Some(stage)
    } else {
        None
    };
    Ok(Some(Stage::VerifyEmail { email, code }))
}

/// The pending verification of the session: the login waiting in
/// `verify_email`, or an address a logged-in user added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Login,
    Added,
}

impl Pending {
    fn slot(self) -> CodeSlot {
        match self {
            Pending::Login => CodeSlot::LoginStage,
            Pending::Added => CodeSlot::EmailVerification,
        }
    }

    /// Which one `data` has, live.
    fn of(config: &Config, data: &SessionData, now_ms: i64) -> Option<Pending> {
        let login = data
            .live_login(config, now_ms)
            .is_some_and(|l| matches!(l.stage, Stage::VerifyEmail { .. }));
        if login {
            Some(Pending::Login)
        } else if data.processes.email_verification.is_some() {
            Some(Pending::Added)
        } else {
            None
        }
    }

    /// The user and address it verifies.
    fn target(self, data: &SessionData) -> Option<(Option<i64>, String)> {
        match self {
            Pending::Login => data.login.as_ref().map(|l| match &l.stage {
                Stage::VerifyEmail { email, .. } => (l.user_id, email.clone()),
                _ => (l.user_id, l.email.clone().unwrap_or_default()),
            }),
            Pending::Added => data
                .processes
                .email_verification
                .as_ref()
                .map(|p| (Some(p.user_id), p.email.clone())),
        }
    }
}

/// What a valid key refers to.
struct Verification {
    /// The address row; `None` when the code names an address the user no
    /// longer has a row for (it is added when confirmed).
    address: Option<EmailAddress>,
    email: String,
    user: User,
    /// The key is a link key: it is good only while the address is unverified.
    by_link: bool,
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

/// What a code check claimed from the session.
enum Claimed {
    /// Nothing (a view): the user and address the right code verifies.
    Nothing(Option<i64>, String),
    /// The login waiting in `verify_email`.
    Login(PendingLogin),
    /// The added address's process.
    Added(Option<i64>, String),
}

/// Checks a code against the pending verification and counts a wrong (or
/// missing) one, in one compare-and-set; with `claim`, a right code takes
/// the pending verification out of the session in the same write, so it
/// serves once. 409 when nothing is pending (or it lapsed, or was used up).
async fn check_code_key(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    key: &str,
    claim: bool,
) -> Result<Claimed, Error> {
    let limits = CodeLimits::email_verification(deps.config);
    let (config, secret, now) = (deps.config.clone(), deps.secret().to_owned(), deps.now_ms);
    let given = key.trim().to_owned();
    let outcome = deps
        .sessions()
        .update(session, move |data| {
            let Some(pending) = Pending::of(&config, data, now) else {
                return Err(None);
            };
            let target = pending.target(data);
            match check_code(data, pending.slot(), limits, &secret, &given, now) {
                CodeCheck::Gone => Err(None),
                CodeCheck::Wrong { .. } => Err(Some(())),
                CodeCheck::Right => {
                    let (user_id, email) = target.unwrap_or((None, String::new()));
                    Ok(match (claim, pending) {
                        (false, _) => Claimed::Nothing(user_id, email),
                        (true, Pending::Login) => match data.login.take() {
                            Some(login) => Claimed::Login(login),
                            None => Claimed::Nothing(user_id, email),
                        },
                        (true, Pending::Added) => {
                            data.processes.email_verification = None;
                            Claimed::Added(user_id, email)
                        }
                    })
                }
            }
        })
        .await?;
    match outcome {
        Ok(claimed) => Ok(claimed),
        Err(None) => Err(Error::Conflict),
        Err(Some(())) if key.trim().is_empty() => {
            Err(Error::Invalid(vec![accounts::required("key")]))
        }
        Err(Some(())) => Err(incorrect_code()),
    }
}

/// The user and address row a right code names.
async fn code_target(
    deps: &Deps<'_>,
    user_id: Option<i64>,
    email: String,
) -> Result<Option<Verification>, Error> {
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    let folded = email_addresses::fold_email(&email);
    let found = deps
        .db
        .run(move |conn| {
            let Some(user) = users::by_id(conn, user_id)? else {
                return Ok(None);
            };
            let address = email_addresses::for_user_by_email_lower(conn, user_id, &folded)?;
            Ok(Some((user, address)))
        })
        .await?;
    Ok(found.map(|(user, address)| Verification {
        email: address.as_ref().map_or(email, |a| a.email.clone()),
        address,
        user,
        by_link: false,
    }))
}

/// A link key: the unverified address row it was signed for.
async fn check_link_key(deps: &Deps<'_>, key: &str) -> Result<Verification, Error> {
    if key.trim().is_empty() {
        return Err(Error::Invalid(vec![accounts::required("key")]));
    }
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
    Ok(Verification {
        email: address.email.clone(),
        address: Some(address),
        user,
        by_link: true,
    })
}

/// allauth's `can_set_verified`: nobody else has the address verified.
async fn check_unclaimed(deps: &Deps<'_>, verification: &Verification) -> Result<(), Error> {
    let verified = verification.address.as_ref().is_some_and(|a| a.verified);
    if verified || !deps.config.account.unique_email {
        return Ok(());
    }
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
    Ok(())
}

/// `GET auth/email/verify`: what the key verifies, and whether verifying
/// completes a login pending here. A wrong or missing code counts as an
/// attempt, as in allauth.
pub async fn view(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    key: &str,
) -> Result<VerificationInfo, Error> {
    let pending = Pending::of(deps.config, &session.data, deps.now_ms);
    let verification = if by_code(deps.config) {
        let Claimed::Nothing(user_id, email) = check_code_key(deps, session, key, false).await?
        else {
            return Err(Error::Conflict);
        };
        code_target(deps, user_id, email)
            .await?
            .ok_or_else(incorrect_code)?
    } else {
        check_link_key(deps, key).await?
    };
    check_unclaimed(deps, &verification).await?;
    let user = verification.user.clone();
    let view = deps
        .db
        .run(move |conn| accounts::view_of(conn, &user))
        .await?;
    Ok(VerificationInfo {
        email: verification.email,
        user: view,
        // A login or signup waits on this verification (not a logged-in
        // user verifying an address they added).
        is_authenticating: pending == Some(Pending::Login) && session.user.is_none(),
    })
}

/// What `GET auth/email/verify` answers.
#[derive(Debug, Clone)]
pub struct VerificationInfo {
    pub email: String,
    pub user: UserView,
    pub is_authenticating: bool,
}

/// Marks the address verified, and primary when the user has none (or,
/// with `change_email`, primary in place of every other address). A link
/// key whose address got verified meanwhile is no longer valid.
async fn mark_verified(deps: &Deps<'_>, verification: &Verification) -> Result<(), Error> {
    let (user_id, email) = (verification.user.id, verification.email.clone());
    let address_id = verification.address.as_ref().map(|a| a.id);
    let by_link = verification.by_link;
    let change_email = deps.config.account.change_email;
    let (config, now, verified_email) =
        (deps.config.clone(), deps.now_ms, verification.email.clone());
    let result = deps
        .db
        .transaction(move |conn| {
            let event = Event::new("email.verified", user_id, json!({"email": verified_email}));
            webhooks::emit(conn, &config, event, now)?;
            let id = match address_id {
                Some(id) => {
                    let marked = email_addresses::mark_verified_if_unverified(conn, id)?;
                    if by_link && !marked {
                        return Ok(false);
                    }
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
            Ok(true)
        })
        .await;
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(invalid_key()),
        Err(e) if e.is_unique_violation() => {
            Err(Error::Invalid(vec![accounts::email_taken("key")]))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST auth/email/verify`: verifies; completes the pending login when
/// allauth would (`login_on_email_confirmation`, always by code), else ends
/// the login in progress.
pub async fn confirm(deps: &Deps<'_>, session: &mut LiveSession, key: &str) -> Result<(), Error> {
    if by_code(deps.config) {
        let (verification, login) = match check_code_key(deps, session, key, true).await? {
            Claimed::Login(login) => {
                let email = match &login.stage {
                    Stage::VerifyEmail { email, .. } => email.clone(),
                    _ => login.email.clone().unwrap_or_default(),
                };
                (code_target(deps, login.user_id, email).await?, Some(login))
            }
            Claimed::Added(user_id, email) | Claimed::Nothing(user_id, email) => {
                (code_target(deps, user_id, email).await?, None)
            }
        };
        // A right code of a decoy cannot happen; an account gone meanwhile
        // ends the flow.
        let verification = verification.ok_or(Error::Conflict)?;
        check_unclaimed(deps, &verification).await?;
        mark_verified(deps, &verification).await?;
        return match login {
            Some(login) if !session.is_authenticated() => {
                let attempt = Attempt::resume(deps, login).await?;
                pipeline::advance(deps, session, attempt, Step::VerifyEmail).await
            }
            _ => Ok(()),
        };
    }
    let verification = check_link_key(deps, key).await?;
    check_unclaimed(deps, &verification).await?;
    mark_verified(deps, &verification).await?;
    let login_allowed = deps.config.account.login_on_email_confirmation;
    let user_id = verification.user.id;
    let claimed = deps
        .sessions()
        .update(session, move |data| {
            let waiting = matches!(
                data.login.as_ref().map(|l| &l.stage),
                Some(Stage::VerifyEmail { .. })
            );
            if !waiting {
                return None;
            }
            let login = data.login.take()?;
            (login_allowed && login.user_id == Some(user_id)).then_some(login)
        })
        .await?;
    match claimed {
        Some(login) if !session.is_authenticated() && now_live(deps, &login) => {
            let attempt = Attempt::resume(deps, login).await?;
            pipeline::advance(deps, session, attempt, Step::VerifyEmail).await
        }
        _ => Ok(()),
    }
}

/// Whether a claimed login was still within `login_timeout`.
fn now_live(deps: &Deps<'_>, login: &PendingLogin) -> bool {
    let data = SessionData {
        login: Some(login.clone()),
        ..Default::default()
    };
    data.live_login(deps.config, deps.now_ms).is_some()
}

/// `POST auth/email/verify/resend`: a new code for the pending verification.
pub async fn resend(deps: &Deps<'_>, session: &mut LiveSession) -> Result<(), Error> {
    if !by_code(deps.config) {
        return Err(Error::Conflict);
    }
    let Some(pending) = Pending::of(deps.config, &session.data, deps.now_ms) else {
        return Err(Error::Conflict);
    };
    let limits = CodeLimits::email_verification(deps.config);
    let Some((user_id, email)) = pending.target(&session.data) else {
        return Err(Error::Conflict);
    };
    {
        let slot_live = pending
            .slot()
            .get_mut(&mut session.data.clone())
            .is_some_and(|c| {
                !c.expired(limits, deps.now_ms) && c.resend_count < limits.max_resends
            });
        if !slot_live {
            return Err(Error::Conflict);
        }
    }
    deps.consume_or_429("confirm_email", None, Some(&email.to_lowercase()))
        .await?;
    let (secret, now) = (deps.secret().to_owned(), deps.now_ms);
    let code = deps
        .sessions()
        .update(session, move |data| {
            let stage = pending.slot().get_mut(data)?;
            if stage.expired(limits, now) {
                return None;
            }
            stage.resend(&secret, limits)
        })
        .await?;
    let Some(code) = code else {
        return Err(Error::Conflict);
    };
    // A resend never repeats the enumeration mails.
    if user_id.is_some() {
        let message = Message::EmailVerificationCode {
            code,
            email: email.clone(),
        };
        send_mail(deps, &email, message).await?;
    }
    Ok(())
}
