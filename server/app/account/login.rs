//! Login by password and reauthentication by password (allauth's
//! `LoginInput`/`perform_password_login` and `ReauthenticateForm`).
//!
//! The `login_failed` slot is taken before the password is checked and
//! given back only when it was right, so failures alone use up the limit
//! and a good login in between does not reset it. Unknown users cost one
//! dummy verification, so answers take as long either way.

use crate::app::account::accounts::{self, Deps};
use crate::app::account::email_verification;
use crate::app::account::phones;
use crate::app::security::passwords::Verified;
use crate::app::security::ratelimit::Consumed;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::{AuthRecord, LiveSession};
use crate::app::{Error, FieldError};
use crate::config::LoginMethod;
use crate::db::users::{self, User};

/// The login form as posted.
#[derive(Debug, Default)]
pub struct LoginRequest {
    pub email: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub password: String,
}

fn too_many_attempts(param: Option<&str>) -> Error {
    Error::Invalid(vec![FieldError::new(
        "too_many_login_attempts",
        param,
        "Too many failed login attempts. Try again later.",
    )])
}

/// The credential a login names, once validated.
enum Credential {
    Email(String),
    Username(String),
    /// E.164.
    Phone(String),
}

impl Credential {
    fn method(&self) -> &'static str {
        match self {
            Credential::Email(_) => "email",
            Credential::Username(_) => "username",
            Credential::Phone(_) => "phone",
        }
    }

    fn value(&self) -> &str {
        match self {
            Credential::Email(v) | Credential::Username(v) | Credential::Phone(v) => v,
        }
    }
}

