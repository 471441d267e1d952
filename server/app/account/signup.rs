//! Signup with a password (allauth's headless `SignupInput`,
//! `BaseSignupForm.try_save` and `complete_signup`).
//!
//! Uniqueness of the address is decided inside the transaction that
//! inserts the account, under a lock on the folded address
//! (`email_addresses::lock_address`: SQLite's `BEGIN IMMEDIATE`, a
//! PostgreSQL advisory lock), so concurrent signups with one address make
//! one account. There is deliberately no unique index on unverified
//! addresses: allauth lets several accounts hold one unverified address when
//! `unique_email` is off, and under `prevent_enumeration = "strict"` without
//! mandatory verification; only verified addresses are unique in the schema.

use crate::app::account::accounts::{self, Deps, EmailAssessment};
use crate::app::account::email_verification;
use crate::app::account::phones;
use crate::app::security::password_validation;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::session::LiveSession;
use crate::app::{Error, FieldError};
use crate::config::{EmailVerification, SignupFieldName};
use crate::db::email_addresses::{self, EmailAddress, NewEmailAddress};
use crate::db::phone_numbers;
use crate::db::users::{self, NewUser, User};
use crate::db::DbError;
use crate::webhooks::{self, Event};
use serde_json::json;

/// The signup form as posted.
#[derive(Debug, Default)]
pub struct SignupRequest {
    pub email: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
    pub password: Option<String>,
    /// A signup by passkey (`auth/webauthn/signup`): no password; the
    /// login ends with the passkey's creation.
    pub passkey: bool,
}

/// What validation leaves to save.
struct Cleaned {
    email: Option<String>,
    username: Option<String>,
    /// E.164.
    phone: Option<String>,
    password: Option<String>,
    account_already_exists: bool,
}

