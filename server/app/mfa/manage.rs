//! Managing a user's second factors (`account/authenticators…`): list them,
//! set up and remove TOTP, view and regenerate recovery codes. Changes ask
//! for a recent authentication (allauth's `raise_if_reauthentication_required`,
//! whatever `account.reauthentication_required` says), after the input was
//! found valid, as allauth's forms run first. Adding the first second factor
//! adds recovery codes (when supported); removing the last removes them.
//! Each change sends its notice when `account.email_notifications` is on.

use std::sync::Arc;

use crate::app::account::accounts::Deps;
use crate::app::mfa::{self, webauthn, AuthenticatorView, TOTP_SETUP_PURPOSE};
use crate::app::security::sealed;
use crate::app::sessions::reauthentication;
use crate::app::sessions::session::{Flow, LiveSession, Stage, UserView};
use crate::app::{Error, FieldError};
use crate::config::{Config, MfaType};
use crate::db::authenticators::{self, NewAuthenticator};
use crate::db::{email_addresses, DbConnection, DbError};
use crate::email::{messages, notify, Message};
use crate::webhooks::{self, Event};
use serde_json::json;

use super::recovery_codes::RecoveryCodesData;

/// The outcome of a change that may need a fresh authentication first.
#[derive(Debug)]
pub enum Managed<T> {
    Done(T),
    ReauthenticationRequired(Vec<Flow>),
}

/// What `GET account/authenticators/totp` finds.
#[derive(Debug)]
pub enum TotpState {
    Active(AuthenticatorView),
    /// None yet: a new secret (kept in the session) and its `otpauth://` URL.
    Offer {
        secret: String,
        url: String,
    },
}

fn invalid(code: &'static str, param: Option<&str>, message: &str) -> Error {
    Error::Invalid(vec![FieldError::new(code, param, message)])
}

fn incorrect_code() -> Error {
    invalid("incorrect_code", Some("code"), "Incorrect code.")
}

const UNVERIFIED_EMAIL: &str =
    "You cannot activate two-factor authentication until you have verified your email address.";

/// allauth's `validate_can_add_authenticator`: with an unverified address
/// (and `mfa.allow_unverified_email` off) no second factor may be added, so
/// that whoever signed up with someone else's address cannot lock its
/// owner out.
async fn may_add(deps: &Deps<'_>, user_id: i64) -> Result<bool, Error> {
    if deps.config.mfa.allow_unverified_email {
        return Ok(true);
    }
    let addresses = deps
        .db
        .run(move |conn| email_addresses::for_user(conn, user_id))
        .await?;
    Ok(addresses.iter().all(|a| a.verified))
}

/// `GET account/authenticators`.
pub async fn list(deps: &Deps<'_>, user_id: i64) -> Result<Vec<AuthenticatorView>, Error> {
    let rows = deps
        .db
        .run(move |conn| authenticators::for_user(conn, user_id))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| mfa::view(deps.config, deps.secret(), row, false))
        .collect())
}

/// `GET account/authenticators/totp`.
pub async fn totp_view(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
) -> Result<TotpState, Error> {
    let user_id = user.id;
    let row = deps
        .db
        .run(move |conn| authenticators::of_type(conn, user_id, authenticators::TOTP))
        .await?;
    if let Some(view) = row
        .as_ref()
        .and_then(|r| mfa::view(deps.config, deps.secret(), r, false))
    {
        return Ok(TotpState::Active(view));
    }
    if !may_add(deps, user_id).await? {
        return Err(unverified_conflict());
    }
    let secret = mfa::totp::generate_secret();
    session.set_totp_setup(Some(sealed::seal(
        deps.secret(),
        TOTP_SETUP_PURPOSE,
        &secret,
    )));
    let config = &deps.config.mfa;
    // allauth's label: the address, else the username.
    let label = user
        .email
        .clone()
        .or_else(|| user.username.clone())
        .unwrap_or_else(|| user.id.to_string());
    let issuer = config
        .totp_issuer
        .clone()
        .filter(|i| !i.is_empty())
        .or_else(|| messages::site_name(deps.config).map(str::to_owned))
        .unwrap_or_else(|| "allauth-server".to_owned());
    let url = mfa::totp::url(config, &label, &issuer, &secret);
    Ok(TotpState::Offer { secret, url })
}

