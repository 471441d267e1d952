//! Shared helpers of the account flows: what a flow gets to work with
//! ([`Deps`]), building a [`UserView`], finding users by a login
//! identifier, the checks of allauth's signup fields (email syntax, username
//! rules, email uniqueness) and generating a username.

use crate::app::security::passwords::Passwords;
use crate::app::security::ratelimit::{Consumed, RateLimitSubject, RateLimiter, Ticket};
use crate::app::sessions::session::UserView;
use crate::app::sessions::session_store::SessionStore;
use crate::app::{Error, FieldError};
use crate::config::{Config, EmailVerification};
use crate::db::email_addresses::{self, EmailAddress};
use crate::db::users::{self, User};
use crate::db::{Db, DbConnection, DbError};
use crate::email::sender::Mailer;

/// What the account flows need besides the session, as plain values.
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub db: &'a Db,
    pub passwords: &'a Passwords,
    pub rate_limiter: &'a RateLimiter,
    pub mailer: &'a Mailer,
    /// Wakes the SMS sender after a text is queued.
    pub texter: &'a crate::sms::Texter,
    /// Loads and saves sessions (compare-and-set).
    pub store: &'a SessionStore,
    /// HTTP to the social providers.
    pub remote: &'a crate::app::social::remote::Remote,
    /// Unix epoch milliseconds of the request.
    pub now_ms: i64,
    /// The client address (for rate limits).
    pub ip: &'a str,
    /// The client's `User-Agent` (for the account-change notices).
    pub user_agent: &'a str,
}

impl Deps<'_> {
    /// The session store, for atomic changes of the session's flow state.
    pub fn sessions(&self) -> &SessionStore {
        self.store
    }

    /// Where a change made by this request comes from, for notice mails.
    pub fn change_origin(&self) -> crate::email::ChangeOrigin {
        crate::email::ChangeOrigin {
            at_ms: self.now_ms,
            ip: self.ip.to_owned(),
            user_agent: self.user_agent.to_owned(),
        }
    }

    /// The server secret (always set once the server runs).
    pub fn secret(&self) -> &str {
        self.config
            .server
            .secret_key
            .as_ref()
            .map_or("", |s| s.expose())
    }

    /// Counts one `action` against the client address, the user and `key`.
    pub async fn consume(
        &self,
        action: &str,
        user: Option<i64>,
        key: Option<&str>,
    ) -> Result<Consumed, Error> {
        let subject = RateLimitSubject {
            ip: Some(self.ip.to_string()),
            user,
            key: key.map(str::to_string),
        };
        self.rate_limiter
            .consume_at(self.config, action, &subject, self.now_ms)
            .await
    }

    /// [`Deps::consume`], answering 429 when refused.
    pub async fn consume_or_429(
        &self,
        action: &str,
        user: Option<i64>,
        key: Option<&str>,
    ) -> Result<Ticket, Error> {
        match self.consume(action, user, key).await? {
            Consumed::Allowed(ticket) => Ok(ticket),
            Consumed::Refused => Err(Error::TooManyRequests),
        }
    }

    pub fn now_secs(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }
}

/// Django's "This field is required." error.
pub fn required(param: &str) -> FieldError {
    FieldError::new("required", Some(param), "This field is required.")
}

/// The user as allauth serializes it (the primary address as `email`).
pub fn view_of(conn: &mut DbConnection, user: &User) -> Result<UserView, DbError> {
    let email = email_addresses::primary_for_user(conn, user.id)?.map(|a| a.email);
    Ok(UserView::from_row(user, email))
}

/// The users who have `email` (folded), each once; with `prefer_verified`,
/// only the owner of the verified row when there is one (allauth's
/// `filter_users_by_email`).
pub fn users_with_email(
    conn: &mut DbConnection,
    email_lower: &str,
    prefer_verified: bool,
) -> Result<Vec<User>, DbError> {
    let rows = email_addresses::by_email_lower(conn, email_lower)?;
    let verified: Vec<&EmailAddress> = rows.iter().filter(|r| r.verified).collect();
    let chosen: Vec<&EmailAddress> = if prefer_verified && !verified.is_empty() {
        verified
    } else {
        rows.iter().collect()
    };
    let mut users = Vec::new();
    for row in chosen {
        if users.iter().any(|u: &User| u.id == row.user_id) {
            continue;
        }
        if let Some(user) = users::by_id(conn, row.user_id)? {
            users.push(user);
        }
    }
    Ok(users)
}

