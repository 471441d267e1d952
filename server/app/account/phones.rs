//! Phone numbers: allauth 65's phone support, with the storage and the SMS
//! sending that allauth leaves to the project's adapter done here.
//!
//! - A user has at most one number (`db::phone_numbers`), in E.164 form,
//!   and a number belongs to one user.
//! - The pipeline's `verify_phone` step ([`stage_for`]): a login or signup
//!   whose number is not verified waits in [`Stage::VerifyPhone`] until the
//!   code sent by SMS is typed back ([`confirm`]); [`resend`] sends a new
//!   one within `phone_verification_supports_resend`, and while a signup
//!   waits there [`change`] may replace the number
//!   (`phone_verification_supports_change`).
//! - A signed-in user changes their number with [`change`]: the code goes
//!   to the new number and the old one stays until [`confirm`]
//!   (`PhoneChangeProcess` in the session).
//!
//! Codes are checked and counted inside one compare-and-set of the session
//! (`session::check_code`), so concurrent attempts never exceed
//! `phone_verification_max_attempts`, and a right code serves once. Unlike
//! allauth, whose signup stage keeps accepting codes after the last
//! attempt, the attempt that reaches the limit ends the stage here too.

use crate::app::account::accounts::{self, Deps};
use crate::app::mfa::manage::Managed;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::reauthentication;
use crate::app::sessions::session::{
    check_code, count_failed_attempt, CodeCheck, CodeLimits, CodeSlot, CodeStage, LiveSession,
    PhoneChangeProcess, SessionData, Stage, Step, UserView,
};
use crate::app::{Error, FieldError};
use crate::config::{Config, SignupFieldName};
use crate::db::phone_numbers;
use crate::db::users;
use crate::sms::SmsMessage;

/// allauth's `invalid_phone`: not a number in international form (or, with
/// `phone_default_region`, in that region's national form).
pub fn invalid_phone(param: &str) -> FieldError {
    FieldError::new(
        "invalid_phone",
        Some(param),
        "Enter a phone number including country code (e.g. +1 for the US).",
    )
}

pub fn phone_taken(param: &str) -> FieldError {
    FieldError::new(
        "phone_taken",
        Some(param),
        "A user is already registered with this phone number.",
    )
}

fn incorrect_code() -> Error {
    Error::Invalid(vec![FieldError::new(
        "incorrect_code",
        Some("code"),
        "Incorrect code.",
    )])
}

/// allauth's `PhoneField`: spaces and dashes dropped, then a valid number
/// (libphonenumber's metadata) in E.164 form. Without a `+`, the number is
/// read in `phone_default_region`; with none set it is refused, as allauth's
/// headless API refuses it.
pub fn normalize(config: &Config, value: &str) -> Option<String> {
    let compact: String = value
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    let region = match compact.strip_prefix('+') {
        Some(rest) => {
            let e164 = rest.len() >= 6
                && rest.len() <= 15
                && rest.bytes().all(|b| b.is_ascii_digit())
                && !rest.starts_with('0');
            if !e164 {
                return None;
            }
            None
        }
        None => {
            let region = config.account.phone_default_region.as_deref()?;
            let national = !compact.is_empty()
                && compact
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '(' | ')' | '.' | '/'));
            if !national {
                return None;
            }
            Some(region.parse::<phonenumber::country::Id>().ok()?)
        }
    };
    let number = phonenumber::parse(region, &compact).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    crate::sms::messages::is_e164(&e164).then_some(e164)
}

/// A phone input field: `Ok(None)` when blank, the E.164 number, or
/// `invalid_phone`.
pub fn clean_field(
    config: &Config,
    value: Option<&str>,
    param: &str,
) -> Result<Option<String>, FieldError> {
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Ok(None);
    }
    normalize(config, value)
        .map(Some)
        .ok_or_else(|| invalid_phone(param))
}

/// The user whose number `phone` is, verified or not (allauth's
/// `get_user_by_phone`).
pub async fn owner(deps: &Deps<'_>, phone: &str) -> Result<Option<i64>, Error> {
    let phone = phone.to_owned();
    Ok(deps
        .db
        .run(move |conn| phone_numbers::owner(conn, &phone))
        .await?
        .map(|p| p.user_id))
}

