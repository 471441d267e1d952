//! The application layer: allauth's flows and rules. It knows nothing of
//! HTTP; handlers in `http` call it, and it calls `db`.

pub mod account;
pub mod error;
pub mod features;
pub mod health;
pub mod mfa;
pub mod routes;
pub mod security;
pub mod services;
pub mod sessions;
pub mod social;

pub use error::{Error, FieldError};

/// Now, in unix milliseconds: the one clock of every flow and expiry.
pub fn now_ms() -> i64 {
    crate::db::now_millis()
}
