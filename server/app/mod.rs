//! The application layer: allauth's flows and rules. It knows nothing of
//! HTTP; handlers in `http` call it, and it calls `db`.

pub mod codes;
pub mod configuration;
pub mod error;
pub mod features;
pub mod password_validation;
pub mod passwords;
pub mod ratelimit;
pub mod routes;
pub mod secrets;
pub mod session;
pub mod usersessions;

pub use error::{Error, FieldError};
