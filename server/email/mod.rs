//! Mail of the account flows: what is sent ([`messages`]), the links in it ([`links`]), queuing it with the change that causes it ([`outbox`]), and delivering it in the background ([`sender`], [`transport`]).
//!
//! The path of a mail:
//!
//! 1. A flow builds a [`Message`] (links from [`FrontendLinks`]) and calls
//!    [`enqueue`] on the connection of the transaction making the change, so
//!    the mail exists exactly when the change does.
//! 2. After the commit it calls [`Mailer::wake`].
//! 3. The task started by [`spawn_sender`] delivers the row through the
//!    configured backend (`console`, `file` or `smtp`), retrying with
//!    back-off while the backend is down. Requests never wait for delivery.

pub mod links;
pub mod messages;
pub mod outbox;
pub mod sender;
pub mod transport;

pub use links::FrontendLinks;
pub use messages::{ChangeOrigin, Message, Rendered};
pub use outbox::{enqueue, notify};
pub use sender::{deliver_due, spawn_sender, Mailer};
pub use transport::{SendError, Transport, TransportError};
