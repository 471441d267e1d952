//! Queuing a text message: render it and insert it into `sms_outbox`, inside the caller's transaction.
//!
//! Call [`enqueue`] on the connection of the transaction that makes the
//! change the message is about (the code stored for the number, the
//! sign-in attempt…). The row is committed with the change or rolled back
//! with it. After the commit, [`super::Texter::wake`] lets the sender pick
//! it up at once instead of at its next poll.

use crate::config::Config;
use crate::db::sms_outbox::{self, NewSms};
use crate::db::{DbConnection, DbError};

use super::messages::{mask_number, SmsMessage};

/// Renders `message` and queues it for `to_e164` (`+` and digits; a number
/// that is not E.164 is given up by the sender without being sent), due at
/// `now_ms` (unix epoch milliseconds). Meant to run inside the transaction
/// of the change that caused it.
pub fn enqueue(
    conn: &mut DbConnection,
    config: &Config,
    to_e164: &str,
    message: &SmsMessage,
    now_ms: i64,
) -> Result<(), DbError> {
    let body = message.render_for(config);
    let sms = sms_outbox::enqueue(
        conn,
        &NewSms::new(now_ms, to_e164.trim(), &body, message.kind()),
    )?;
    tracing::debug!(
        sms_id = sms.id,
        kind = message.kind(),
        to = %mask_number(to_e164),
        "sms queued"
    );
    Ok(())
}
