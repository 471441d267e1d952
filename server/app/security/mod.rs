//! Security primitives the flows share: password hashing on a bounded pool
//! (`passwords`) and allauth's password validators (`password_validation`),
//! atomic rate limits (`ratelimit`), the server secret and keys derived from
//! it (`secrets`), and user codes, tokens and signed keys (`codes`).

pub mod codes;
pub mod password_validation;
pub mod passwords;
pub mod ratelimit;
pub mod sealed;
pub mod secrets;