/// The fields in allauth's order (signup fields first, `password` last);
/// every failing field reported.
async fn validate(deps: &Deps<'_>, input: &SignupRequest) -> Result<Cleaned, Error> {
    let account = &deps.config.account;
    let mut errors: Vec<FieldError> = Vec::new();
    let mut cleaned = Cleaned {
        email: None,
        username: None,
        phone: None,
        password: None,
        account_already_exists: false,
    };
    for field in &account.signup_fields {
        match field.name {
            SignupFieldName::Email => {
                let value = input.email.as_deref().map(str::trim).unwrap_or("");
                if value.is_empty() {
                    if field.required {
                        errors.push(accounts::required("email"));
                    }
                    continue;
                }
                match accounts::clean_email_field(deps.config, value, "email") {
                    Err(e) => errors.push(e),
                    Ok(email) => {
                        let email = email.to_lowercase();
                        let (config, folded) = (deps.config.clone(), email.clone());
                        let assessment = deps
                            .db
                            .run(move |conn| {
                                accounts::assess_unique_email(conn, &config, &folded, None)
                            })
                            .await?;
                        match assessment {
                            EmailAssessment::Taken => errors.push(accounts::email_taken("email")),
                            EmailAssessment::Hidden => cleaned.account_already_exists = true,
                            EmailAssessment::Unique => {}
                        }
                        cleaned.email = Some(email);
                    }
                }
            }
            SignupFieldName::Username => {
                let value = input.username.as_deref().map(str::trim).unwrap_or("");
                if value.is_empty() {
                    if field.required {
                        errors.push(accounts::required("username"));
                    }
                    continue;
                }
                let field_errors = accounts::username_field_errors(deps.config, value);
                if !field_errors.is_empty() {
                    errors.extend(field_errors);
                    continue;
                }
                let (config, name) = (deps.config.clone(), value.to_string());
                let checked = deps
                    .db
                    .run(move |conn| accounts::clean_username(conn, &config, &name))
                    .await?;
                match checked {
                    Ok(()) => cleaned.username = Some(value.to_string()),
                    Err(e) => errors.push(e),
                }
            }
            SignupFieldName::Phone => {
                match phones::clean_field(deps.config, input.phone.as_deref(), "phone") {
                    Err(e) => errors.push(e),
                    Ok(None) if field.required => errors.push(accounts::required("phone")),
                    Ok(None) => {}
                    Ok(Some(phone)) => {
                        if phones::owner(deps, &phone).await?.is_some() {
                            if deps.config.account.prevent_enumeration.is_enabled() {
                                cleaned.account_already_exists = true;
                            } else {
                                errors.push(phones::phone_taken("phone"));
                            }
                        }
                        cleaned.phone = Some(phone);
                    }
                }
            }
            _ => {}
        }
    }
    let password_field = account
        .signup_field(SignupFieldName::Password1)
        .filter(|_| !input.passkey);
    if let Some(field) = password_field {
        let value = input.password.as_deref().map(str::trim).unwrap_or("");
        if value.is_empty() {
            if field.required {
                errors.push(accounts::required("password"));
            }
        } else {
            let mut problems = Vec::new();
            if let Err(found) = password_validation::validate_password(account, value, &[]) {
                problems.extend(found);
            }
            if let Err(too_long) = deps.passwords.check_length(value) {
                problems.push(too_long);
            }
            if problems.is_empty() {
                cleaned.password = Some(value.to_string());
            }
            errors.extend(problems.into_iter().map(|mut e| {
                e.param = Some("password".to_string());
                e
            }));
        }
    }
    if errors.is_empty() {
        Ok(cleaned)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// What the signup transaction did.
enum Saved {
    Created(User, Option<EmailAddress>),
    /// Someone took the address meanwhile; hidden behind the mail.
    AlreadyExists,
    Invalid(FieldError),
}

/// A signup whose number another account took first: the hidden case
/// under enumeration prevention, else `phone_taken`.
fn phone_taken_meanwhile(hidden: bool) -> Saved {
    if hidden {
        Saved::AlreadyExists
    } else {
        Saved::Invalid(phones::phone_taken("phone"))
    }
}

/// Inserts the user and their address, deciding uniqueness under the lock.
async fn save(
    deps: &Deps<'_>,
    cleaned: &Cleaned,
    password_hash: Option<String>,
) -> Result<Saved, Error> {
    let config = deps.config.clone();
    let (email, typed_username, now) =
        (cleaned.email.clone(), cleaned.username.clone(), deps.now_ms);
    let phone = cleaned.phone.clone();
    let hide_taken_phone = deps.config.account.prevent_enumeration.is_enabled();
    let result = deps
        .db
        .transaction(move |conn| -> Result<Saved, DbError> {
            if let Some(email) = &email {
                email_addresses::lock_address(conn, email)?;
                match accounts::assess_unique_email(conn, &config, email, None)? {
                    EmailAssessment::Unique => {}
                    EmailAssessment::Hidden => return Ok(Saved::AlreadyExists),
                    EmailAssessment::Taken => {
                        return Ok(Saved::Invalid(accounts::email_taken("email")))
                    }
                }
            }
            if let Some(phone) = &phone {
                if phone_numbers::owner(conn, phone)?.is_some() {
                    return Ok(phone_taken_meanwhile(hide_taken_phone));
                }
            }
            let username = match &typed_username {
                Some(name) => Some(accounts::stored_username(&config, name)),
                None => {
                    let texts = [email.as_deref().unwrap_or(""), "user"];
                    accounts::generate_username(conn, &config, &texts)?
                }
            };
            let Some(username) = username else {
                return Ok(Saved::Invalid(accounts::username_taken()));
            };
            let method = if password_hash.is_some() {
                "password"
            } else {
                "passkey"
            };
            let user = users::insert(conn, &NewUser::new(Some(&username), password_hash, now))?;
            let event = Event::new("user.signed_up", user.id, json!({"method": method}));
            webhooks::emit(conn, &config, event, now)?;
            let address = match &email {
                Some(email) => Some(email_addresses::insert(
                    conn,
                    &NewEmailAddress::new(user.id, email, false, true),
                )?),
                None => None,
            };
            if let Some(phone) = &phone {
                phone_numbers::set(conn, user.id, phone, false, now)?;
            }
            Ok(Saved::Created(user, address))
        })
        .await;
    match result {
        Ok(saved) => Ok(saved),
        // The number or the username was taken between the check and the
        // insert (the unique indexes decide).
        Err(e) if e.is_unique_violation() => {
            if let Some(phone) = cleaned.phone.clone() {
                let owner = deps
                    .db
                    .run(move |conn| phone_numbers::owner(conn, &phone))
                    .await?;
                if owner.is_some() {
                    return Ok(phone_taken_meanwhile(hide_taken_phone));
                }
            }
            Ok(Saved::Invalid(accounts::username_taken()))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST auth/signup`.
pub async fn signup_create(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    input: SignupRequest,
) -> Result<(), Error> {
    // The `signup` limit is taken by the HTTP layer, before the input.
    let cleaned = validate(deps, &input).await?;
    let passkey = input.passkey;
    if session.is_authenticated() {
        return Err(Error::Conflict);
    }
    if !deps.config.account.signup_open {
        return Err(Error::Forbidden);
    }
    // Enumeration prevention: the same answer as a new account's, and the
    // owner gets an "account already exists" mail.
    let pretend = |email: Option<String>| Attempt {
        signup: true,
        passkey,
        phone: cleaned.phone.clone(),
        ..Attempt::new(deps, None, email)
    };
    // Hashed first, also for a taken address, so that both answers take
    // the same time.
    let password_hash = match &cleaned.password {
        Some(p) => Some(deps.passwords.hash(p).await?),
        None => None,
    };
    if cleaned.account_already_exists {
        return pipeline::authenticated(deps, session, pretend(cleaned.email.clone())).await;
    }
    // A generated username may be taken by a concurrent signup: try again.
    let mut saved = save(deps, &cleaned, password_hash.clone()).await?;
    for _ in 0..2 {
        let retry = matches!(&saved, Saved::Invalid(e) if e.code == "username_taken")
            && cleaned.username.is_none();
        if !retry {
            break;
        }
        saved = save(deps, &cleaned, password_hash.clone()).await?;
    }
    let (user, address) = match saved {
        Saved::Created(user, address) => (user, address),
        Saved::AlreadyExists => {
            return pipeline::authenticated(deps, session, pretend(cleaned.email.clone())).await;
        }
        Saved::Invalid(error) => return Err(Error::Invalid(vec![error])),
    };
    complete_signup(deps, session, user, address, passkey).await
}

/// allauth's `complete_signup`: the login of the new user, through the
/// pipeline (the verification stage when it applies). No authentication
/// record: a signup is not an authentication (`methods` stays empty).
async fn complete_signup(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: User,
    address: Option<EmailAddress>,
    passkey: bool,
) -> Result<(), Error> {
    if deps.config.account.email_verification == EmailVerification::Optional {
        if let Some(address) = address.filter(|a| !a.verified) {
            email_verification::send_link(deps, &address).await?;
        }
    }
    let attempt = Attempt {
        signup: true,
        passkey,
        ..Attempt::new(deps, Some(user), None)
    };
    match pipeline::authenticated(deps, session, attempt).await {
        // allauth swallows this refusal for a new account: the account
        // stays, the verification stage does not start.
        Err(Error::TooManyRequests) => Ok(()),
        other => other,
    }
}