/// The active user whose number `phone` is (who may log in with it).
pub async fn active_owner(deps: &Deps<'_>, phone: &str) -> Result<Option<i64>, Error> {
    let phone = phone.to_owned();
    Ok(deps
        .db
        .run(move |conn| {
            let Some(number) = phone_numbers::owner(conn, &phone)? else {
                return Ok(None);
            };
            Ok(users::by_id(conn, number.user_id)?.filter(|u| u.is_active))
        })
        .await?
        .map(|u| u.id))
}

/// The user's number and whether it is verified (allauth's `get_phone`).
pub async fn of_user(deps: &Deps<'_>, user_id: i64) -> Result<Option<(String, bool)>, Error> {
    Ok(deps
        .db
        .run(move |conn| phone_numbers::for_user(conn, user_id))
        .await?
        .map(|p| (p.phone, p.verified)))
}

/// Queues `message` to `to` and wakes the SMS sender.
pub async fn send(deps: &Deps<'_>, to: &str, message: SmsMessage) -> Result<(), Error> {
    let (config, to, now) = (deps.config.clone(), to.to_owned(), deps.now_ms);
    deps.db
        .transaction(move |conn| crate::sms::enqueue(conn, &config, &to, &message, now))
        .await?;
    deps.texter.wake();
    Ok(())
}

/// The enumeration notices ("no account uses this number", "this number
/// already has an account") go out only with `sms.enumeration_notices`:
/// allauth's adapter sends neither by default, and every text costs money.
pub async fn send_notice(deps: &Deps<'_>, to: &str, message: SmsMessage) -> Result<(), Error> {
    if deps.config.sms.enumeration_notices {
        send(deps, to, message).await?;
    }
    Ok(())
}

/// What the `verify_phone` step decides for a login.
#[derive(Debug)]
pub enum PhoneStep {
    /// Nothing to verify.
    Pass,
    /// Wait for the code.
    Wait(Stage),
    /// A required number is missing: the login ends unfinished (allauth
    /// aborts the stage and the client is back at the login).
    Abort,
}

/// The pipeline's `verify_phone` step (allauth's `PhoneVerificationStage`):
/// with `phone` among the signup fields, a user whose number is not
/// verified (and `phone_verification_enabled`), or a decoy signup that
/// named a number, waits for the code. Starting it counts `verify_phone`
/// for the number (429 when exhausted) and texts the code, or, for a
/// decoy, the "account already exists" notice.
pub async fn stage_for(deps: &Deps<'_>, attempt: &Attempt) -> Result<PhoneStep, Error> {
    let account = &deps.config.account;
    let Some(field) = account.signup_field(SignupFieldName::Phone) else {
        return Ok(PhoneStep::Pass);
    };
    let phone = match &attempt.user {
        Some(user) => match of_user(deps, user.id).await? {
            None if field.required => return Ok(PhoneStep::Abort),
            None => return Ok(PhoneStep::Pass),
            Some((_, true)) => return Ok(PhoneStep::Pass),
            Some(_) if !account.phone_verification_enabled => return Ok(PhoneStep::Pass),
            Some((phone, false)) => phone,
        },
        None => match &attempt.phone {
            Some(phone) => phone.clone(),
            None => return Ok(PhoneStep::Pass),
        },
    };
    deps.consume_or_429("verify_phone", None, Some(&phone))
        .await?;
    let code = match &attempt.user {
        Some(_) => {
            let (stage, code) = CodeStage::new(deps.secret(), deps.now_ms);
            send(deps, &phone, SmsMessage::VerificationCode { code }).await?;
            stage
        }
        None => {
            let notice = if attempt.signup {
                SmsMessage::AccountAlreadyExists
            } else {
                SmsMessage::UnknownAccount
            };
            send_notice(deps, &phone, notice).await?;
            CodeStage::decoy(deps.now_ms)
        }
    };
    Ok(PhoneStep::Wait(Stage::VerifyPhone {
        phone,
        code,
        change_count: 0,
        account_already_exists: false,
    }))
}

/// Which phone verification a session has pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// The login (or signup) waiting in `verify_phone`.
    Login,
    /// A signed-in user's change of number.
    Change,
}

