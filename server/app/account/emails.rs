//! A user's email addresses (allauth's `manage_email` flows): list, add (with
//! its verification mail), ask for a new verification, mark primary, remove
//! — plus two helpers the code flows share: the user an address logs in, and
//! indirect verification (a login code proves the address).
//!
//! With `email_verification_by_code_enabled`, adding an address does not
//! store it: as in allauth, the session keeps a pending verification
//! (an [`EmailVerificationProcess`] beside the login, on the logged-in session) and the
//! list shows it unverified until the code is confirmed (`auth/email/verify`)
//! — the row is created then. Otherwise the row is stored unverified and a
//! link is mailed (`email_verification::send_link`, whose keys
//! `auth/email/verify` accepts); with `change_email` the previous unconfirmed address is
//! replaced.

use crate::app::account::accounts::{self, Deps};
use crate::app::account::email_verification;
use crate::app::sessions::reauthentication;
use crate::app::sessions::session::{
    CodeLimits, CodeStage, EmailVerificationProcess, Flow, LiveSession, UserView,
};
use crate::app::{Error, FieldError};
use crate::config::{Config, LoginMethod};
use crate::db::email_addresses::{self, EmailAddress, NewEmailAddress};
use crate::db::{users, DbConnection, DbError};
use crate::email::{enqueue, Message};
use crate::webhooks::{self, Event};
use serde_json::json;

/// The outcome of a change to the addresses.
#[derive(Debug)]
pub enum Managed {
    /// The user's addresses after the change (`data` of the 200).
    List(Vec<AddressView>),
    /// `account.reauthentication_required` and the last login is too old:
    /// the flows to offer.
    ReauthenticationRequired(Vec<Flow>),
}

fn field_error(code: &'static str, param: &str, message: impl Into<String>) -> Error {
    Error::Invalid(vec![FieldError::new(code, Some(param), message)])
}

/// allauth's `EmailField`: Django's checks, then lowercased.
pub fn clean_email_field(
    config: &Config,
    value: Option<&str>,
    param: &str,
) -> Result<String, Error> {
    accounts::clean_email_field(config, value.unwrap_or_default(), param)
        .map(|e| e.to_lowercase())
        .map_err(|e| Error::Invalid(vec![e]))
}

/// The active user an address logs in (allauth's `filter_users_by_email`
/// with `prefer_verified`): a verified owner first, else any owner.
pub fn user_for_login_email(
    conn: &mut DbConnection,
    email_lower: &str,
) -> Result<Option<i64>, DbError> {
    let rows = email_addresses::by_email_lower(conn, email_lower)?;
    let verified: Vec<&EmailAddress> = rows.iter().filter(|r| r.verified).collect();
    let candidates: Vec<&EmailAddress> = if verified.is_empty() {
        rows.iter().collect()
    } else {
        verified
    };
    for row in candidates {
        if users::by_id(conn, row.user_id)?.is_some_and(|u| u.is_active) {
            return Ok(Some(row.user_id));
        }
    }
    Ok(None)
}

/// Marks the user's own row for this address verified, if it exists and no
/// other account has it verified; makes it primary when the user has none
/// (allauth's `verify_email_indirectly`). Returns whether it is verified.
pub fn verify_owned_address(
    conn: &mut DbConnection,
    user_id: i64,
    email_lower: &str,
) -> Result<bool, DbError> {
    let Some(row) = email_addresses::for_user_by_email_lower(conn, user_id, email_lower)? else {
        return Ok(false);
    };
    if row.verified {
        return Ok(true);
    }
    let taken = email_addresses::verified_by_email_lower(conn, email_lower)?.is_some();
    if taken {
        return Ok(false);
    }
    email_addresses::mark_verified(conn, row.id)?;
    if email_addresses::primary_for_user(conn, user_id)?.is_none() {
        email_addresses::set_primary(conn, user_id, row.id)?;
    }
    Ok(true)
}

/// The address added in this session and waiting for its code, if any.
fn pending_added(env: &Deps<'_>, session: &LiveSession, user_id: i64) -> Option<String> {
    if !env.config.account.email_verification_by_code_enabled {
        return None;
    }
    session
        .data
        .live_email_verification(env.config, env.now_ms)
        .filter(|p| p.user_id == user_id)
        .map(|p| p.email.clone())
}

/// One of the user's addresses as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressView {
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

