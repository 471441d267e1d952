//! Sessions and the login in progress: the typed session state (`session`),
//! the compare-and-set store that loads and saves it (`session_store`) with
//! its exact cache of lookups (`session_cache`), which
//! session a call's credential names (`admission`), the
//! login pipeline every way in goes through (`pipeline`), when a sensitive
//! change needs a fresh authentication (`reauthentication`), the user's list of
//! sessions (`usersessions`) and JWT access and refresh tokens (`jwt`).

pub mod admission;
pub mod jwt;
pub mod pipeline;
pub mod reauthentication;
pub mod session;
pub mod session_cache;
pub mod session_store;
pub mod usersessions;
