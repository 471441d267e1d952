//! allauth-server: a standalone authentication server speaking the
//! django-allauth headless API v1.
//!
//! Layers, one direction: [`http`] (the generated trait's implementation) →
//! [`app`] (flows and rules) → [`db`] (Diesel). [`config`] is passed through
//! the server context; [`spec`] serves the document.

pub mod admin;
pub mod app;
pub mod config;
pub mod db;
pub mod email;
pub mod http;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod sms;
pub mod spec;
pub mod start;
pub mod webhooks;

pub use start::{start, RunningServer, StartError};
