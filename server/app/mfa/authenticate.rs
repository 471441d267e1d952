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
use crate::app::mfa::{self, trust};
use crate::app::security::ratelimit::Consumed;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::{AuthRecord, LiveSession, PendingLogin, Stage, Step};
use crate::app::{Error, FieldError};
use crate::config::MfaType;
use crate::db::authenticators;

fn incorrect_code() -> Error {
    Error::Invalid(vec![FieldError::new(
        "incorrect_code",
        Some("code"),
        "Incorrect code.",
    )])
}

fn too_many_attempts() -> Error {
    Error::Invalid(vec![FieldError::new(
        "too_many_login_attempts",
        Some("code"),
        "Too many failed login attempts. Try again later.",
    )])
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
    let mut types: Vec<MfaType> = rows.iter().filter_map(mfa::kind_of).collect();
    types.sort();
    types.dedup();
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
    let key = format!("mfa-auth-user-{user_id}");
    let ticket = match deps.consume("login_failed", None, Some(&key)).await? {
        Consumed::Allowed(ticket) => ticket,
        Consumed::Refused => return Err(too_many_attempts()),
    };
    let Some(used) = mfa::use_code(deps, user_id, code).await? else {
        return Err(incorrect_code());
    };
    deps.rate_limiter.release(ticket).await?;
    Ok(used)
}

/// Takes the pending login out of the session if it is live and waits in
/// a stage `is_stage` accepts: one compare-and-set, so it is claimed once.
async fn claim(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    is_stage: fn(&Stage) -> bool,
) -> Result<Option<PendingLogin>, Error> {
    let config = deps.config.clone();
    let now = deps.now_ms;
    deps.sessions()
        .update(session, move |data| {
            let live = data
                .live_login(&config, now)
                .is_some_and(|l| is_stage(&l.stage));
            if live {
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
    let pending = session
        .data
        .live_login(deps.config, deps.now_ms)
        .filter(|l| matches!(l.stage, Stage::MfaAuthenticate { .. }))
        .cloned();
    let Some(pending) = pending else {
        return Ok(false);
    };
    let Some(user_id) = pending.user_id else {
        return Ok(false);
    };
    let code = code?;
    let used = check(deps, user_id, &code).await?;
    // The stage is claimed once: a concurrent request with another right
    // code finds it gone.
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