impl Pending {
    fn of(config: &Config, data: &SessionData, now_ms: i64) -> Option<Pending> {
        let limits = CodeLimits::phone_verification(config);
        let waiting = data
            .login_waiting_in(config, now_ms, |s| matches!(s, Stage::VerifyPhone { .. }))
            .is_some_and(|l| match &l.stage {
                Stage::VerifyPhone { code, .. } => !code.expired(limits, now_ms),
                _ => false,
            });
        if waiting {
            return Some(Pending::Login);
        }
        data.processes
            .phone_change
            .as_ref()
            .filter(|p| !p.code.expired(limits, now_ms))
            .map(|_| Pending::Change)
    }

    fn slot(self) -> CodeSlot {
        match self {
            Pending::Login => CodeSlot::LoginStage,
            Pending::Change => CodeSlot::PhoneChange,
        }
    }

    /// The user and the number it verifies.
    fn target(self, data: &SessionData) -> Option<(Option<i64>, String)> {
        match self {
            Pending::Login => data.login.as_ref().and_then(|l| match &l.stage {
                Stage::VerifyPhone { phone, .. } => Some((l.user_id, phone.clone())),
                _ => None,
            }),
            Pending::Change => data
                .processes
                .phone_change
                .as_ref()
                .map(|p| (Some(p.user_id), p.phone.clone())),
        }
    }
}

/// What a right code claimed from the session.
enum Claimed {
    Login(crate::app::sessions::session::PendingLogin),
    Change { user_id: i64, phone: String },
}

/// The outcome of one code check inside the compare-and-set.
enum Checked {
    Gone,
    Wrong,
    Taken,
    Right(Claimed),
}

/// `POST auth/phone/verify`: the code of the pending `verify_phone` stage
/// (then the login goes on) or of the signed-in user's change of number.
/// A right code for a number someone else took meanwhile is `phone_taken`
/// and counts as a wrong attempt, as in allauth.
pub async fn confirm(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    code: Result<String, Error>,
) -> Result<(), Error> {
    let authenticated = session.is_authenticated();
    let Some(pending) = Pending::of(deps.config, &session.data, deps.now_ms) else {
        return Err(Error::Conflict);
    };
    if pending == Pending::Change && !authenticated {
        return Err(Error::Conflict);
    }
    let Some((user_id, phone)) = pending.target(&session.data) else {
        return Err(Error::Conflict);
    };
    // Whether someone else has the number: read before the check, decided
    // for good by the unique index when the number is stored.
    let taken = owner(deps, &phone)
        .await?
        .is_some_and(|o| Some(o) != user_id);
    let limits = CodeLimits::phone_verification(deps.config);
    let (config, secret, now) = (deps.config.clone(), deps.secret().to_owned(), deps.now_ms);
    let given = code
        .as_ref()
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    let checked = deps
        .sessions()
        .update(session, move |data| {
            if Pending::of(&config, data, now) != Some(pending) {
                return Checked::Gone;
            }
            let slot = pending.slot();
            match check_code(data, slot, limits, &secret, &given, now) {
                CodeCheck::Gone => Checked::Gone,
                CodeCheck::Wrong { .. } => Checked::Wrong,
                CodeCheck::Right if taken => {
                    count_failed_attempt(data, slot, limits);
                    Checked::Taken
                }
                CodeCheck::Right => match pending {
                    Pending::Login => match data.login.take() {
                        Some(login) => Checked::Right(Claimed::Login(login)),
                        None => Checked::Gone,
                    },
                    Pending::Change => match data.processes.phone_change.take() {
                        Some(p) => Checked::Right(Claimed::Change {
                            user_id: p.user_id,
                            phone: p.phone,
                        }),
                        None => Checked::Gone,
                    },
                },
            }
        })
        .await?;
    let claimed = match checked {
        Checked::Gone => return Err(Error::Conflict),
        Checked::Wrong => return Err(code.err().unwrap_or_else(incorrect_code)),
        Checked::Taken => return Err(Error::Invalid(vec![phone_taken("code")])),
        Checked::Right(claimed) => claimed,
    };
    match claimed {
        Claimed::Login(login) => {
            let Some(user_id) = login.user_id else {
                return Err(Error::Conflict);
            };
            store_verified(deps, user_id, &phone).await?;
            if session.is_authenticated() {
                return Ok(());
            }
            let attempt = Attempt::resume(deps, login).await?;
            pipeline::advance(deps, session, attempt, Step::VerifyPhone).await
        }
        Claimed::Change { user_id, phone } => store_verified(deps, user_id, &phone).await,
    }
}

