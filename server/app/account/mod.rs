//! allauth's `account` flows: signup, password login, login by code, email
//! addresses and their verification, password change and reset, plus the
//! helpers they share (`accounts`: what a flow works with, user lookup,
//! signup field rules).

pub mod accounts;
pub mod email_verification;
pub mod emails;
pub mod login;
pub mod login_by_code;
pub mod password_change;
pub mod password_reset;
pub mod phones;
pub mod signup;
