//! The application layer: allauth's flows and rules. It knows nothing of
//! HTTP; handlers in `http` call it, and it calls `db`.

pub mod accounts;
pub mod codes;
pub mod configuration;
pub mod email_verification;
pub mod emails;
pub mod error;
pub mod features;
pub mod jwt;
pub mod login;
pub mod login_by_code;
pub mod password_change;
pub mod password_reset;
pub mod password_validation;
pub mod passwords;
pub mod pipeline;
pub mod ratelimit;
pub mod routes;
pub mod secrets;
pub mod services;
pub mod session;
pub mod session_store;
pub mod signup;
pub mod usersessions;

pub use error::{Error, FieldError};