/// allauth's `LoginInput` field checks: the fields of the configured login
/// methods (the only one required when there is just one), then exactly
/// one credential.
fn validate(
    config: &crate::config::Config,
    input: &LoginRequest,
) -> Result<(Credential, String), Error> {
    let account = &config.account;
    let has_username = account.has_login_method(LoginMethod::Username);
    let has_email = account.has_login_method(LoginMethod::Email);
    let has_phone = account.has_login_method(LoginMethod::Phone);
    let single = account.login_methods.len() == 1;
    let mut errors = Vec::new();
    let mut credentials = Vec::new();
    if has_username {
        let value = input.username.as_deref().map(str::trim);
        match value {
            Some(v) if !v.is_empty() => credentials.push(Credential::Username(v.to_string())),
            _ if single => errors.push(accounts::required("username")),
            Some(_) => credentials.push(Credential::Username(String::new())),
            None => {}
        }
    }
    if has_email {
        match input.email.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => {
                match accounts::clean_email_field(config, v, "email") {
                    // allauth's `EmailField` lowercases.
                    Ok(v) => credentials.push(Credential::Email(v.to_lowercase())),
                    Err(e) => errors.push(e),
                }
            }
            _ if single => errors.push(accounts::required("email")),
            Some(_) => credentials.push(Credential::Email(String::new())),
            None => {}
        }
    }
    if has_phone {
        match input.phone.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => match phones::clean_field(config, Some(v), "phone") {
                Ok(Some(v)) => credentials.push(Credential::Phone(v)),
                Ok(None) => credentials.push(Credential::Phone(String::new())),
                Err(e) => errors.push(e),
            },
            _ if single => errors.push(accounts::required("phone")),
            Some(_) => credentials.push(Credential::Phone(String::new())),
            None => {}
        }
    }
    let password = input.password.trim().to_string();
    if password.is_empty() {
        errors.push(accounts::required("password"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    if credentials.len() != 1 {
        return Err(Error::Invalid(vec![FieldError::new(
            "invalid_login",
            None,
            "The login is not valid.",
        )]));
    }
    let credential = credentials.remove(0);
    if credential.value().is_empty() {
        // Present but blank: no account can match it.
        return Ok((credential, password));
    }
    Ok((credential, password))
}

/// The errors of [`validate`]'s field checks alone (none when it passes).
pub fn field_errors(config: &crate::config::Config, input: &LoginRequest) -> Vec<FieldError> {
    match validate(config, input) {
        Err(Error::Invalid(errors)) => errors,
        _ => Vec::new(),
    }
}

/// Checks `password` against each candidate; stores a fresh hash after a
/// match on an old format. Unknown users cost a dummy verification.
async fn check_password(
    deps: &Deps<'_>,
    candidates: Vec<User>,
    password: &str,
) -> Result<Option<User>, Error> {
    let mut checked = false;
    for user in candidates {
        let Some(stored) = user.password_hash.clone() else {
            continue;
        };
        checked = true;
        if let Verified::Ok { needs_upgrade } = deps.passwords.verify(password, &stored).await? {
            if needs_upgrade {
                let hash = deps.passwords.hash(password).await?;
                let id = user.id;
                deps.db
                    .run(move |conn| users::set_password_hash(conn, id, Some(&hash)))
                    .await?;
            }
            return Ok(Some(user));
        }
    }
    if !checked {
        deps.passwords.verify_dummy(password).await?;
    }
    Ok(None)
}

/// allauth's `AuthenticationBackend`: by email (a username is also tried
/// as an email when email login is on), then by username.
async fn authenticate(
    deps: &Deps<'_>,
    credential: &Credential,
    password: &str,
) -> Result<Option<User>, Error> {
    let value = credential.value().to_string();
    if value.is_empty() {
        deps.passwords.verify_dummy(password).await?;
        return Ok(None);
    }
    let email_login = deps.config.account.has_login_method(LoginMethod::Email);
    let by_email = matches!(credential, Credential::Email(_))
        || (email_login && accounts::is_valid_email(&value));
    let by_username = matches!(credential, Credential::Username(_));
    let by_phone = match credential {
        Credential::Phone(phone) => Some(phone.clone()),
        _ => None,
    };
    let candidates = {
        let value = value.clone();
        deps.db
            .run(move |conn| {
                let mut found = Vec::new();
                if let Some(phone) = &by_phone {
                    if let Some(number) = crate::db::phone_numbers::owner(conn, phone)? {
                        found.extend(users::by_id(conn, number.user_id)?);
                    }
                }
                if by_email {
                    let folded = crate::db::email_addresses::fold_email(&value);
                    found.extend(accounts::users_with_email(conn, &folded, true)?);
                }
                if by_username {
                    if let Some(user) = accounts::user_by_username(conn, &value)? {
                        if !found.iter().any(|u: &User| u.id == user.id) {
                            found.push(user);
                        }
                    }
                }
                Ok(found)
            })
            .await?
    };
    check_password(deps, candidates, password).await
}

/// `POST auth/login`.
pub async fn login_password(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    input: LoginRequest,
) -> Result<(), Error> {
    // The `login` limit is taken by the HTTP layer, before the input.
    let (credential, password) = validate(deps.config, &input)?;

    let attempts_key = credential.value().to_lowercase();
    let ticket = match deps
        .consume("login_failed", None, Some(&attempts_key))
        .await?
    {
        Consumed::Allowed(ticket) => ticket,
        Consumed::Refused => return Err(too_many_attempts(None)),
    };
    let Some(user) = authenticate(deps, &credential, &password).await? else {
        let code = match credential {
            Credential::Email(_) => "email_password_mismatch",
            Credential::Username(_) => "username_password_mismatch",
            Credential::Phone(_) => "phone_password_mismatch",
        };
        let what = credential.method().replace('_', " ");
        return Err(Error::Invalid(vec![FieldError::new(
            code,
            Some("password"),
            format!("The {what} and/or the password are not correct."),
        )]));
    };
    deps.rate_limiter.release(ticket).await?;
    let login_email = match &credential {
        Credential::Email(e) => Some(e.clone()),
        Credential::Username(_) | Credential::Phone(_) => None,
    };
    if email_verification::is_verification_rate_limited(deps, user.id, login_email.as_deref())
        .await?
    {
        return Err(too_many_attempts(None));
    }
    if session.is_authenticated() {
        return Err(Error::Conflict);
    }

    if !user.is_active {
        // allauth answers the "inactive" stage: still anonymous.
        return Ok(());
    }
    // allauth records the address or username; a phone number is not
    // recorded with the password.
    let (email, username) = match credential {
        Credential::Email(e) => (Some(e), None),
        Credential::Username(u) => (None, Some(u)),
        Credential::Phone(_) => (None, None),
    };
    let record = AuthRecord::Password {
        at: AuthRecord::seconds(deps.now_ms),
        email,
        username,
        reauthenticated: false,
    };
    let attempt = Attempt::new(deps, Some(user), login_email).with_record(record);
    pipeline::authenticated(deps, session, attempt).await
}

/// `POST auth/reauthenticate` (the caller is logged in): the password
/// again, recorded as `{"method": "password", "reauthenticated": true}`.
pub async fn reauthenticate_password(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    password: String,
) -> Result<(), Error> {
    let Some(user_id) = session.user.as_ref().map(|u| u.id) else {
        return Ok(());
    };
    // The `reauthenticate` limit is taken by the HTTP layer, before the input.
    if password.is_empty() {
        return Err(Error::Invalid(vec![accounts::required("password")]));
    }
    let user = deps
        .db
        .run(move |conn| {
            let user = users::by_id(conn, user_id)?;
            let email = crate::db::email_addresses::primary_for_user(conn, user_id)?;
            Ok(user.map(|u| (u, email.map(|e| e.email))))
        })
        .await?;
    let Some((user, email)) = user else {
        return Err(Error::Conflict);
    };
    let attempts_key = email
        .or_else(|| user.username.clone())
        .unwrap_or_default()
        .to_lowercase();
    let ticket = match deps
        .consume("login_failed", None, Some(&attempts_key))
        .await?
    {
        Consumed::Allowed(ticket) => ticket,
        Consumed::Refused => return Err(too_many_attempts(Some("password"))),
    };
    if check_password(deps, vec![user], &password).await?.is_none() {
        return Err(Error::Invalid(vec![FieldError::new(
            "incorrect_password",
            Some("password"),
            "The password is not correct.",
        )]));
    }
    deps.rate_limiter.release(ticket).await?;
    session.add_record(AuthRecord::Password {
        at: AuthRecord::seconds(deps.now_ms),
        email: None,
        username: None,
        reauthenticated: true,
    });
    Ok(())
}