/// `GET account/email` (and the answer of every change): the stored
/// addresses, then the one pending verification by code.
pub async fn list(
    env: &Deps<'_>,
    session: &LiveSession,
    user_id: i64,
) -> Result<Vec<AddressView>, Error> {
    let mut rows = env
        .db
        .run(move |conn| email_addresses::for_user(conn, user_id))
        .await?;
    // allauth's model has no ordering: rows come in the order they were added.
    rows.sort_by_key(|a| a.id);
    let mut out: Vec<AddressView> = rows
        .iter()
        .map(|a| AddressView {
            email: a.email.clone(),
            verified: a.verified,
            primary: a.primary,
        })
        .collect();
    if let Some(email) = pending_added(env, session, user_id) {
        if !rows
            .iter()
            .any(|a| a.email_lower == email_addresses::fold_email(&email))
        {
            out.push(AddressView {
                email,
                verified: false,
                primary: false,
            });
        }
    }
    Ok(out)
}

/// allauth's `manage_email` limit, counted before the input is looked at
/// (not for GET). `Err(TooManyRequests)` when exhausted.
pub async fn consume_manage_email(env: &Deps<'_>, user_id: i64) -> Result<(), Error> {
    env.consume_or_429("manage_email", Some(user_id), None)
        .await
        .map(drop)
}

/// allauth's `raise_if_reauthentication_required`, when the setting asks
/// for it: the flows to offer. A user with no way to reauthenticate passes.
async fn needs_reauthentication(
    env: &Deps<'_>,
    session: &LiveSession,
    user: &UserView,
) -> Result<Option<Vec<Flow>>, Error> {
    if !env.config.account.reauthentication_required {
        return Ok(None);
    }
    reauthentication::required(env, session, user).await
}

