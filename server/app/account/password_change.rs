//! allauth's password change for a logged-in user: the current password is checked (when the user has a usable one), the new one validated and set.
//!
//! A user without a usable password sets one without giving a current
//! password (allauth's "password set"). Changes are counted per user by
//! `change_password`. Afterwards every other session of the user ends
//! (Django invalidates them through the session auth hash); the caller's
//! own session ends too with `logout_on_password_change`, else it stays
//! logged in under a new key (Django's `update_session_auth_hash` cycles it).
//! The `PasswordChanged` or `PasswordSet` notice goes to the primary address
//! when `email_notifications`.

use crate::webhooks::{self, Event};
use serde_json::json;
use std::sync::Arc;

use crate::app::account::accounts::{self, Deps};
use crate::app::account::password_reset::password_errors;
use crate::app::security::passwords::Verified;
use crate::app::sessions::session::LiveSession;
use crate::app::{Error, FieldError};
use crate::db::{email_addresses, sessions, users};
use crate::email::{enqueue, Message};

/// The input of `POST account/password/change`.
pub struct ChangeInput {
    pub current_password: Option<String>,
    pub new_password: String,
}

/// `POST account/password/change`. An anonymous session is left alone (the
/// caller answers its 401). The `change_password` limit is taken by the
/// HTTP layer, before the input.
pub async fn change(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    input: ChangeInput,
) -> Result<(), Error> {
    let Some(current_user) = session.user.clone() else {
        return Ok(());
    };
    let user_id = current_user.id;
    let Some((user, view)) = deps
        .db
        .run(move |conn| {
            let Some(user) = users::by_id(conn, user_id)? else {
                return Ok(None);
            };
            let view = accounts::view_of(conn, &user)?;
            Ok(Some((user, view)))
        })
        .await?
    else {
        session.logout();
        return Ok(());
    };

    // Django's `CharField` strips what it cleans.
    let current = input.current_password.as_deref().unwrap_or("").trim();
    let new = input.new_password.trim();
    let mut errors = Vec::new();
    match (&user.password_hash, current.is_empty()) {
        (Some(_), true) => errors.push(accounts::required("current_password")),
        (_, true) => {}
        (stored, false) => {
            let verified = match stored {
                Some(stored) => deps.passwords.verify(current, stored).await?,
                None => {
                    deps.passwords.verify_dummy(current).await?;
                    Verified::Mismatch
                }
            };
            if !verified.is_ok() {
                errors.push(FieldError::new(
                    "enter_current_password",
                    Some("current_password"),
                    "Please type your current password.",
                ));
            }
        }
    }
    if new.is_empty() {
        errors.push(accounts::required("new_password"));
    } else {
        errors.extend(password_errors(deps, &view, new, "new_password"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }

    let is_set = current.is_empty();
    let hash = deps.passwords.hash(new).await?;
    let config = Arc::new(deps.config.clone());
    let logout = config.account.logout_on_password_change;
    let keep = session.row_id.filter(|_| !logout);
    let now = deps.now_ms;
    let origin = deps.change_origin();
    deps.db
        .transaction(move |conn| {
            users::set_password_hash(conn, user_id, Some(&hash))?;
            sessions::revoke_for_user(conn, user_id, keep)?;
            let event = Event::new("password.changed", user_id, json!({"set": is_set}));
            webhooks::emit(conn, &config, event, now)?;
            if config.account.email_notifications {
                if let Some(to) = email_addresses::primary_for_user(conn, user_id)? {
                    let message = if is_set {
                        Message::PasswordSet { origin }
                    } else {
                        Message::PasswordChanged { origin }
                    };
                    enqueue(conn, &config, &to.email, &message, now)?;
                }
            }
            Ok(())
        })
        .await?;
    deps.mailer.wake();
    if logout {
        session.logout();
    } else {
        if let Some(user) = session.user.as_mut() {
            user.has_usable_password = true;
        }
        session.cycle_key();
    }
    Ok(())
}
