//! The application's one error type. Variants carry allauth's stable error
//! codes and a client-facing message; internal context stays apart and is
//! only logged. `http::reply` is the single place that turns it into the wire
//! envelope.

use std::fmt;

/// One field (or form-level, when `param` is `None`) validation failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub param: Option<String>,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code,
            param: param.map(str::to_string),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub enum Error {
    /// The input does not validate (400 with the errors).
    Invalid(Vec<FieldError>),
    /// Nothing routed here for this configuration and client (404).
    NotFound,
    /// Routed by allauth but not built in this server yet (404, `not_implemented`).
    NotImplemented { operation_id: String },
    /// The request does not fit the current flow state (409).
    Conflict,
    /// A 409 that says why (allauth's `ErrorResponse` with status 409, e.g.
    /// `unverified_email` when a second factor may not be added yet).
    ConflictWith(Vec<FieldError>),
    /// Not allowed (403), e.g. signup closed.
    Forbidden,
    /// A browser's unsafe request without a matching CSRF token (403).
    CsrfFailed,
    /// A rate limit was hit (429).
    TooManyRequests,
    /// Something broke on our side; the message is for the log only.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(errors) => {
                let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
                write!(f, "invalid input: {}", codes.join(","))
            }
            Error::NotFound => write!(f, "not found"),
            Error::NotImplemented { operation_id } => {
                write!(f, "{operation_id} is not implemented")
            }
            Error::Conflict => write!(f, "conflict with the current flow state"),
            Error::ConflictWith(errors) => {
                let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
                write!(f, "conflict: {}", codes.join(","))
            }
            Error::Forbidden => write!(f, "forbidden"),
            Error::CsrfFailed => write!(f, "CSRF verification failed"),
            Error::TooManyRequests => write!(f, "rate limited"),
            Error::Internal(context) => write!(f, "internal error: {context}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::db::DbError> for Error {
    fn from(error: crate::db::DbError) -> Self {
        Error::Internal(format!("database: {error}"))
    }
}