/// `POST account/email`.
pub async fn add(
    env: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
    email: &str,
) -> Result<Managed, Error> {
    let config = env.config;
    let email = clean_email_field(config, Some(email), "email")?;
    let folded = email_addresses::fold_email(&email);
    let user_id = user.id;
    let lookup = folded.clone();
    let (owners, count) = env
        .db
        .run(move |conn| {
            let owners: Vec<i64> = email_addresses::by_email_lower(conn, &lookup)?
                .into_iter()
                .map(|a| a.user_id)
                .collect();
            let count = email_addresses::for_user(conn, user_id)?.len();
            Ok((owners, count))
        })
        .await?;
    if owners.contains(&user_id) {
        return Err(duplicate_email());
    }
    if owners.iter().any(|&o| o != user_id)
        && config.account.unique_email
        && !config.account.prevent_enumeration.is_enabled()
    {
        return Err(Error::Invalid(vec![accounts::email_taken("email")]));
    }
    if let Some(max) = config.account.max_email_addresses.filter(|&m| m > 0) {
        if !config.account.change_email && count >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(field_error(
                "max_email_addresses",
                "email",
                format!("You cannot add more than {max} email addresses."),
            ));
        }
    }
    // allauth's mfa `on_add_email`: an unverified address would let its
    // holder lock the account's owner out of a protected account.
    if config.mfa.enabled
        && !config.mfa.allow_unverified_email
        && !config.account.email_verification_by_code_enabled
        && !crate::app::mfa::user_types(env, user_id).await?.is_empty()
    {
        return Err(field_error(
            "add_email_blocked",
            "email",
            "You cannot add an email address to an account protected by two-factor authentication.",
        ));
    }
    if let Some(flows) = needs_reauthentication(env, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }

    if config.account.email_verification_by_code_enabled {
        start_code_verification(env, session, user_id, &email).await?;
    } else {
        let change = config.account.change_email;
        let (cfg, now, added) = (config.clone(), env.now_ms, email.clone());
        let row = env
            .db
            .transaction(move |conn| {
                if change {
                    // Replace the address the user was changing to.
                    let pending = email_addresses::for_user(conn, user_id)?
                        .into_iter()
                        .filter(|a| !a.verified)
                        .max_by_key(|a| a.id);
                    if let Some(old) = pending {
                        email_addresses::delete(conn, user_id, old.id)?;
                    }
                }
                match email_addresses::insert(
                    conn,
                    &NewEmailAddress::new(user_id, &email, false, false),
                ) {
                    Ok(row) => {
                        let event = Event::new("email.added", user_id, json!({"email": added}));
                        webhooks::emit(conn, &cfg, event, now)?;
                        Ok(Some(row))
                    }
                    Err(e) if e.is_unique_violation() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let Some(row) = row else {
            return Err(duplicate_email());
        };
        // Over `confirm_email` the link mail is skipped (earlier links work).
        email_verification::send_link(env, &row).await?;
    }
    Ok(Managed::List(list(env, session, user_id).await?))
}

fn duplicate_email() -> Error {
    field_error(
        "duplicate_email",
        "email",
        "This email address is already associated with this account.",
    )
}

/// Starts (or restarts) the verification by code of `email` for the
/// logged-in user: a new code mailed, the pending stage replaced. Over the
/// `confirm_email` limit it fails with 429, as allauth does for codes.
async fn start_code_verification(
    env: &Deps<'_>,
    session: &mut LiveSession,
    user_id: i64,
    email: &str,
) -> Result<(), Error> {
    env.consume_or_429(
        "confirm_email",
        None,
        Some(&email_addresses::fold_email(email)),
    )
    .await?;
    let (state, code) = CodeStage::new(env.secret(), env.now_ms);
    send(
        env,
        email,
        Message::EmailVerificationCode {
            code,
            email: email.to_owned(),
        },
    )
    .await?;
    session.processes_mut().email_verification = Some(EmailVerificationProcess {
        user_id,
        email: email.to_owned(),
        code: state,
    });
    Ok(())
}

async fn send(env: &Deps<'_>, to: &str, message: Message) -> Result<(), Error> {
    let config = env.config.clone();
    let to = to.to_owned();
    let now = env.now_ms;
    env.db
        .transaction(move |conn| enqueue(conn, &config, &to, &message, now))
        .await?;
    env.mailer.wake();
    Ok(())
}

/// An address the inputs can select: a stored one of the user's, or the
/// one pending verification by code.
enum Selected {
    Stored(EmailAddress),
    Pending(String),
}

async fn select(
    env: &Deps<'_>,
    session: &LiveSession,
    user_id: i64,
    email: &str,
) -> Result<Selected, Error> {
    // Django's `CharField` + `validate_email`: trimmed, case kept.
    let email = accounts::clean_email_field(env.config, email, "email")
        .map_err(|e| Error::Invalid(vec![e]))?;
    let folded = email_addresses::fold_email(&email);
    let lookup = folded.clone();
    let row = env
        .db
        .run(move |conn| email_addresses::for_user_by_email_lower(conn, user_id, &lookup))
        .await?;
    if let Some(row) = row {
        return Ok(Selected::Stored(row));
    }
    match pending_added(env, session, user_id) {
        Some(pending) if email_addresses::fold_email(&pending) == folded => {
            Ok(Selected::Pending(pending))
        }
        _ => Err(field_error(
            "unknown_email",
            "email",
            "Unknown email address.",
        )),
    }
}

/// `PUT account/email`: mails a new verification for one of the user's
/// addresses. `Ok(false)` (403) when nothing was sent: the link mail was
/// over its limit, or the pending code may not be resent.
pub async fn request_verification(
    env: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
    email: &str,
) -> Result<bool, Error> {
    let selected = select(env, session, user.id, email).await?;
    let address = match selected {
        Selected::Pending(email) => return resend_pending(env, session, user.id, &email).await,
        Selected::Stored(address) => address,
    };
    if env.config.account.email_verification_by_code_enabled {
        start_code_verification(env, session, user.id, &address.email).await?;
        return Ok(true);
    }
    email_verification::send_link(env, &address).await
}

/// A new code for the address pending verification, within
/// `email_verification_max_resend_count` (else nothing is sent: 403).
async fn resend_pending(
    env: &Deps<'_>,
    session: &mut LiveSession,
    user_id: i64,
    email: &str,
) -> Result<bool, Error> {
    let limits = CodeLimits::email_verification(env.config);
    let resendable = session
        .data
        .processes
        .email_verification
        .as_ref()
        .is_some_and(|p| p.user_id == user_id && p.code.resend_count < limits.max_resends);
    if !resendable {
        return Ok(false);
    }
    env.consume_or_429(
        "confirm_email",
        None,
        Some(&email_addresses::fold_email(email)),
    )
    .await?;
    let (secret, now) = (env.secret().to_owned(), env.now_ms);
    let code = env
        .sessions()
        .update(session, move |data| {
            let process = data
                .processes
                .email_verification
                .as_mut()
                .filter(|p| p.user_id == user_id && !p.code.expired(limits, now))?;
            process.code.resend(&secret, limits)
        })
        .await?;
    let Some(code) = code else {
        return Ok(false);
    };
    send(
        env,
        email,
        Message::EmailVerificationCode {
            code,
            email: email.to_owned(),
        },
    )
    .await?;
    Ok(true)
}

/// `PATCH account/email`: makes a verified address primary (any address,
/// when the user has none verified); notifies the previous primary.
pub async fn mark_primary(
    env: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
    email: &str,
    primary: bool,
) -> Result<Managed, Error> {
    let user_id = user.id;
    let mut errors = Vec::new();
    let selected = match select(env, session, user_id, email).await {
        Ok(Selected::Stored(address)) => {
            let any_verified = env
                .db
                .run(move |conn| email_addresses::for_user(conn, user_id))
                .await?
                .iter()
                .any(|a| a.verified);
            if address.verified || !any_verified {
                Some(address)
            } else {
                errors.push(unverified_primary());
                None
            }
        }
        Ok(Selected::Pending(_)) => {
            errors.push(unverified_primary());
            None
        }
        Err(Error::Invalid(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(other) => return Err(other),
    };
    if !primary {
        errors.push(FieldError::new(
            "required",
            Some("primary"),
            "This field is required.",
        ));
    }
    let Some(address) = selected.filter(|_| errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    if let Some(flows) = needs_reauthentication(env, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let new_primary = address.email.clone();
    let cfg = env.config.clone();
    let now = env.now_ms;
    let notify = env.config.account.email_notifications;
    let origin = env.change_origin();
    let mailed = env
        .db
        .transaction(move |conn| {
            let previous = email_addresses::primary_for_user(conn, user_id)?;
            email_addresses::set_primary(conn, user_id, address.id)?;
            let event = Event::new(
                "email.primary_changed",
                user_id,
                json!({"email": address.email, "previous": previous.as_ref().map(|p| p.email.clone())}),
            );
            webhooks::emit(conn, &cfg, event, now)?;
            match previous {
                Some(from) if notify => {
                    let message = Message::EmailChanged {
                        from: from.email.clone(),
                        to: address.email.clone(),
                        origin,
                    };
                    enqueue(conn, &cfg, &from.email, &message, now)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await?;
    if mailed {
        env.mailer.wake();
    }
    if let Some(current) = session.user.as_mut() {
        current.email = Some(new_primary);
    }
    Ok(Managed::List(list(env, session, user_id).await?))
}

fn unverified_primary() -> FieldError {
    FieldError::new(
        "unverified_primary_email",
        Some("email"),
        "Your primary email address must be verified.",
    )
}

/// `DELETE account/email`: removes an address (never the primary while
/// others exist, nor the last one when login is by email only); a pending
/// verification by code is simply dropped. Notifies the primary address.
pub async fn remove(
    env: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
    email: &str,
) -> Result<Managed, Error> {
    let user_id = user.id;
    let selected = select(env, session, user_id, email).await?;
    let address = match selected {
        Selected::Pending(_) => {
            session.processes_mut().email_verification = None;
            return Ok(Managed::List(list(env, session, user_id).await?));
        }
        Selected::Stored(address) => address,
    };
    if address.primary {
        let others = env
            .db
            .run(move |conn| email_addresses::for_user(conn, user_id))
            .await?
            .len()
            > 1;
        let login_by_email_only = env.config.account.login_methods == [LoginMethod::Email];
        if others || login_by_email_only {
            return Err(field_error(
                "cannot_remove_primary_email",
                "email",
                "You cannot remove your primary email address.",
            ));
        }
    }
    if let Some(flows) = needs_reauthentication(env, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let cfg = env.config.clone();
    let now = env.now_ms;
    let notify = env.config.account.email_notifications;
    let origin = env.change_origin();
    let mailed = env
        .db
        .transaction(move |conn| {
            email_addresses::delete(conn, user_id, address.id)?;
            let event = Event::new("email.removed", user_id, json!({"email": address.email}));
            webhooks::emit(conn, &cfg, event, now)?;
            let primary = email_addresses::primary_for_user(conn, user_id)?;
            match primary {
                Some(to) if notify => {
                    let message = Message::EmailDeleted {
                        email: address.email.clone(),
                        origin,
                    };
                    enqueue(conn, &cfg, &to.email, &message, now)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await?;
    if mailed {
        env.mailer.wake();
    }
    Ok(Managed::List(list(env, session, user_id).await?))
}