/// The user with this username (case-insensitive).
pub fn user_by_username(conn: &mut DbConnection, username: &str) -> Result<Option<User>, DbError> {
    users::by_username_lower(conn, &users::fold_username(username))
}

/// Django's `EmailField` cleaning: surrounding whitespace dropped, at most
/// `account.email_max_length` characters, a valid address.
pub fn clean_email_field(config: &Config, value: &str, param: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(required(param));
    }
    let length = value.chars().count();
    let max = config.account.email_max_length as usize;
    if length > max {
        return Err(FieldError::new(
            "max_length",
            Some(param),
            format!("Ensure this value has at most {max} characters (it has {length})."),
        ));
    }
    if !is_valid_email(value) {
        return Err(FieldError::new(
            "invalid",
            Some(param),
            "Enter a valid email address.",
        ));
    }
    Ok(value.to_string())
}

/// Close to Django's `EmailValidator`: a dot-atom (or quoted) local part and
/// a domain of dot-separated labels ending in a non-numeric TLD (or an IP
/// literal in brackets).
pub fn is_valid_email(value: &str) -> bool {
    let Some((user, domain)) = value.rsplit_once('@') else {
        return false;
    };
    if user.is_empty() || domain.is_empty() || user.len() > 64 || value.len() > 320 {
        return false;
    }
    let atom_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let user_ok = if user.starts_with('"') && user.ends_with('"') && user.len() >= 2 {
        user[1..user.len() - 1]
            .chars()
            .all(|c| (c.is_ascii() && !c.is_ascii_control()) || c == '\t')
    } else {
        user.split('.')
            .all(|part| !part.is_empty() && part.chars().all(atom_char))
    };
    if !user_ok {
        return false;
    }
    if domain.starts_with('[') && domain.ends_with(']') {
        return domain[1..domain.len() - 1]
            .parse::<std::net::IpAddr>()
            .is_ok();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return domain.eq_ignore_ascii_case("localhost");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld = labels.last().copied().unwrap_or("");
    labels.iter().all(|l| label_ok(l))
        && tld.chars().count() >= 2
        && (tld.chars().all(char::is_alphabetic) || (tld.starts_with("xn--") && tld.len() > 4))
}

/// Django's `UnicodeUsernameValidator`: letters, digits and `@.+-_`.
fn username_chars_ok(username: &str) -> bool {
    !username.is_empty()
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || "@.+-".contains(c))
}

/// The form field's checks of a typed username (length, then characters).
pub fn username_field_errors(config: &Config, username: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let length = username.chars().count();
    let (min, max) = (
        config.account.username_min_length as usize,
        config.account.username_max_length as usize,
    );
    if length < min {
        errors.push(FieldError::new(
            "min_length",
            Some("username"),
            format!("Ensure this value has at least {min} characters (it has {length})."),
        ));
    }
    if length > max {
        errors.push(FieldError::new(
            "max_length",
            Some("username"),
            format!("Ensure this value has at most {max} characters (it has {length})."),
        ));
    }
    if !errors.is_empty() {
        return errors;
    }
    if !username_chars_ok(username) {
        errors.push(FieldError::new(
            "invalid",
            Some("username"),
            "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
        ));
    }
    errors
}

/// allauth's `clean_username` without the database: the validators and
/// the blacklist.
fn username_shallow_error(config: &Config, username: &str) -> Option<FieldError> {
    if !username_chars_ok(username)
        || username.chars().count() > config.account.username_max_length as usize
    {
        return Some(FieldError::new(
            "invalid",
            Some("username"),
            "Enter a valid username.",
        ));
    }
    let folded = username.to_lowercase();
    if config
        .account
        .username_blacklist
        .iter()
        .any(|b| b.to_lowercase() == folded)
    {
        return Some(username_blacklisted());
    }
    None
}

pub fn username_blacklisted() -> FieldError {
    FieldError::new(
        "username_blacklisted",
        Some("username"),
        "This username cannot be used. Please choose another one.",
    )
}

pub fn username_taken() -> FieldError {
    FieldError::new(
        "username_taken",
        Some("username"),
        "A user with that username already exists.",
    )
}

