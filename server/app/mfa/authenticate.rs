//! The second factor in use: the pipeline's `mfa_authenticate` and
//! `mfa_trust` steps, `auth/2fa/authenticate`, `auth/2fa/reauthenticate`
//! and `auth/2fa/trust`.
//!
//! A login reaches `mfa_authenticate` when the user has a TOTP or WebAuthn
//! authenticator, did not sign in with a passkey alone, and the browser is
//! not trusted. Each code typed counts against allauth's `login_failed`
//! limit under the key `mfa-auth-user-<id>` (taken before the code is
//! checked, given back when it is right), so that guessing is bounded per
//! account and per address. A right code is used up atomically (see
//! [`mfa::use_code`]) and recorded as `{"method": "mfa", "type", "id"}`.

use crate::app::account::accounts::Deps;
use crate::app::mfa::{self, manage, trust, webauthn};
use crate::app::security::ratelimit::{Consumed, Ticket};
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::{AuthRecord, LiveSession, PendingLogin, Stage, Step};
use crate::app::{Error, FieldError};
use crate::config::MfaType;
use crate::db::authenticators;

/// allauth's `incorrect_code`, on `param` (`code`, or a WebAuthn `credential`).
fn incorrect_code(param: &str) -> Error {
    Error::Invalid(vec![FieldError::new(
        "incorrect_code",
        Some(param),
        "Incorrect code.",
    )])
}

/// Takes a `login_failed` slot for a second factor of `user_id` (allauth's
/// `check_rate_limit`), or the 400 `too_many_login_attempts` on `param`.
async fn take_attempt(deps: &Deps<'_>, user_id: i64, param: &str) -> Result<Ticket, Error> {
    let key = format!("mfa-auth-user-{user_id}");
    match deps.consume("login_failed", None, Some(&key)).await? {
        Consumed::Allowed(ticket) => Ok(ticket),
        Consumed::Refused => Err(Error::Invalid(vec![FieldError::new(
            "too_many_login_attempts",
            Some(param),
            "Too many failed login attempts. Try again later.",
        )])),
    }
}

/// The pipeline's `mfa_authenticate` step: the stage to wait in, if any.
pub async fn stage_for(
    deps: &Deps<'_>,
    session: &LiveSession,
    attempt: &Attempt,
) -> Result<Option<Stage>, Error> {
    let Some(user) = attempt.user.as_ref().filter(|_| deps.config.mfa.enabled) else {
        return Ok(None);
    };
    let passwordless = attempt.records.iter().any(|r| {
        matches!(
            r,
            AuthRecord::Mfa {
                passwordless: true,
                ..
            }
        )
    });
    if passwordless {
        return Ok(None);
    }
    let user = user.clone();
    let user_id = user.id;
    let rows = deps
        .db
        .run(move |conn| authenticators::for_user(conn, user_id))
        .await?;
    let types = mfa::kinds(rows.iter().map(|r| r.type_.as_str()));
    if !types
        .iter()
        .any(|t| matches!(t, MfaType::Totp | MfaType::Webauthn))
    {
        return Ok(None);
    }
    if trust_enabled(deps) && session.trust.browser {
        let fingerprint = trust::fingerprint(deps.secret(), &user, &rows);
        let trusted = trust::decode(
            deps.secret(),
            session.trust.received.as_deref(),
            deps.config.mfa.trust_cookie_age,
            deps.now_secs(),
        );
        if trusted.iter().any(|(f, _)| *f == fingerprint) {
            return Ok(None);
        }
    }
    Ok(Some(Stage::MfaAuthenticate { types }))
}

/// allauth's `_TRUST_STAGE_ENABLED` (the login-by-code variant of trust is
/// not offered by this server).
fn trust_enabled(deps: &Deps<'_>) -> bool {
    deps.config.mfa.trust_enabled
}

/// The pipeline's `mfa_trust` step: a browser that has just given its
/// second factor is asked whether to trust it.
pub fn trust_stage_for(deps: &Deps<'_>, session: &LiveSession, attempt: &Attempt) -> Option<Stage> {
    let gave_factor = attempt.records.iter().any(|r| {
        matches!(
            r,
            AuthRecord::Mfa {
                reauthenticated: false,
                passwordless: false,
                ..
            }
        )
    });
    (trust_enabled(deps) && session.trust.browser && gave_factor).then_some(Stage::MfaTrust)
}