/// `POST account/authenticators/totp`: activates the secret offered by
/// [`totp_view`], proven by a current `code`.
pub async fn totp_activate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
    code: &str,
) -> Result<Managed<AuthenticatorView>, Error> {
    if !may_add(deps, user.id).await? {
        return Err(invalid("unverified_email", Some("code"), UNVERIFIED_EMAIL));
    }
    let secret = session
        .data
        .totp_setup
        .as_deref()
        .and_then(|s| sealed::open(deps.secret(), TOTP_SETUP_PURPOSE, s));
    let step = secret
        .as_deref()
        .and_then(|s| mfa::totp::matching_step(&deps.config.mfa, s, code, deps.now_secs()));
    let (Some(secret), Some(step)) = (secret, step) else {
        return Err(incorrect_code());
    };
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let mut new = mfa::new_totp(deps.secret(), user.id, &secret, deps.now_ms);
    // The code that proved the secret is used up: it cannot also sign in.
    new.last_step = Some(i64::try_from(step).unwrap_or(i64::MAX));
    let config = Arc::new(deps.config.clone());
    let (server_secret, now, origin) =
        (deps.secret().to_owned(), deps.now_ms, deps.change_origin());
    let user_id = user.id;
    let row = deps
        .db
        .transaction(move |conn| {
            let row = authenticators::insert(conn, &new)?;
            add_recovery_codes_if_missing(conn, &config, &server_secret, user_id, now)?;
            notify(
                conn,
                &config,
                user_id,
                Message::TotpActivated { origin },
                now,
            )?;
            let event = Event::new("mfa.authenticator_added", user_id, json!({"type": "totp"}));
            webhooks::emit(conn, &config, event, now)?;
            Ok(row)
        })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                // TOTP is active already (another request won the race).
                Error::Conflict
            } else {
                e.into()
            }
        })?;
    deps.mailer.wake();
    session.set_totp_setup(None);
    let view = mfa::view(deps.config, deps.secret(), &row, false)
        .ok_or_else(|| Error::Internal("the new TOTP row does not read back".into()))?;
    Ok(Managed::Done(view))
}

/// `DELETE account/authenticators/totp`: succeeds, without asking for a
/// reauthentication, when there is no TOTP.
pub async fn totp_deactivate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
) -> Result<Managed<()>, Error> {
    let user_id = user.id;
    let row = deps
        .db
        .run(move |conn| authenticators::of_type(conn, user_id, authenticators::TOTP))
        .await?;
    let Some(row) = row else {
        return Ok(Managed::Done(()));
    };
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let config = Arc::new(deps.config.clone());
    let (now, origin) = (deps.now_ms, deps.change_origin());
    deps.db
        .transaction(move |conn| {
            if authenticators::delete(conn, user_id, row.id)? {
                remove_dangling_recovery_codes(conn, user_id)?;
                notify(
                    conn,
                    &config,
                    user_id,
                    Message::TotpDeactivated { origin },
                    now,
                )?;
                let event = Event::new(
                    "mfa.authenticator_removed",
                    user_id,
                    json!({"type": "totp"}),
                );
                webhooks::emit(conn, &config, event, now)?;
            }
            Ok(())
        })
        .await?;
    deps.mailer.wake();
    Ok(Managed::Done(()))
}

