//! The HTTP layer: implements the generated `AllauthApi` trait. Handlers
//! extract, call the application layer and convert. Around every call,
//! [`Call`] (`call`) admits the request (routing, CSRF, the session and its
//! 410), saves the session and sets cookies and headers; `client` reads the
//! client's address, user agent and credential; `reply` converts domain
//! values into the document's types and is the only conversion of
//! `app::Error` into the allauth envelope.

pub mod api;
pub mod call;
pub mod client;
pub mod context;
pub mod cookies;
pub mod cors;
pub mod document;
pub mod health;
pub mod reply;

mod account;
mod account_email;
mod account_password;
mod account_phone;
mod account_providers;
mod account_two_factor;
mod account_webauthn;
pub mod accounts_pages;
pub mod configuration;
mod current_session;
mod login_by_code;
pub mod other_method;
mod password_reset;
mod providers;
mod sessions;
mod tokens;
mod two_factor;
mod webauthn_login;
mod webauthn_signup;
mod wrapper;

pub use call::{not_built, AuthOutcome, Call};
pub use context::ServerContext;
pub use reply::{error_reply, invalid_input, response_headers};
pub use wrapper::{serve, Early, Handled};