/// Checks `code` for `user_id`, counting the attempt: the authenticator it
/// used, or the 400.
async fn check(deps: &Deps<'_>, user_id: i64, code: &str) -> Result<mfa::Used, Error> {
    let ticket = take_attempt(deps, user_id, "code").await?;
    let Some(used) = mfa::use_code(deps, user_id, code).await? else {
        return Err(incorrect_code("code"));
    };
    deps.rate_limiter.release(ticket).await?;
    Ok(used)
}

/// Takes the pending login out of the session if it is live and waits in
/// a stage `is_stage` accepts: one compare-and-set, so it is claimed once.
pub(crate) async fn claim(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    is_stage: fn(&Stage) -> bool,
) -> Result<Option<PendingLogin>, Error> {
    let config = deps.config.clone();
    let now = deps.now_ms;
    deps.sessions()
        .update(session, move |data| {
            if data.login_waiting_in(&config, now, is_stage).is_some() {
                data.login.take()
            } else {
                None
            }
        })
        .await
}

/// `POST auth/2fa/authenticate`. `Ok(false)`: no `mfa_authenticate` stage
/// is pending (allauth's 401 with the anonymous flows).
pub async fn authenticate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    code: Result<String, Error>,
) -> Result<bool, Error> {
    let Some(Some(user_id)) = pending_mfa_user(deps, session) else {
        return Ok(false);
    };
    let code = code?;
    let used = check(deps, user_id, &code).await?;
    second_factor_given(deps, session, used).await
}

/// The second factor `used` was right: the stage is claimed (once: a
/// concurrent request with another right factor finds it gone) and the
/// login goes on. `Ok(false)`: the stage was gone.
async fn second_factor_given(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    used: mfa::Used,
) -> Result<bool, Error> {
    let now = deps.now_ms;
    let claimed = claim(deps, session, |stage| {
        matches!(stage, Stage::MfaAuthenticate { .. })
    })
    .await?;
    let Some(claimed) = claimed else {
        return Ok(false);
    };
    let attempt = Attempt::resume(deps, claimed).await?;
    if attempt.user.is_none() {
        return Err(Error::Conflict);
    }
    let attempt = attempt.with_record(AuthRecord::Mfa {
        at: AuthRecord::seconds(now),
        id: used.id,
        kind: used.kind,
        reauthenticated: false,
        passwordless: false,
    });
    pipeline::advance(deps, session, attempt, Step::MfaAuthenticate).await?;
    Ok(true)
}

/// `POST auth/2fa/reauthenticate` (the caller is logged in).
pub async fn reauthenticate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    code: String,
) -> Result<(), Error> {
    let Some(user_id) = session.user.as_ref().map(|u| u.id) else {
        return Ok(());
    };
    let used = check(deps, user_id, &code).await?;
    session.add_record(AuthRecord::Mfa {
        at: AuthRecord::seconds(deps.now_ms),
        id: used.id,
        kind: used.kind,
        reauthenticated: true,
        passwordless: false,
    });
    Ok(())
}

/// `POST auth/2fa/trust`. `Ok(false)`: no `mfa_trust` stage is pending.
pub async fn trust_browser(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    trust: bool,
) -> Result<bool, Error> {
    let claimed = claim(deps, session, |stage| matches!(stage, Stage::MfaTrust)).await?;
    let Some(claimed) = claimed else {
        return Ok(false);
    };
    let attempt = Attempt::resume(deps, claimed).await?;
    let Some(user) = attempt.user.clone() else {
        return Err(Error::Conflict);
    };
    if trust {
        let user_id = user.id;
        let rows = deps
            .db
            .run(move |conn| authenticators::for_user(conn, user_id))
            .await?;
        let fingerprint = trust::fingerprint(deps.secret(), &user, &rows);
        let mut entries = trust::decode(
            deps.secret(),
            session.trust.received.as_deref(),
            deps.config.mfa.trust_cookie_age,
            deps.now_secs(),
        );
        entries.retain(|(f, _)| *f != fingerprint);
        entries.push((fingerprint, deps.now_secs()));
        session.trust.issue = Some(trust::encode(deps.secret(), &entries, deps.now_secs()));
    }
    pipeline::advance(deps, session, attempt, Step::MfaTrust).await?;
    Ok(true)
}

/// The live login waiting for its second factor: its user, if any.
fn pending_mfa_user(deps: &Deps<'_>, session: &LiveSession) -> Option<Option<i64>> {
    session
        .data
        .login_waiting_in(deps.config, deps.now_ms, |stage| {
            matches!(stage, Stage::MfaAuthenticate { .. })
        })
        .map(|l| l.user_id)
}