/// `GET account/authenticators/recovery-codes`: `None` when the user has
/// none (404). The codes are shown unless `recovery_codes_show_once` and
/// they were shown before.
pub async fn recovery_codes_view(
    deps: &Deps<'_>,
    session: &LiveSession,
    user: &UserView,
) -> Result<Managed<Option<AuthenticatorView>>, Error> {
    let user_id = user.id;
    let row = deps
        .db
        .run(move |conn| authenticators::of_type(conn, user_id, authenticators::RECOVERY_CODES))
        .await?;
    let Some(row) = row else {
        return Ok(Managed::Done(None));
    };
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let mut data: RecoveryCodesData = serde_json::from_str(&row.data).unwrap_or_default();
    let did_view = data.viewed_at.is_some();
    if !did_view {
        data.viewed_at = Some(deps.now_ms as f64 / 1000.0);
        let text = serde_json::to_string(&data).unwrap_or_default();
        let (id, version) = (row.id, row.version);
        // A concurrent change wins; the mark is only for show-once.
        deps.db
            .run(move |conn| authenticators::replace_data(conn, id, version, &text, None))
            .await?;
    }
    let can_view = !deps.config.mfa.recovery_codes_show_once || !did_view;
    Ok(Managed::Done(mfa::view(
        deps.config,
        deps.secret(),
        &row,
        can_view,
    )))
}

/// `POST account/authenticators/recovery-codes`: a new set in place of
/// the old, only for a user with another second factor.
pub async fn recovery_codes_regenerate(
    deps: &Deps<'_>,
    session: &LiveSession,
    user: &UserView,
) -> Result<Managed<AuthenticatorView>, Error> {
    let user_id = user.id;
    let types = mfa::user_types(deps, user_id).await?;
    if !types.iter().any(|t| *t != MfaType::RecoveryCodes) {
        return Err(invalid(
            "cannot_generate_recovery_codes",
            None,
            "You cannot generate recovery codes without having two-factor authentication enabled.",
        ));
    }
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let config = Arc::new(deps.config.clone());
    let (server_secret, now, origin) =
        (deps.secret().to_owned(), deps.now_ms, deps.change_origin());
    let row = deps
        .db
        .transaction(move |conn| {
            authenticators::delete_of_type(conn, user_id, authenticators::RECOVERY_CODES)?;
            let mut new = mfa::new_recovery_codes(&server_secret, user_id, now);
            // Shown right away: this answer carries them.
            let mut data: RecoveryCodesData = serde_json::from_str(&new.data).unwrap_or_default();
            data.viewed_at = Some(now as f64 / 1000.0);
            new.data = serde_json::to_string(&data).unwrap_or_default();
            let row = authenticators::insert(conn, &new)?;
            notify(
                conn,
                &config,
                user_id,
                Message::RecoveryCodesGenerated { origin },
                now,
            )?;
            Ok(row)
        })
        .await?;
    deps.mailer.wake();
    mfa::view(deps.config, deps.secret(), &row, true)
        .map(Managed::Done)
        .ok_or_else(|| Error::Internal("the new recovery codes do not read back".into()))
}

/// allauth's `auto_generate_recovery_codes`: with a first second factor
/// comes a recovery-code set (no notice of its own). Whether one was made.
fn add_recovery_codes_if_missing(
    conn: &mut DbConnection,
    config: &Config,
    secret: &str,
    user_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    if !config.mfa.supports(MfaType::RecoveryCodes)
        || authenticators::of_type(conn, user_id, authenticators::RECOVERY_CODES)?.is_some()
    {
        return Ok(false);
    }
    let new: NewAuthenticator = mfa::new_recovery_codes(secret, user_id, now);
    authenticators::insert(conn, &new)?;
    Ok(true)
}

/// allauth's `delete_dangling_recovery_codes`: recovery codes alone are no
/// second factor.
pub(crate) fn remove_dangling_recovery_codes(
    conn: &mut DbConnection,
    user_id: i64,
) -> Result<(), DbError> {
    let rows = authenticators::for_user(conn, user_id)?;
    if rows
        .iter()
        .all(|r| r.type_ == authenticators::RECOVERY_CODES)
    {
        authenticators::delete_of_type(conn, user_id, authenticators::RECOVERY_CODES)?;
    }
    Ok(())
}

