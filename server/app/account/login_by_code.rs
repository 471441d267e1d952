//! allauth's login by code: a code mailed to the address asked for (or
//! texted to the phone number), typed back to log in. Enumeration-safe: an unknown address gets the same answer
//! (and, when `email_unknown_accounts`, an "unknown account" mail) and a
//! stage whose code matches nothing.
//!
//! The stage is [`Stage::LoginByCode`] of the pending login; only the HMAC of the code is kept.
//! `code.sent_at` is when the flow began (allauth's `at`): a resend does not
//! extend the code's lifetime (`login_by_code_timeout`). Each wrong (or
//! missing) code counts; the attempt that reaches `login_by_code_max_attempts`
//! ends the flow, so the next call answers 409.

use crate::app::account::accounts::{self, Deps};
use crate::app::account::{emails, phones};
use crate::app::security::ratelimit::Consumed;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::{
    check_code, AuthRecord, CodeCheck, CodeLimits, CodeSlot, CodeStage, LiveSession, PendingLogin,
    Stage, Step,
};
use crate::app::{Error, FieldError};
use crate::config::{Config, LoginMethod};
use crate::db::{email_addresses, phone_numbers};
use crate::email::{enqueue, FrontendLinks, Message};
use crate::sms::SmsMessage;

/// The code has not been accepted.
fn incorrect_code() -> Error {
    Error::Invalid(vec![FieldError::new(
        "incorrect_code",
        Some("code"),
        "Incorrect code.",
    )])
}

/// Where a login code goes: an address, or (by SMS) a phone number.
#[derive(Debug, Clone)]
enum Target {
    Email(String),
    /// E.164.
    Phone(String),
}

/// allauth's `RequestLoginCodeForm`: `email`, and `phone` when phone is a
/// login method (then `email` is optional, and `phone` is required when
/// email is not a login method); one of them, not both.
fn target(config: &Config, email: Option<&str>, phone: Option<&str>) -> Result<Target, Error> {
    let account = &config.account;
    let has_phone = account.has_login_method(LoginMethod::Phone);
    let has_email = account.has_login_method(LoginMethod::Email);
    let blank = |v: Option<&str>| v.map(str::trim).unwrap_or("").is_empty();
    // Without phone login, the form is the address alone (as before).
    if !has_phone {
        return emails::clean_email_field(config, email, "email").map(Target::Email);
    }
    let email = if has_email && !blank(email) {
        Some(emails::clean_email_field(config, email, "email")?)
    } else {
        None
    };
    let phone = match phones::clean_field(config, phone, "phone") {
        Ok(phone) => phone,
        Err(e) => return Err(Error::Invalid(vec![e])),
    };
    match (email, phone) {
        (Some(_), Some(_)) => Err(Error::Invalid(vec![FieldError::new(
            "select_only_one",
            None,
            "Please select only one of the options.",
        )])),
        (Some(email), None) => Ok(Target::Email(email)),
        (None, Some(phone)) => Ok(Target::Phone(phone)),
        (None, None) if has_email => Err(Error::Invalid(vec![accounts::required("email")])),
        (None, None) => Err(Error::Invalid(vec![accounts::required("phone")])),
    }
}

/// `POST auth/code/request`: validates the address (or number), counts
/// `request_login_code` (per ip and per address or number), sends a code
/// (or the unknown-account notice) and stages `login_by_code`. The caller
/// answers with the session: 401 pending, or 200 when someone is already
/// logged in (allauth still sends and stages then).
pub async fn request(
    env: &Deps<'_>,
    session: &mut LiveSession,
    email: Option<String>,
    phone: Option<String>,
) -> Result<(), Error> {
    let config = env.config;
    let target = target(config, email.as_deref(), phone.as_deref())?;
    let (key, param) = match &target {
        Target::Email(email) => (email_addresses::fold_email(email), "email"),
        Target::Phone(phone) => (phone.clone(), "phone"),
    };
    let user_id = match &target {
        Target::Email(_) => {
            let lookup = key.clone();
            env.db
                .run(move |conn| emails::user_for_login_email(conn, &lookup))
                .await?
        }
        Target::Phone(phone) => phones::active_owner(env, phone).await?,
    };
    if user_id.is_none() && !config.account.prevent_enumeration.is_enabled() {
        return Err(Error::Invalid(vec![match &target {
            Target::Email(_) => FieldError::new(
                "unknown_email",
                Some("email"),
                "The email address is not assigned to any user account.",
            ),
            Target::Phone(_) => FieldError::new(
                "unknown_phone",
                Some("phone"),
                "The phone number is not assigned to any user account.",
            ),
        }]));
    }
    if let Consumed::Refused = env.consume("request_login_code", None, Some(&key)).await? {
        return Err(Error::Invalid(vec![FieldError::new(
            "too_many_login_attempts",
            Some(param),
            "Too many failed login attempts. Try again later.",
        )]));
    }

    let (state, code) = match user_id {
        Some(_) => CodeStage::new(env.secret(), env.now_ms),
        None => (CodeStage::decoy(env.now_ms), String::new()),
    };
    let (email, phone) = match target {
        Target::Email(email) => {
            let message = match user_id {
                Some(_) => Some(Message::LoginCode {
                    code,
                    email: email.clone(),
                }),
                None if config.account.email_unknown_accounts => Some(Message::UnknownAccount {
                    email: email.clone(),
                    signup_url: config
                        .account
                        .signup_open
                        .then(|| FrontendLinks::new(&config.headless.frontend_urls).signup()),
                }),
                None => None,
            };
            send(env, &email, message).await?;
            (Some(email), None)
        }
        Target::Phone(phone) => {
            match user_id {
                Some(_) => phones::send(env, &phone, SmsMessage::LoginCode { code }).await?,
                None => phones::send_notice(env, &phone, SmsMessage::UnknownAccount).await?,
            }
            (None, Some(phone))
        }
    };
    session.begin_login(PendingLogin {
        user_id,
        email,
        phone,
        signup: false,
        passkey: false,
        social: false,
        started_at: env.now_ms,
        records: Vec::new(),
        stage: Stage::LoginByCode { code: state },
    });
    Ok(())
}