/// allauth's `clean_username`: validators, blacklist, then uniqueness.
pub fn clean_username(
    conn: &mut DbConnection,
    config: &Config,
    username: &str,
) -> Result<Result<(), FieldError>, DbError> {
    if let Some(error) = username_shallow_error(config, username) {
        return Ok(Err(error));
    }
    if user_by_username(conn, username)?.is_some() {
        return Ok(Err(username_taken()));
    }
    Ok(Ok(()))
}

/// The username stored for a typed one (`preserve_username_casing`).
pub fn stored_username(config: &Config, username: &str) -> String {
    if config.account.preserve_username_casing {
        username.to_string()
    } else {
        username.to_lowercase()
    }
}

/// Characters of generated username suffixes: 4 digits, then letters.
const SUFFIX_DIGITS: &[u8] = b"0123456789";
const SUFFIX_LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// allauth's `MAX_USERNAME_SUFFIX_LENGTH`.
const MAX_SUFFIX_LENGTH: usize = 7;

/// The base of a generated username (allauth's
/// `_generate_unique_username_base`): the first usable of `texts`, ASCII
/// only, lowercased, cut at `@`, whitespace to `_`; else `"user"`.
fn username_base(config: &Config, texts: &[&str]) -> String {
    for text in texts {
        let ascii: String = text.chars().filter(char::is_ascii).collect();
        if ascii.is_empty() {
            continue;
        }
        let kept: String = ascii
            .chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace() || "_@+.-".contains(*c))
            .collect::<String>()
            .to_lowercase();
        let local = kept.split('@').next().unwrap_or("").trim().to_string();
        let username = local.split_whitespace().collect::<Vec<_>>().join("_");
        if username_shallow_error(config, &username).is_none() {
            return username;
        }
    }
    "user".to_string()
}

/// allauth's `generate_username_candidates`: the base (when long enough),
/// then the base with random suffixes of growing length.
fn username_candidates(config: &Config, base: &str) -> Vec<String> {
    let min = config.account.username_min_length as usize;
    let max = config.account.username_max_length as usize;
    let base_len = base.chars().count();
    let mut candidates = Vec::new();
    if base_len >= min {
        candidates.push(base.to_string());
    }
    let shortest = min.saturating_sub(base_len).max(1);
    for suffix_length in shortest..max.min(MAX_SUFFIX_LENGTH) {
        let suffix: String = (0..suffix_length)
            .map(|i| {
                let alphabet = if i < 4 { SUFFIX_DIGITS } else { SUFFIX_LETTERS };
                crate::app::security::secrets::random_string(alphabet, 1)
            })
            .collect();
        let keep = max.saturating_sub(suffix_length);
        let head: String = base.chars().take(keep).collect();
        candidates.push(format!("{head}{suffix}"));
    }
    candidates
}

/// A free username derived from `texts` (allauth's
/// `generate_unique_username`), or `None` when every candidate is taken.
pub fn generate_username(
    conn: &mut DbConnection,
    config: &Config,
    texts: &[&str],
) -> Result<Option<String>, DbError> {
    let base = username_base(config, texts);
    for candidate in username_candidates(config, &base) {
        if username_shallow_error(config, &candidate).is_some() {
            continue;
        }
        if user_by_username(conn, &candidate)?.is_none() {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// allauth's `assess_unique_email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailAssessment {
    /// Nobody has it (or uniqueness is off, or strict enumeration
    /// prevention lets duplicates through).
    Unique,
    /// Taken, and saying so is allowed: `email_taken`.
    Taken,
    /// Taken, hidden behind the verification mail.
    Hidden,
}

pub fn assess_unique_email(
    conn: &mut DbConnection,
    config: &Config,
    email_lower: &str,
    except_user: Option<i64>,
) -> Result<EmailAssessment, DbError> {
    let account = &config.account;
    if !account.unique_email {
        return Ok(EmailAssessment::Unique);
    }
    let conflict = users_with_email(conn, email_lower, false)?
        .iter()
        .any(|u| Some(u.id) != except_user);
    Ok(if !conflict {
        EmailAssessment::Unique
    } else if !account.prevent_enumeration.is_enabled() {
        EmailAssessment::Taken
    } else if account.email_verification == EmailVerification::Mandatory {
        EmailAssessment::Hidden
    } else if account.prevent_enumeration.is_strict() {
        EmailAssessment::Unique
    } else {
        EmailAssessment::Taken
    })
}

pub fn email_taken(param: &str) -> FieldError {
    FieldError::new(
        "email_taken",
        Some(param),
        "A user is already registered with this email address.",
    )
}