/// Queues `message` to the user's primary address, with notices on.
/// Claims the WebAuthn ceremony of the session: taken out in one
/// compare-and-set, so that its challenge serves once.
pub(crate) async fn take_ceremony(
    deps: &Deps<'_>,
    session: &mut LiveSession,
) -> Result<Option<webauthn::Ceremony>, Error> {
    let taken = deps
        .sessions()
        .update(session, |data| data.webauthn.take())
        .await?;
    Ok(webauthn::Ceremony::from_value(taken))
}

/// The 409 of allauth's `_validate_can_add_authenticator`.
fn unverified_conflict() -> Error {
    Error::ConflictWith(vec![FieldError::new(
        "unverified_email",
        None,
        UNVERIFIED_EMAIL,
    )])
}

/// allauth's names for a new key: "Master key", "Backup key", "Key nr. N".
fn generated_name(existing: usize) -> String {
    match existing {
        0 => "Master key".to_owned(),
        1 => "Backup key".to_owned(),
        n => format!("Key nr. {}", n + 1),
    }
}

/// `GET account/authenticators/webauthn`: creation options for a security
/// key (or, `passwordless`, a passkey).
pub async fn webauthn_options(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
    passwordless: bool,
) -> Result<Managed<serde_json::Value>, Error> {
    if !may_add(deps, user.id).await? {
        return Err(unverified_conflict());
    }
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let user_id = user.id;
    let rows = deps
        .db
        .run(move |conn| authenticators::for_user(conn, user_id))
        .await?;
    // allauth's user entity: the address (else the username) and the display.
    let name = user
        .email
        .clone()
        .or_else(|| user.username.clone())
        .unwrap_or_else(|| user.id.to_string());
    let (options, ceremony) = webauthn::begin_registration(
        deps.config,
        user.id,
        &name,
        &user.display(),
        &webauthn::credentials(&rows),
        passwordless,
    )?;
    session.set_webauthn(Some(ceremony.to_value()));
    Ok(Managed::Done(options))
}

/// `POST account/authenticators/webauthn`: stores the credential created
/// with the options above; whether recovery codes were generated with it.
pub async fn webauthn_add(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: &UserView,
    name: Option<String>,
    credential: serde_json::Value,
) -> Result<Managed<(AuthenticatorView, bool)>, Error> {
    if !may_add(deps, user.id).await? {
        return Err(unverified_conflict());
    }
    let ceremony = take_ceremony(deps, session).await?;
    let verified = webauthn::complete_registration(deps.config, ceremony, user.id, &credential)?;
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let config = Arc::new(deps.config.clone());
    let (server_secret, now, origin) =
        (deps.secret().to_owned(), deps.now_ms, deps.change_origin());
    let user_id = user.id;
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let (row, generated) = deps
        .db
        .transaction(move |conn| {
            let existing = authenticators::for_user(conn, user_id)?
                .iter()
                .filter(|r| r.type_ == authenticators::WEBAUTHN)
                .count();
            let name = name.clone().unwrap_or_else(|| generated_name(existing));
            let data = webauthn::WebauthnData {
                name: name.clone(),
                credential: credential.clone(),
                passkey: Some(verified.clone()),
            };
            let row = authenticators::insert(
                conn,
                &NewAuthenticator {
                    user_id,
                    type_: authenticators::WEBAUTHN.to_owned(),
                    data: serde_json::to_string(&data).unwrap_or_default(),
                    created_at: now,
                    last_step: None,
                },
            )?;
            let generated =
                add_recovery_codes_if_missing(conn, &config, &server_secret, user_id, now)?;
            let origin = origin.clone();
            notify(
                conn,
                &config,
                user_id,
                Message::WebauthnAdded { name, origin },
                now,
            )?;
            let event = Event::new(
                "mfa.authenticator_added",
                user_id,
                json!({"type": "webauthn"}),
            );
            webhooks::emit(conn, &config, event, now)?;
            Ok((row, generated))
        })
        .await?;
    deps.mailer.wake();
    let view = mfa::view(deps.config, deps.secret(), &row, false)
        .ok_or_else(|| Error::Internal("the new WebAuthn row does not read back".into()))?;
    Ok(Managed::Done((view, generated)))
}