/// allauth's `set_phone_verified`: the user's number is now `phone`,
/// verified (a change replaces the old number only here).
async fn store_verified(deps: &Deps<'_>, user_id: i64, phone: &str) -> Result<(), Error> {
    let (phone, now) = (phone.to_owned(), deps.now_ms);
    let config = deps.config.clone();
    let stored = deps
        .db
        .transaction(move |conn| {
            phone_numbers::set(conn, user_id, &phone, true, now)?;
            let event = crate::webhooks::Event::new(
                "phone.verified",
                user_id,
                serde_json::json!({ "phone": phone }),
            );
            crate::webhooks::emit(conn, &config, event, now)
        })
        .await;
    match stored {
        Ok(()) => Ok(()),
        Err(e) if e.is_unique_violation() => Err(Error::Invalid(vec![phone_taken("code")])),
        Err(e) => Err(e.into()),
    }
}

/// `POST auth/phone/verify/resend`: a new code for the `verify_phone`
/// stage, within `phone_verification_supports_resend` (409 beyond it) and
/// the number's `verify_phone` limit (429). A decoy, or a number changed to
/// one that has an account, gets no text, as in allauth.
pub async fn resend(deps: &Deps<'_>, session: &mut LiveSession) -> Result<(), Error> {
    let limits = CodeLimits::phone_verification(deps.config);
    if Pending::of(deps.config, &session.data, deps.now_ms) != Some(Pending::Login) {
        return Err(Error::Conflict);
    }
    let phone = match session.data.login.as_ref().map(|l| &l.stage) {
        Some(Stage::VerifyPhone { phone, code, .. }) if code.resend_count < limits.max_resends => {
            phone.clone()
        }
        _ => return Err(Error::Conflict),
    };
    deps.consume_or_429("verify_phone", None, Some(&phone))
        .await?;
    let (config, secret, now) = (deps.config.clone(), deps.secret().to_owned(), deps.now_ms);
    let resent = deps
        .sessions()
        .update(session, move |data| {
            if Pending::of(&config, data, now) != Some(Pending::Login) {
                return None;
            }
            let login = data.login.as_mut()?;
            let user_id = login.user_id;
            let Stage::VerifyPhone {
                phone,
                code,
                account_already_exists,
                ..
            } = &mut login.stage
            else {
                return None;
            };
            let new_code = code.resend(&secret, limits)?;
            let deliver = user_id.is_some() && !*account_already_exists;
            Some((phone.clone(), deliver.then_some(new_code)))
        })
        .await?;
    match resent {
        None => Err(Error::Conflict),
        Some((phone, Some(code))) => {
            send(deps, &phone, SmsMessage::VerificationCode { code }).await
        }
        Some((_, None)) => Ok(()),
    }
}

/// `GET account/phone`: the signed-in user's number, if any.
pub async fn view(deps: &Deps<'_>, user_id: i64) -> Result<Vec<(String, bool)>, Error> {
    Ok(of_user(deps, user_id).await?.into_iter().collect())
}

/// Who `POST account/phone` acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changer {
    /// The signed-in user.
    SignedIn(i64),
    /// The new user of a signup waiting in `verify_phone`.
    Stage(i64),
}

/// Whom `POST account/phone` may act for: the signed-in user, or the user
/// of a signup waiting in `verify_phone` while its change quota lasts and
/// before the account was ever logged in (allauth's `can_change`); `None`
/// is allauth's 409.
pub async fn changer(deps: &Deps<'_>, session: &LiveSession) -> Result<Option<Changer>, Error> {
    if let Some(user) = &session.user {
        return Ok(Some(Changer::SignedIn(user.id)));
    }
    if Pending::of(deps.config, &session.data, deps.now_ms) != Some(Pending::Login) {
        return Ok(None);
    }
    let max_changes = deps.config.account.phone_verification_max_change_count();
    let Some(login) = session.data.login.as_ref() else {
        return Ok(None);
    };
    let (Some(user_id), Stage::VerifyPhone { change_count, .. }) = (login.user_id, &login.stage)
    else {
        return Ok(None);
    };
    if *change_count >= max_changes {
        return Ok(None);
    }
    let user = deps.db.run(move |conn| users::by_id(conn, user_id)).await?;
    Ok(user
        .filter(|u| u.last_login.is_none())
        .map(|u| Changer::Stage(u.id)))
}

