//! allauth-api: the interface crate of allauth-server, generated from
//! `openapi/allauth.yaml` by the build script of the root package.
//!
//! * [`types`] – the wire types (generated),
//! * [`api`] – the dropshot API trait, one method per operation (generated),
//! * [`runtime`] – hand-written support the generated trait relies on,
//! * `client` – a progenitor client (generated; feature `client`).

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, clippy::restriction, unused_imports, dead_code, missing_docs)]
pub mod types;

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, clippy::restriction, unused_imports, dead_code, missing_docs)]
pub mod api;

pub mod runtime;

#[cfg(feature = "client")]
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, clippy::restriction, unused_imports, dead_code, missing_docs)]
pub mod client;

pub use api::{AllauthApi, OperationId, OperationInfo, OPERATIONS};
