//! allauth's login by code: a code mailed to the address asked for, typed
//! back to log in. Enumeration-safe: an unknown address gets the same answer
//! (and, when `email_unknown_accounts`, an "unknown account" mail) and a
//! stage whose code matches nothing.
//!
//! The stage is [`Stage::LoginByCode`] of the pending login; only the HMAC of the code is kept.
//! `code.sent_at` is when the flow began (allauth's `at`): a resend does not
//! extend the code's lifetime (`login_by_code_timeout`). Each wrong (or
//! missing) code counts; the attempt that reaches `login_by_code_max_attempts`
//! ends the flow, so the next call answers 409.

use crate::app::account::accounts::Deps;
use crate::app::account::emails;
use crate::app::security::ratelimit::Consumed;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::{
    check_code, AuthRecord, CodeCheck, CodeLimits, CodeSlot, CodeStage, LiveSession, PendingLogin,
    Stage, Step,
};
use crate::app::{Error, FieldError};
use crate::db::email_addresses;
use crate::email::{enqueue, FrontendLinks, Message};

/// The code has not been accepted.
fn incorrect_code() -> Error {
    Error::Invalid(vec![FieldError::new(
        "incorrect_code",
        Some("code"),
        "Incorrect code.",
    )])
}

/// `POST auth/code/request`: validates the address, counts
/// `request_login_code` (per ip and per address), mails a code (or the
/// unknown-account mail) and stages `login_by_code`. The caller answers
/// with the session: 401 pending, or 200 when someone is already logged in
/// (allauth still mails and stages then).
pub async fn request(
    env: &Deps<'_>,
    session: &mut LiveSession,
    email: Option<String>,
) -> Result<(), Error> {
    let config = env.config;
    let email = emails::clean_email_field(config, email.as_deref(), "email")?;
    let folded = email_addresses::fold_email(&email);
    let lookup = folded.clone();
    let user_id = env
        .db
        .run(move |conn| emails::user_for_login_email(conn, &lookup))
        .await?;
    if user_id.is_none() && !config.account.prevent_enumeration.is_enabled() {
        return Err(Error::Invalid(vec![FieldError::new(
            "unknown_email",
            Some("email"),
            "The email address is not assigned to any user account.",
        )]));
    }
    if let Consumed::Refused = env
        .consume("request_login_code", None, Some(&folded))
        .await?
    {
        return Err(Error::Invalid(vec![FieldError::new(
            "too_many_login_attempts",
            Some("email"),
            "Too many failed login attempts. Try again later.",
        )]));
    }

    let (state, code) = match user_id {
        Some(_) => CodeStage::new(env.secret(), env.now_ms),
        None => (CodeStage::decoy(env.now_ms), String::new()),
    };
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
    session.begin_login(PendingLogin {
        user_id,
        email: Some(email),
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
    let email = pending.email.clone().unwrap_or_default();
    if let Some(user_id) = pending.user_id {
        // Typing the code proves the address: verify it (allauth's
        // `verify_email_indirectly`), making it primary when there is none.
        let folded = email_addresses::fold_email(&email);
        env.db
            .transaction(move |conn| emails::verify_owned_address(conn, user_id, &folded))
            .await?;
    }
    let attempt = Attempt::resume(env, pending).await?;
    if attempt.user.is_none() {
        // The account went away or was deactivated meanwhile.
        return Err(Error::Conflict);
    }
    let attempt = attempt.with_record(AuthRecord::Code {
        at: AuthRecord::seconds(now),
        email: Some(email),
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
                login.email.clone().unwrap_or_default(),
                new_code,
            ))
        })
        .await?;
    let Some((user_id, email, code)) = resent else {
        return Err(Error::Conflict);
    };
    let message = user_id.map(|_| Message::LoginCode {
        code,
        email: email.clone(),
    });
    send(env, &email, message).await
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