/// The user's WebAuthn authenticator `id`, or Django's `invalid_choice`.
async fn own_webauthn(
    deps: &Deps<'_>,
    user_id: i64,
    ids: &[i64],
    param: &str,
) -> Result<Vec<authenticators::Authenticator>, Error> {
    let rows = deps
        .db
        .run(move |conn| authenticators::for_user(conn, user_id))
        .await?;
    let mut found = Vec::new();
    for id in ids {
        match rows
            .iter()
            .find(|r| r.id == *id && r.type_ == authenticators::WEBAUTHN)
        {
            Some(row) => found.push(row.clone()),
            None => {
                let message = if param == "id" {
                    "Select a valid choice. That choice is not one of the available choices."
                        .to_owned()
                } else {
                    format!("Select a valid choice. {id} is not one of the available choices.")
                };
                return Err(Error::Invalid(vec![FieldError::new(
                    "invalid_choice",
                    Some(param),
                    message,
                )]));
            }
        }
    }
    Ok(found)
}

/// `PUT account/authenticators/webauthn`: a new name (at most 100 characters).
pub async fn webauthn_rename(
    deps: &Deps<'_>,
    session: &LiveSession,
    user: &UserView,
    id: i64,
    name: &str,
) -> Result<Managed<AuthenticatorView>, Error> {
    let rows = own_webauthn(deps, user.id, &[id], "id").await?;
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(Error::Invalid(vec![
            crate::app::account::accounts::required("name"),
        ]));
    }
    if name.chars().count() > 100 {
        return Err(invalid(
            "max_length",
            Some("name"),
            "Ensure this value has at most 100 characters.",
        ));
    }
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let Some(mut row) = rows.into_iter().next() else {
        return Err(Error::Conflict);
    };
    // A concurrent use may have changed the counter: read again and retry.
    for _ in 0..5 {
        let Some(mut data) = webauthn::WebauthnData::of(&row) else {
            return Err(Error::Internal("unreadable WebAuthn data".into()));
        };
        data.name = name.clone();
        let text = serde_json::to_string(&data).unwrap_or_default();
        let (row_id, version) = (row.id, row.version);
        let replaced = deps
            .db
            .run(move |conn| authenticators::replace_data(conn, row_id, version, &text, None))
            .await?;
        if replaced {
            row.data = serde_json::to_string(&data).unwrap_or_default();
            return mfa::view(deps.config, deps.secret(), &row, false)
                .map(Managed::Done)
                .ok_or_else(|| Error::Internal("renamed row does not read back".into()));
        }
        let user_id = user.id;
        let fresh = deps
            .db
            .run(move |conn| authenticators::for_user(conn, user_id))
            .await?;
        row = fresh
            .into_iter()
            .find(|r| r.id == row_id)
            .ok_or(Error::Conflict)?;
    }
    Err(Error::Conflict)
}

