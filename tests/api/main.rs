//! Integration tests: the real server on 127.0.0.1:0, spoken to over HTTP
//! through the progenitor client generated from the same document (and raw
//! HTTP where the point is malformed input). Every server test runs on
//! SQLite and, when `TEST_DATABASE_URL` names a PostgreSQL server, on
//! PostgreSQL too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod account;
mod account_email;
mod account_password;
mod agreement;
mod codegen;
mod concurrency;
mod configuration;
mod conformance;
mod cors;
mod coverage;
mod current_session;
mod document;
mod errors;
mod failover;
mod fake_github_harness;
mod health;
mod housekeeping;
mod https;
mod import;
mod instances;
mod login_by_code;
mod metrics;
mod mfa;
mod oidc_harness;
mod password_reset;
mod phone;
mod session_cache;
mod sessions;
mod social;
mod tokens;
mod webauthn;
mod webhooks;