/// Request options for `user_id`'s WebAuthn credentials (a decoy login
/// has none), kept in the session.
async fn options_for(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user_id: Option<i64>,
) -> Result<serde_json::Value, Error> {
    let rows = match user_id {
        Some(id) => {
            deps.db
                .run(move |conn| authenticators::for_user(conn, id))
                .await?
        }
        None => Vec::new(),
    };
    let (options, ceremony) =
        webauthn::begin_authentication(deps.config, user_id, webauthn::credentials(&rows))?;
    session.set_webauthn(Some(ceremony.to_value()));
    Ok(options)
}

/// `GET auth/webauthn/authenticate`: `None` without a pending
/// `mfa_authenticate` stage.
pub async fn webauthn_authenticate_options(
    deps: &Deps<'_>,
    session: &mut LiveSession,
) -> Result<Option<serde_json::Value>, Error> {
    let Some(user_id) = pending_mfa_user(deps, session) else {
        return Ok(None);
    };
    let user_id = user_id.unwrap_or(0);
    Ok(Some(options_for(deps, session, Some(user_id)).await?))
}

/// Checks a WebAuthn assertion of `user_id` against the session's
/// ceremony, counting it like a code; the authenticator it used.
async fn check_assertion(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user_id: i64,
    credential: &serde_json::Value,
) -> Result<mfa::Used, Error> {
    let assertion = webauthn::parse_assertion(credential)?;
    let ticket = take_attempt(deps, user_id, "credential").await?;
    let ceremony = manage::take_ceremony(deps, session).await?;
    let rows = deps
        .db
        .run(move |conn| authenticators::for_user(conn, user_id))
        .await?;
    let (row, data) =
        webauthn::complete_authentication(deps.config, ceremony, user_id, &rows, &assertion)?;
    // Keep the new counter; a concurrent change of the row wins.
    let text = serde_json::to_string(&data).unwrap_or_default();
    let (id, version, now) = (row.id, row.version, deps.now_ms);
    deps.db
        .run(move |conn| {
            if !authenticators::replace_data(conn, id, version, &text, Some(now))? {
                authenticators::record_use(conn, id, now)?;
            }
            Ok(())
        })
        .await?;
    deps.rate_limiter.release(ticket).await?;
    Ok(mfa::Used {
        id: row.id,
        kind: MfaType::Webauthn,
    })
}

/// `POST auth/webauthn/authenticate`. `Ok(false)`: no stage pending.
pub async fn webauthn_authenticate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    credential: Result<serde_json::Value, Error>,
) -> Result<bool, Error> {
    let Some(user_id) = pending_mfa_user(deps, session) else {
        return Ok(false);
    };
    let credential = credential?;
    let Some(user_id) = user_id else {
        return Err(incorrect_code("credential"));
    };
    let used = check_assertion(deps, session, user_id, &credential).await?;
    second_factor_given(deps, session, used).await
}

/// `GET auth/webauthn/reauthenticate` (the caller is logged in).
pub async fn webauthn_reauthenticate_options(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user_id: i64,
) -> Result<serde_json::Value, Error> {
    options_for(deps, session, Some(user_id)).await
}

/// `POST auth/webauthn/reauthenticate` (the caller is logged in).
pub async fn webauthn_reauthenticate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user_id: i64,
    credential: serde_json::Value,
) -> Result<(), Error> {
    let used = check_assertion(deps, session, user_id, &credential).await?;
    session.add_record(AuthRecord::Mfa {
        at: AuthRecord::seconds(deps.now_ms),
        id: used.id,
        kind: used.kind,
        reauthenticated: true,
        passwordless: false,
    });
    Ok(())
}

/// `GET auth/webauthn/login`: options for any of the browser's passkeys.
pub async fn webauthn_login_options(
    deps: &Deps<'_>,
    session: &mut LiveSession,
) -> Result<serde_json::Value, Error> {
    options_for(deps, session, None).await
}

/// `POST auth/webauthn/login`: the passkey names its user, who is logged
/// in without a password (and skips the second-factor step).
pub async fn webauthn_login(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    credential: serde_json::Value,
) -> Result<(), Error> {
    let assertion = webauthn::parse_assertion(&credential)?;
    let user_id = webauthn::asserted_user(&assertion)?;
    let user = deps
        .db
        .run(move |conn| crate::db::users::by_id(conn, user_id))
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| incorrect_code("credential"))?;
    let used = check_assertion(deps, session, user_id, &credential).await?;
    let record = AuthRecord::Mfa {
        at: AuthRecord::seconds(deps.now_ms),
        id: used.id,
        kind: used.kind,
        reauthenticated: false,
        passwordless: true,
    };
    let attempt = Attempt::new(deps, Some(user), None).with_record(record);
    pipeline::authenticated(deps, session, attempt).await
}