/// `POST auth/code/confirm`. `code` is the parsed input (its 400 counts as
/// a wrong attempt, as in allauth, but only once a live stage exists).
///
/// The code is checked and counted inside one compare-and-set of the
/// session, and a right one claims the stage in the same write: of any
/// number of concurrent attempts at most `login_by_code_max_attempts` are
/// counted, and one right code logs in once.
pub async fn confirm(
    env: &Deps<'_>,
    session: &mut LiveSession,
    code: Result<String, Error>,
) -> Result<(), Error> {
    if session.is_authenticated() {
        return Err(Error::Conflict);
    }
    if !matches!(
        session
            .data
            .live_login(env.config, env.now_ms)
            .map(|l| &l.stage),
        Some(Stage::LoginByCode { .. })
    ) {
        return Err(Error::Conflict);
    }
    let limits = CodeLimits::login_by_code(env.config);
    let (secret, now) = (env.secret().to_owned(), env.now_ms);
    let given = code.as_ref().map(String::clone).unwrap_or_default();
    let config = env.config.clone();
    let (check, claimed) = env
        .sessions()
        .update(session, move |data| {
            let live = data
                .live_login(&config, now)
                .is_some_and(|l| matches!(l.stage, Stage::LoginByCode { .. }));
            if !live {
                return (CodeCheck::Gone, None);
            }
            match check_code(data, CodeSlot::LoginStage, limits, &secret, &given, now) {
                CodeCheck::Right => (CodeCheck::Right, data.login.take()),
                other => (other, None),
            }
        })
        .await?;
    let pending = match (check, claimed) {
        (CodeCheck::Right, Some(pending)) if pending.user_id.is_some() => pending,
        (CodeCheck::Gone, _) => return Err(Error::Conflict),
        _ => return Err(code.err().unwrap_or_else(incorrect_code)),
    };
    let (email, phone) = (pending.email.clone(), pending.phone.clone());
    if let Some(user_id) = pending.user_id {
        // Typing the code proves the address or number: verify it
        // (allauth's `verify_email_indirectly`, making the address primary
        // when there is none, and `verify_phone_indirectly`).
        let folded = email.as_deref().map(email_addresses::fold_email);
        let (number, now) = (phone.clone(), env.now_ms);
        env.db
            .transaction(move |conn| {
                if let Some(folded) = &folded {
                    emails::verify_owned_address(conn, user_id, folded)?;
                }
                if let Some(number) = &number {
                    phone_numbers::mark_verified(conn, user_id, number, now)?;
                }
                Ok(())
            })
            .await?;
    }
    let attempt = Attempt::resume(env, pending).await?;
    if attempt.user.is_none() {
        // The account went away or was deactivated meanwhile.
        return Err(Error::Conflict);
    }
    let attempt = attempt.with_record(AuthRecord::Code {
        at: AuthRecord::seconds(now),
        email,
        phone,
    });
    pipeline::advance(env, session, attempt, Step::Authenticate).await
}

/// `POST auth/code/resend`: a new code for the staged address, within
/// `login_by_code_max_resend_count` (allauth's `LOGIN_BY_CODE_SUPPORTS_RESEND`;
/// 0 by default, so 409). Like allauth, no rate limit beyond that quota, and
/// no mail to an unknown address on resend.
pub async fn resend(env: &Deps<'_>, session: &mut LiveSession) -> Result<(), Error> {
    let limits = CodeLimits::login_by_code(env.config);
    let (secret, now, config) = (env.secret().to_owned(), env.now_ms, env.config.clone());
    let resent = env
        .sessions()
        .update(session, move |data| {
            let live = data
                .live_login(&config, now)
                .is_some_and(|l| matches!(l.stage, Stage::LoginByCode { .. }));
            let login = data.login.as_mut().filter(|_| live)?;
            let Stage::LoginByCode { code } = &mut login.stage else {
                return None;
            };
            if code.expired(limits, now) {
                data.login = None;
                return None;
            }
            let new_code = code.resend(&secret, limits)?;
            Some((
                login.user_id,
                login.email.clone(),
                login.phone.clone(),
                new_code,
            ))
        })
        .await?;
    let Some((user_id, email, phone, code)) = resent else {
        return Err(Error::Conflict);
    };
    if user_id.is_none() {
        return Ok(());
    }
    match (email, phone) {
        (_, Some(phone)) => phones::send(env, &phone, SmsMessage::LoginCode { code }).await,
        (email, None) => {
            let email = email.unwrap_or_default();
            let message = Message::LoginCode {
                code,
                email: email.clone(),
            };
            send(env, &email, Some(message)).await
        }
    }
}

async fn send(env: &Deps<'_>, to: &str, message: Option<Message>) -> Result<(), Error> {
    let Some(message) = message else {
        return Ok(());
    };
    let config = env.config.clone();
    let to = to.to_owned();
    let now = env.now_ms;
    env.db
        .transaction(move |conn| enqueue(conn, &config, &to, &message, now))
        .await?;
    env.mailer.wake();
    Ok(())
}