/// `POST account/phone` (the `change_phone` limit was taken by the
/// caller): validates the number and sends a code to it. For the signed-in
/// user the number waits in the session until [`confirm`]; for a signup
/// waiting in `verify_phone` it replaces the unverified number at once
/// (unless another account has it, which only that number learns by text).
/// Returns the new number.
pub async fn change(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: Option<&UserView>,
    changer: Changer,
    value: Option<&str>,
) -> Result<Managed<String>, Error> {
    let Some(phone) =
        clean_field(deps.config, value, "phone").map_err(|e| Error::Invalid(vec![e]))?
    else {
        return Err(Error::Invalid(vec![accounts::required("phone")]));
    };
    let user_id = match changer {
        Changer::SignedIn(id) | Changer::Stage(id) => id,
    };
    let current = of_user(deps, user_id).await?.map(|(p, _)| p);
    if current.as_deref() == Some(phone.as_str()) {
        return Err(Error::Invalid(vec![FieldError::new(
            "same_as_current",
            Some("phone"),
            "The new value must be different from the current one.",
        )]));
    }
    let taken = owner(deps, &phone).await?.is_some_and(|o| o != user_id);
    if taken && !deps.config.account.prevent_enumeration.is_enabled() {
        return Err(Error::Invalid(vec![phone_taken("phone")]));
    }
    match changer {
        Changer::SignedIn(_) => {
            if deps.config.account.reauthentication_required {
                if let Some(user) = user {
                    if let Some(flows) = reauthentication::required(deps, session, user).await? {
                        return Ok(Managed::ReauthenticationRequired(flows));
                    }
                }
            }
            deps.consume_or_429("verify_phone", None, Some(&phone))
                .await?;
            let (state, code) = CodeStage::new(deps.secret(), deps.now_ms);
            let process = PhoneChangeProcess {
                user_id,
                phone: phone.clone(),
                code: state,
            };
            deps.sessions()
                .update(session, move |data| {
                    data.processes.phone_change = Some(process.clone());
                })
                .await?;
            send(deps, &phone, SmsMessage::VerificationCode { code }).await?;
        }
        Changer::Stage(_) => {
            // Counted before the number is stored (allauth stores it first,
            // then fails with a 500 when the limit is hit).
            deps.consume_or_429("verify_phone", None, Some(&phone))
                .await?;
            let mut taken = taken;
            if !taken {
                let (number, now) = (phone.clone(), deps.now_ms);
                let stored = deps
                    .db
                    .transaction(move |conn| phone_numbers::set(conn, user_id, &number, false, now))
                    .await;
                match stored {
                    Ok(()) => {}
                    // Someone took the number meanwhile.
                    Err(e) if e.is_unique_violation() => {
                        if !deps.config.account.prevent_enumeration.is_enabled() {
                            return Err(Error::Invalid(vec![phone_taken("phone")]));
                        }
                        taken = true;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let (secret, now, number) = (deps.secret().to_owned(), deps.now_ms, phone.clone());
            let config = deps.config.clone();
            let code = deps
                .sessions()
                .update(session, move |data| {
                    if Pending::of(&config, data, now) != Some(Pending::Login) {
                        return None;
                    }
                    let login = data.login.as_mut()?;
                    let Stage::VerifyPhone {
                        phone,
                        code,
                        change_count,
                        account_already_exists,
                    } = &mut login.stage
                    else {
                        return None;
                    };
                    let (fresh, text) = CodeStage::new(&secret, now);
                    code.code_hash = fresh.code_hash;
                    *phone = number.clone();
                    *change_count = change_count.saturating_add(1);
                    *account_already_exists = taken;
                    Some(text)
                })
                .await?;
            let Some(code) = code else {
                return Err(Error::Conflict);
            };
            if taken {
                send_notice(deps, &phone, SmsMessage::AccountAlreadyExists).await?;
            } else {
                send(deps, &phone, SmsMessage::VerificationCode { code }).await?;
            }
        }
    }
    Ok(Managed::Done(phone))
}
