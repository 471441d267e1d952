//! Text messages of the phone flows: what is sent ([`messages`]), queuing it with the change that causes it ([`outbox`]), and delivering it in the background ([`sender`], [`transport`]).
//!
//! The path of a message, the same as a mail's (`crate::email`):
//!
//! 1. A flow calls [`enqueue`] with an [`SmsMessage`] on the connection of
//!    the transaction making the change, so the message exists exactly when
//!    the change does.
//! 2. After the commit it calls [`Texter::wake`].
//! 3. The task started by [`spawn_sender`] delivers the row through the
//!    configured backend (`console`, `file`, `webhook` or `twilio`),
//!    retrying with back-off while the backend is down. Requests never wait
//!    for delivery.
//!
//! Logs never hold a whole phone number nor a message body (bodies hold
//! codes): numbers are [masked](mask_number), messages named by their kind.

pub mod messages;
pub mod outbox;
pub mod sender;
pub mod transport;

pub use messages::{mask_number, SmsMessage};
pub use outbox::enqueue;
pub use sender::{deliver_due, spawn_sender, Texter};
pub use transport::{SendError, Transport, TransportError};
