//! Queuing a mail: render it and insert it into `mail_outbox`, inside the caller's transaction.
//!
//! Call [`enqueue`] on the connection of the transaction that makes the change
//! the mail is about (the new address, the reset code, the changed
//! password…). The row is committed with the change or rolled back with it,
//! so a mail is never lost once the change is made, nor sent for a change
//! that was not. After the commit, [`super::Mailer::wake`] lets the sender
//! pick it up at once instead of at its next poll.

use crate::config::Config;
use crate::db::mail_outbox::{self, NewMail};
use crate::db::{DbConnection, DbError};

use super::messages::Message;

/// A notice of an account change to the user's primary address, when
/// `account.email_notifications` is on (allauth's `send_notification_mail`),
/// queued inside the change's transaction.
pub fn notify(
    conn: &mut DbConnection,
    config: &Config,
    user_id: i64,
    message: Message,
    now_ms: i64,
) -> Result<(), DbError> {
    if !config.account.email_notifications {
        return Ok(());
    }
    if let Some(to) = crate::db::email_addresses::primary_for_user(conn, user_id)? {
        enqueue(conn, config, &to.email, &message, now_ms)?;
    }
    Ok(())
}

/// Renders `message` for `to` and queues it, due at `now_ms` (unix epoch
/// milliseconds). Meant to run inside the transaction of the change that
/// caused it.
pub fn enqueue(
    conn: &mut DbConnection,
    config: &Config,
    to: &str,
    message: &Message,
    now_ms: i64,
) -> Result<(), DbError> {
    let rendered = message.render_for(config);
    let mail = mail_outbox::enqueue(
        conn,
        &NewMail::new(
            now_ms,
            to,
            &rendered.subject,
            &rendered.text,
            Some(&rendered.html),
        ),
    )?;
    tracing::debug!(mail_id = mail.id, kind = message.kind(), "mail queued");
    Ok(())
}