/// `DELETE account/authenticators/webauthn`.
pub async fn webauthn_delete(
    deps: &Deps<'_>,
    session: &LiveSession,
    user: &UserView,
    ids: &[i64],
) -> Result<Managed<()>, Error> {
    let rows = own_webauthn(deps, user.id, ids, "authenticators").await?;
    if let Some(flows) = reauthentication::required(deps, session, user).await? {
        return Ok(Managed::ReauthenticationRequired(flows));
    }
    let config = Arc::new(deps.config.clone());
    let (now, origin) = (deps.now_ms, deps.change_origin());
    let user_id = user.id;
    deps.db
        .transaction(move |conn| {
            for row in &rows {
                if authenticators::delete(conn, user_id, row.id)? {
                    let name = webauthn::WebauthnData::of(row)
                        .map(|d| d.name)
                        .unwrap_or_default();
                    let origin = origin.clone();
                    notify(
                        conn,
                        &config,
                        user_id,
                        Message::WebauthnRemoved { name, origin },
                        now,
                    )?;
                    let event = Event::new(
                        "mfa.authenticator_removed",
                        user_id,
                        json!({"type": "webauthn"}),
                    );
                    webhooks::emit(conn, &config, event, now)?;
                }
            }
            remove_dangling_recovery_codes(conn, user_id)?;
            Ok(())
        })
        .await?;
    deps.mailer.wake();
    Ok(Managed::Done(()))
}

/// The user of the login waiting for its signup passkey, if that stage is
/// pending.
fn passkey_signup_user(deps: &Deps<'_>, session: &LiveSession) -> Option<i64> {
    session
        .data
        .login_waiting_in(deps.config, deps.now_ms, |stage| {
            matches!(stage, Stage::MfaSignupWebauthn)
        })
        .and_then(|l| l.user_id)
}

/// `GET auth/webauthn/signup`: passkey creation options for the new
/// account; `None` (409) without a pending `mfa_signup_webauthn` stage.
pub async fn passkey_signup_options(
    deps: &Deps<'_>,
    session: &mut LiveSession,
) -> Result<Option<serde_json::Value>, Error> {
    let Some(user_id) = passkey_signup_user(deps, session) else {
        return Ok(None);
    };
    let view = deps
        .db
        .run(move |conn| {
            let user = crate::db::users::by_id(conn, user_id)?;
            user.map(|u| crate::app::account::accounts::view_of(conn, &u))
                .transpose()
        })
        .await?;
    let Some(user) = view else {
        return Ok(None);
    };
    let name = user
        .email
        .clone()
        .or_else(|| user.username.clone())
        .unwrap_or_else(|| user.id.to_string());
    let (options, ceremony) =
        webauthn::begin_registration(deps.config, user.id, &name, &user.display(), &[], true)?;
    session.set_webauthn(Some(ceremony.to_value()));
    Ok(Some(options))
}

/// `PUT auth/webauthn/signup`: stores the new account's passkey and ends
/// the stage (the login completes). `Ok(false)`: no stage pending (409).
pub async fn passkey_signup_complete(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    name: Option<String>,
    credential: serde_json::Value,
) -> Result<bool, Error> {
    let Some(user_id) = passkey_signup_user(deps, session) else {
        return Ok(false);
    };
    let ceremony = take_ceremony(deps, session).await?;
    let verified = webauthn::complete_registration(deps.config, ceremony, user_id, &credential)?;
    let now = deps.now_ms;
    let claimed = super::authenticate::claim(deps, session, |stage| {
        matches!(stage, Stage::MfaSignupWebauthn)
    })
    .await?;
    let Some(claimed) = claimed else {
        return Ok(false);
    };
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| generated_name(0));
    let data = webauthn::WebauthnData {
        name,
        credential,
        passkey: Some(verified),
    };
    let new = NewAuthenticator {
        user_id,
        type_: authenticators::WEBAUTHN.to_owned(),
        data: serde_json::to_string(&data).unwrap_or_default(),
        created_at: now,
        last_step: None,
    };
    deps.db
        .run(move |conn| authenticators::insert(conn, &new))
        .await?;
    let attempt = crate::app::sessions::pipeline::Attempt::resume(deps, claimed).await?;
    crate::app::sessions::pipeline::advance(
        deps,
        session,
        attempt,
        crate::app::sessions::session::Step::PasskeySignup,
    )
    .await?;
    Ok(true)
}
