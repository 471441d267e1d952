//! allauth's login by code: a code mailed to the address asked for, typed
//! back to log in. Enumeration-safe: an unknown address gets the same answer
//! (and, when `email_unknown_accounts`, an "unknown account" mail) and a
//! stage whose code matches nothing.
//!
//! The stage is [`Pending::LoginByCode`]; only the HMAC of the code is kept.
//! `code.sent_at` is when the flow began (allauth's `at`): a resend does not
//! extend the code's lifetime (`login_by_code_timeout`). Each wrong (or
//! missing) code counts; the attempt that reaches `login_by_code_max_attempts`
//! ends the flow, so the next call answers 409.

use crate::app::accounts::Deps;
use crate::app::emails;
use crate::app::ratelimit::Consumed;
use crate::app::session::{self, CodeState, LiveSession, Pending, UserView};
use crate::app::{codes, Error, FieldError};
use crate::db::{email_addresses, users};
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

    let code = codes::generate_user_code();
    let secret = env.secret();
    let state = CodeState {
        code_hash: codes::hash_code(secret, &code),
        sent_at: env.now_ms,
        failed_attempts: 0,
        resend_count: 0,
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
    session.set_pending(Some(Pending::LoginByCode {
        user_id,
        email,
        started_at: env.now_ms,
        code: state,
    }));
    Ok(())
}

/// `POST auth/code/confirm`. `code` is the parsed input (its 400 counts as
/// a wrong attempt, as in allauth, but only once a live stage exists).
pub async fn confirm(
    env: &Deps<'_>,
    session: &mut LiveSession,
    code: Result<String, Error>,
) -> Result<(), Error> {
    let config = env.config;
    if session.is_authenticated() {
        return Err(Error::Conflict);
    }
    let Some((user_id, email, mut state)) = live_stage(env, session) else {
        return Err(Error::Conflict);
    };
    let secret = env.secret();
    let matched = match &code {
        Ok(given) => user_id.is_some() && codes::verify_code_hash(secret, &state.code_hash, given),
        Err(_) => false,
    };
    if !matched {
        state.failed_attempts = state.failed_attempts.saturating_add(1);
        if state.failed_attempts >= config.account.login_by_code_max_attempts {
            session.set_pending(None);
        } else {
            let started_at = session
                .data
                .pending
                .as_ref()
                .map_or(env.now_ms, Pending::started_at);
            session.set_pending(Some(Pending::LoginByCode {
                user_id,
                email,
                started_at,
                code: state,
            }));
        }
        return Err(code.err().unwrap_or_else(incorrect_code));
    }
    let Some(user_id) = user_id else {
        return Err(incorrect_code());
    };
    let now = env.now_ms;
    let folded = email_addresses::fold_email(&email);
    let row = env
        .db
        .transaction(move |conn| {
            let Some(user) = users::by_id(conn, user_id)?.filter(|u| u.is_active) else {
                return Ok(None);
            };
            // Typing the code proves the address: verify it (allauth's
            // `verify_email_indirectly`), making it primary when there is none.
            emails::verify_owned_address(conn, user_id, &folded)?;
            users::set_last_login(conn, user_id, now)?;
            let primary = email_addresses::primary_for_user(conn, user_id)?.map(|a| a.email);
            Ok(Some(UserView::from_row(&user, primary)))
        })
        .await?;
    let Some(user) = row else {
        // The account went away or was deactivated meanwhile.
        session.set_pending(None);
        return Err(Error::Conflict);
    };
    let record = session::record("code", now, &[("email", serde_json::json!(email))]);
    session.login(user, Some(record));
    Ok(())
}

/// `POST auth/code/resend`: a new code for the staged address, within
/// `login_by_code_max_resend_count` (allauth's `LOGIN_BY_CODE_SUPPORTS_RESEND`;
/// 0 by default, so 409). Like allauth, no rate limit beyond that quota, and
/// no mail to an unknown address on resend.
pub async fn resend(env: &Deps<'_>, session: &mut LiveSession) -> Result<(), Error> {
    let config = env.config;
    let Some((user_id, email, mut state)) = live_stage(env, session) else {
        return Err(Error::Conflict);
    };
    if state.resend_count >= config.account.login_by_code_max_resend_count {
        return Err(Error::Conflict);
    }
    let code = codes::generate_user_code();
    state.code_hash = codes::hash_code(env.secret(), &code);
    state.resend_count = state.resend_count.saturating_add(1);
    let message = user_id.map(|_| Message::LoginCode {
        code,
        email: email.clone(),
    });
    send(env, &email, message).await?;
    let started_at = session
        .data
        .pending
        .as_ref()
        .map_or(env.now_ms, Pending::started_at);
    session.set_pending(Some(Pending::LoginByCode {
        user_id,
        email,
        started_at,
        code: state,
    }));
    Ok(())
}

/// The live `login_by_code` stage, if any; a stage whose code has outlived
/// `login_by_code_timeout` is ended (allauth's `abort_if_invalid`).
fn live_stage(
    env: &Deps<'_>,
    session: &mut LiveSession,
) -> Option<(Option<i64>, String, CodeState)> {
    let stage = match session.data.live_pending(env.config, env.now_ms) {
        Some(Pending::LoginByCode {
            user_id,
            email,
            code,
            ..
        }) => Some((*user_id, email.clone(), code.clone())),
        _ => None,
    }?;
    let timeout_ms = i64::try_from(env.config.account.login_by_code_timeout)
        .unwrap_or(i64::MAX / 2000)
        .saturating_mul(1000);
    if env.now_ms.saturating_sub(stage.2.sent_at) > timeout_ms {
        session.set_pending(None);
        return None;
    }
    Some(stage)
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
