//! What a provider account does here (allauth's `socialaccount.internal.flows`):
//!
//! * **login**: an account already linked logs its user in; else, with
//!   email authentication, a verified address of a local account does;
//!   else the account signs up: on its own when the provider's data is
//!   enough (`auto_signup`, a free address or none needed), otherwise the
//!   login waits in the `provider_signup` stage for the missing details.
//! * **connect**: the account is linked to the logged-in user.
//! * **disconnect**: the link goes, unless the user would be left with no
//!   way to log in.
//!
//! Every login here ends in `pipeline::authenticated` with a
//! `socialaccount` record, so email verification, MFA and the rest apply
//! as to any other way in. `(provider, uid)` is unique in the database:
//! of two simultaneous first logins of one account, one creates the user
//! and the other finds it.

use serde_json::Value;

use crate::app::account::accounts::{self, Deps, EmailAssessment};
use crate::app::account::email_verification;
use crate::app::account::phones;
use crate::app::sessions::pipeline::{self, Attempt};
use crate::app::sessions::reauthentication;
use crate::app::sessions::session::{AuthRecord, Flow, LiveSession, PendingLogin, Stage};
use crate::app::{Error, FieldError};
use crate::config::{Config, EmailVerification, SignupFieldName};
use crate::db::email_addresses::{self, NewEmailAddress};
use crate::db::phone_numbers;
use crate::db::social_accounts::{self, NewSocialAccount, SocialAccount};
use crate::db::users::{self, NewUser, User};
use crate::db::{DbConnection, DbError};
use crate::email::{self, Message};
use crate::webhooks::{self, Event};
use serde_json::json;

use super::providers::{self, Provider};
use super::{Process, ProviderEmail, SocialLogin};

/// Why a provider login did not go through.
#[derive(Debug)]
pub enum Failure {
    /// allauth's `ValidationError` codes (`connected_other`).
    Code(&'static str),
    /// Signup is closed (a new account would be needed).
    SignupClosed,
    /// `process=connect` without a logged-in user.
    PermissionDenied,
    /// `process=connect` needs a recent authentication: these flows.
    Reauthenticate(Vec<Flow>),
    Error(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Error(error)
    }
}

impl From<DbError> for Failure {
    fn from(error: DbError) -> Self {
        Failure::Error(error.into())
    }
}

fn record(login: &SocialLogin, now_ms: i64) -> AuthRecord {
    AuthRecord::Socialaccount {
        at: AuthRecord::seconds(now_ms),
        provider: login.provider.clone(),
        uid: login.uid.clone(),
    }
}

fn store_tokens(
    conn: &mut DbConnection,
    config: &Config,
    account_id: i64,
    login: &SocialLogin,
) -> Result<(), DbError> {
    let (true, Some(tokens)) = (config.socialaccount.store_tokens, &login.tokens) else {
        return Ok(());
    };
    social_accounts::store_token(
        conn,
        account_id,
        login.client_id.as_deref().unwrap_or(""),
        &tokens.token,
        &tokens.token_secret,
        tokens.expires_at,
    )
}

/// The `socialaccount.connected` event of `login` (its user set by the caller).
fn connected(login: &SocialLogin) -> Event {
    Event::new(
        "socialaccount.connected",
        0,
        json!({"provider": login.provider, "uid": login.uid}),
    )
}

fn new_link<'a>(
    user_id: i64,
    login: &'a SocialLogin,
    extra: &'a str,
    now: i64,
) -> NewSocialAccount<'a> {
    NewSocialAccount {
        user_id,
        provider: &login.provider,
        uid: &login.uid,
        extra_data: extra,
        date_joined: now,
        last_login: now,
    }
}

/// The linked account of `login`, refreshed with the provider's data.
async fn existing(
    deps: &Deps<'_>,
    login: &SocialLogin,
) -> Result<Option<(SocialAccount, User)>, Error> {
    let (config, login, now) = (deps.config.clone(), login.clone(), deps.now_ms);
    Ok(deps
        .db
        .transaction(move |conn| {
            let Some(account) =
                social_accounts::by_provider_uid(conn, &login.provider, &login.uid)?
            else {
                return Ok(None);
            };
            let extra = login.extra_data.to_string();
            social_accounts::record_login(conn, account.id, &extra, now)?;
            store_tokens(conn, &config, account.id, &login)?;
            Ok(users::by_id(conn, account.user_id)?.map(|user| (account, user)))
        })
        .await?)
}

/// A provider login (`process=login`, or `connect`) that the provider has
/// vouched for: the session ends logged in, waiting in a stage, or
/// unchanged with a [`Failure`].
pub async fn complete(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    provider: &Provider,
    login: SocialLogin,
    process: Process,
) -> Result<(), Failure> {
    match process {
        Process::Connect => connect(deps, session, provider, login).await,
        Process::Login => authenticate(deps, session, provider, login).await,
    }
}

async fn authenticate(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    provider: &Provider,
    login: SocialLogin,
) -> Result<(), Failure> {
    // allauth logs the current user out first; a provider signup that was
    // waiting is dropped (`clear_pending_signup`).
    if session.is_authenticated() {
        session.restart();
    }
    session.end_login();
    if let Some((_, user)) = existing(deps, &login).await? {
        return log_in(deps, session, user, &login).await;
    }
    if let Some(user) = by_email(deps, provider, &login).await? {
        return log_in(deps, session, user, &login).await;
    }
    signup(deps, session, login).await
}

async fn log_in(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: User,
    login: &SocialLogin,
) -> Result<(), Failure> {
    if !user.is_active {
        // As a password login of an inactive account: still anonymous.
        return Ok(());
    }
    let attempt = Attempt {
        social: true,
        ..Attempt::new(deps, Some(user), None)
    }
    .with_record(record(login, deps.now_ms));
    Ok(pipeline::authenticated(deps, session, attempt).await?)
}

/// Email authentication: a verified address from the provider that a
/// local account has (its verified row preferred). An address the provider
/// does not vouch for never gets here. The account's password is wiped if
/// the address was not verified on it (someone may have signed up with
/// the victim's address); with `email_authentication_auto_connect` the
/// provider account is linked.
async fn by_email(
    deps: &Deps<'_>,
    provider: &Provider,
    login: &SocialLogin,
) -> Result<Option<User>, Error> {
    if !provider.email_authentication(deps.config) {
        return Ok(None);
    }
    let verified: Vec<String> = login
        .emails
        .iter()
        .filter(|e| e.verified)
        .map(|e| e.email.clone())
        .collect();
    if verified.is_empty() {
        return Ok(None);
    }
    let (config, link, now) = (deps.config.clone(), login.clone(), deps.now_ms);
    let (name, origin) = (provider.name.clone(), deps.change_origin());
    let found = deps
        .db
        .transaction(move |conn| {
            for email in &verified {
                let folded = email_addresses::fold_email(email);
                let Some(user) = accounts::users_with_email(conn, &folded, true)?
                    .into_iter()
                    .next()
                else {
                    continue;
                };
                let address_verified =
                    email_addresses::for_user_by_email_lower(conn, user.id, &folded)?
                        .is_some_and(|a| a.verified);
                if !address_verified && user.has_usable_password() {
                    users::set_password_hash(conn, user.id, None)?;
                }
                if config.socialaccount.email_authentication_auto_connect {
                    let extra = link.extra_data.to_string();
                    let account =
                        social_accounts::insert(conn, &new_link(user.id, &link, &extra, now))?;
                    store_tokens(conn, &config, account.id, &link)?;
                    let message = Message::SocialAccountConnected {
                        provider: name.clone(),
                        origin: origin.clone(),
                    };
                    email::notify(conn, &config, user.id, message, now)?;
                    webhooks::emit(conn, &config, connected(&link).with_user(user.id), now)?;
                }
                return users::by_id(conn, user.id);
            }
            Ok(None)
        })
        .await;
    match found {
        Ok(user) => Ok(user),
        // Linked by a simultaneous login meanwhile: that link's user.
        Err(e) if e.is_unique_violation() => Ok(existing(deps, login).await?.map(|(_, u)| u)),
        Err(e) => Err(e.into()),
    }
}

/// allauth's `process_signup`: a new account from the provider's data,
/// or the `provider_signup` stage when that is not enough.
async fn signup(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    login: SocialLogin,
) -> Result<(), Failure> {
    if !deps.config.account.signup_open {
        return Err(Failure::SignupClosed);
    }
    let mut auto = deps.config.socialaccount.auto_signup;
    if auto {
        match login.email().map(str::to_string) {
            Some(email) => {
                let (config, folded) = (deps.config.clone(), email_addresses::fold_email(&email));
                let assessment = deps
                    .db
                    .run(move |conn| accounts::assess_unique_email(conn, &config, &folded, None))
                    .await?;
                match assessment {
                    EmailAssessment::Unique => {}
                    EmailAssessment::Taken => auto = false,
                    // Enumeration prevention: as if a verification mail
                    // went out; the owner is told an account exists.
                    EmailAssessment::Hidden => {
                        if let Some((_, user)) = existing(deps, &login).await? {
                            return log_in(deps, session, user, &login).await;
                        }
                        return pretend(deps, session, email).await;
                    }
                }
            }
            None => {
                if providers::email_required(deps.config) {
                    auto = false;
                }
            }
        }
    }
    // allauth's `process_auto_signup_phone`: a required number, which
    // providers do not give, is asked for.
    if deps
        .config
        .account
        .signup_field_required(SignupFieldName::Phone)
    {
        auto = false;
    }
    if !auto {
        return ask_for_details(deps, session, login).await;
    }
    let details = Details {
        email: login.email().map(str::to_string),
        username: login.username.clone(),
        typed_username: false,
        phone: None,
    };
    match create_account(deps, &login, details).await? {
        Created::User(user) => finish_signup(deps, session, user, &login).await,
        // Taken meanwhile: ask, as when it was taken from the start.
        Created::EmailTaken | Created::UsernameTaken | Created::PhoneTaken => {
            ask_for_details(deps, session, login).await
        }
        Created::Linked(user) => log_in(deps, session, user, &login).await,
    }
}

/// The `provider_signup` stage: the details the provider did not give
/// (or that are taken) are asked for. Unless the account was just linked
/// by a simultaneous first login of it (which took the address): then
/// that login's user it is.
async fn ask_for_details(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    login: SocialLogin,
) -> Result<(), Failure> {
    if let Some((_, user)) = existing(deps, &login).await? {
        return log_in(deps, session, user, &login).await;
    }
    session.begin_login(PendingLogin {
        user_id: None,
        email: None,
        phone: None,
        signup: true,
        passkey: false,
        social: true,
        started_at: deps.now_ms,
        records: Vec::new(),
        stage: Stage::ProviderSignup {
            login: Box::new(login),
        },
    });
    Ok(())
}

/// A signup whose address belongs to someone else, under enumeration
/// prevention: the same answer as a real signup's verification stage.
async fn pretend(deps: &Deps<'_>, session: &mut LiveSession, email: String) -> Result<(), Failure> {
    let attempt = Attempt {
        signup: true,
        social: true,
        ..Attempt::new(deps, None, Some(email))
    };
    Ok(pipeline::authenticated(deps, session, attempt).await?)
}

/// The details a new account gets.
struct Details {
    email: Option<String>,
    username: Option<String>,
    /// Typed in the provider signup form (a taken one is an error, not
    /// replaced by a generated one).
    typed_username: bool,
    /// E.164, typed in the provider signup form (stored unverified; the
    /// login then waits in `verify_phone`).
    phone: Option<String>,
}

enum Created {
    User(User),
    /// The provider account was linked by a simultaneous login: its user.
    Linked(User),
    EmailTaken,
    UsernameTaken,
    PhoneTaken,
}

/// allauth's `save_user` + `setup_user_email`: the user (no usable
/// password), the addresses (the chosen one first, then the provider's,
/// each once, none that another account has), the link and its tokens, in
/// one transaction under the address lock.
async fn create_account(
    deps: &Deps<'_>,
    login: &SocialLogin,
    details: Details,
) -> Result<Created, Error> {
    let (config, link, now) = (deps.config.clone(), login.clone(), deps.now_ms);
    let phone = details.phone.clone();
    let result = deps
        .db
        .transaction(move |conn| -> Result<Created, DbError> {
            if let Some(email) = &details.email {
                let folded = email_addresses::fold_email(email);
                email_addresses::lock_address(conn, &folded)?;
                if accounts::assess_unique_email(conn, &config, &folded, None)?
                    != EmailAssessment::Unique
                {
                    return Ok(Created::EmailTaken);
                }
            }
            let username = match details.username.as_deref() {
                Some(name) if details.typed_username => {
                    if accounts::clean_username(conn, &config, name)?.is_err() {
                        return Ok(Created::UsernameTaken);
                    }
                    Some(accounts::stored_username(&config, name))
                }
                Some(name)
                    if accounts::username_field_errors(&config, name).is_empty()
                        && accounts::clean_username(conn, &config, name)?.is_ok() =>
                {
                    Some(accounts::stored_username(&config, name))
                }
                _ => {
                    let texts = [
                        link.first_name.as_deref().unwrap_or(""),
                        link.last_name.as_deref().unwrap_or(""),
                        details.email.as_deref().unwrap_or(""),
                        link.username.as_deref().unwrap_or(""),
                        "user",
                    ];
                    accounts::generate_username(conn, &config, &texts)?
                }
            };
            let Some(username) = username else {
                return Ok(Created::UsernameTaken);
            };
            if let Some(phone) = &details.phone {
                if phone_numbers::owner(conn, phone)?.is_some() {
                    return Ok(Created::PhoneTaken);
                }
            }
            let user = users::insert(conn, &NewUser::new(Some(&username), None, now))?;
            if let Some(phone) = &details.phone {
                phone_numbers::set(conn, user.id, phone, false, now)?;
            }
            let mut addresses: Vec<ProviderEmail> = Vec::new();
            if let Some(email) = &details.email {
                addresses.push(ProviderEmail {
                    email: email.to_lowercase(),
                    verified: false,
                    primary: true,
                });
            }
            for address in &link.emails {
                match addresses.iter_mut().find(|a| a.email == address.email) {
                    Some(known) => known.verified |= address.verified,
                    None => addresses.push(address.clone()),
                }
            }
            let primary = addresses
                .iter()
                .position(|a| a.primary && a.verified)
                .or_else(|| addresses.iter().position(|a| a.primary))
                .unwrap_or(0);
            for (i, address) in addresses.iter().enumerate() {
                let folded = email_addresses::fold_email(&address.email);
                if i != 0
                    && accounts::assess_unique_email(conn, &config, &folded, Some(user.id))?
                        != EmailAssessment::Unique
                {
                    continue;
                }
                if address.verified
                    && email_addresses::verified_by_email_lower(conn, &folded)?.is_some()
                {
                    continue;
                }
                email_addresses::insert(
                    conn,
                    &NewEmailAddress::new(user.id, &address.email, address.verified, i == primary),
                )?;
            }
            let extra = link.extra_data.to_string();
            let account = social_accounts::insert(conn, &new_link(user.id, &link, &extra, now))?;
            store_tokens(conn, &config, account.id, &link)?;
            let event = Event::new(
                "user.signed_up",
                user.id,
                json!({"method": "socialaccount", "provider": link.provider}),
            );
            webhooks::emit(conn, &config, event, now)?;
            Ok(Created::User(user))
        })
        .await;
    match result {
        Ok(created) => Ok(created),
        Err(e) if e.is_unique_violation() => match existing(deps, login).await? {
            Some((_, user)) => Ok(Created::Linked(user)),
            // A number or a username taken between the check and the insert.
            None => match phone {
                Some(phone) if phones::owner(deps, &phone).await?.is_some() => {
                    Ok(Created::PhoneTaken)
                }
                _ => Ok(Created::UsernameTaken),
            },
        },
        Err(e) => Err(e.into()),
    }
}

/// allauth's `complete_social_signup`: the new user's login through the
/// pipeline (verification by the social rule), with the provider recorded.
async fn finish_signup(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    user: User,
    login: &SocialLogin,
) -> Result<(), Failure> {
    if email_verification::verification_for(deps.config, true) == EmailVerification::Optional {
        let user_id = user.id;
        let unverified = deps
            .db
            .run(move |conn| email_addresses::primary_for_user(conn, user_id))
            .await?
            .filter(|a| !a.verified);
        if let Some(address) = unverified {
            email_verification::send_link(deps, &address).await?;
        }
    }
    let attempt = Attempt {
        signup: true,
        social: true,
        ..Attempt::new(deps, Some(user), None)
    }
    .with_record(record(login, deps.now_ms));
    match pipeline::authenticated(deps, session, attempt).await {
        // As for a password signup: the account stays, the stage does not start.
        Err(Error::TooManyRequests) => Ok(()),
        other => Ok(other?),
    }
}

/// `process=connect`: the provider account is linked to the logged-in
/// user (after a recent authentication when `reauthentication_required`).
async fn connect(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    provider: &Provider,
    login: SocialLogin,
) -> Result<(), Failure> {
    let Some(user) = session.user.clone() else {
        return Err(Failure::PermissionDenied);
    };
    if deps.config.account.reauthentication_required {
        if let Some(flows) = reauthentication::required(deps, session, &user).await? {
            return Err(Failure::Reauthenticate(flows));
        }
    }
    let (config, now) = (deps.config.clone(), deps.now_ms);
    let (name, origin) = (provider.name.clone(), deps.change_origin());
    let result = deps
        .db
        .transaction(move |conn| -> Result<bool, DbError> {
            match social_accounts::by_provider_uid(conn, &login.provider, &login.uid)? {
                Some(account) if account.user_id != user.id => Ok(false),
                Some(account) => {
                    social_accounts::record_login(
                        conn,
                        account.id,
                        &login.extra_data.to_string(),
                        now,
                    )?;
                    store_tokens(conn, &config, account.id, &login)?;
                    Ok(true)
                }
                None => {
                    let extra = login.extra_data.to_string();
                    let account =
                        social_accounts::insert(conn, &new_link(user.id, &login, &extra, now))?;
                    store_tokens(conn, &config, account.id, &login)?;
                    let message = Message::SocialAccountConnected {
                        provider: name,
                        origin,
                    };
                    email::notify(conn, &config, user.id, message, now)?;
                    webhooks::emit(conn, &config, connected(&login).with_user(user.id), now)?;
                    Ok(true)
                }
            }
        })
        .await;
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::Code("connected_other")),
        // Linked by a simultaneous request; to whom decides the answer.
        Err(e) if e.is_unique_violation() => Err(Failure::Code("connected_other")),
        Err(e) => Err(Failure::Error(e.into())),
    }
}

/// The provider signup waiting in this session, if any.
pub fn pending_signup(deps: &Deps<'_>, session: &LiveSession) -> Option<SocialLogin> {
    session
        .data
        .live_login(deps.config, deps.now_ms)
        .and_then(|l| match &l.stage {
            Stage::ProviderSignup { login } => Some((**login).clone()),
            _ => None,
        })
}

/// What `GET auth/provider/signup` shows: the account to be, with the
/// address and username it would get.
#[derive(Debug, Clone)]
pub struct SignupInfo {
    pub login: SocialLogin,
    pub email: Option<String>,
    pub username: Option<String>,
}

pub fn signup_info(login: SocialLogin) -> SignupInfo {
    SignupInfo {
        email: login.email().map(str::to_string),
        username: login.username.clone(),
        login,
    }
}

/// The provider signup form (`email`, `username`, as `signup_fields`
/// and `socialaccount.email_required` ask).
#[derive(Debug, Default)]
pub struct SignupForm {
    pub email: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
}

/// `POST auth/provider/signup`: validates the missing details, creates
/// the account and continues its login. `Ok(false)`: no provider signup
/// is pending (409).
pub async fn signup_complete(
    deps: &Deps<'_>,
    session: &mut LiveSession,
    form: SignupForm,
) -> Result<bool, Failure> {
    let Some(login) = pending_signup(deps, session) else {
        return Ok(false);
    };
    if !deps.config.account.signup_open {
        return Err(Failure::SignupClosed);
    }
    let config = deps.config;
    let mut errors = Vec::new();
    let mut email = None;
    let mut hidden = false;
    let value = form.email.as_deref().map(str::trim).unwrap_or("");
    if value.is_empty() {
        if providers::email_required(config) {
            errors.push(accounts::required("email"));
        }
    } else {
        match accounts::clean_email_field(config, value, "email") {
            Err(e) => errors.push(e),
            Ok(clean) => {
                let folded = email_addresses::fold_email(&clean);
                let config_owned = config.clone();
                let assessment = deps
                    .db
                    .run(move |conn| {
                        accounts::assess_unique_email(conn, &config_owned, &folded, None)
                    })
                    .await?;
                match assessment {
                    EmailAssessment::Unique => {}
                    EmailAssessment::Taken => errors.push(accounts::email_taken("email")),
                    EmailAssessment::Hidden => hidden = true,
                }
                email = Some(clean.to_lowercase());
            }
        }
    }
    let mut username = None;
    if config
        .account
        .signup_field(SignupFieldName::Username)
        .is_some()
    {
        let value = form.username.as_deref().map(str::trim).unwrap_or("");
        if value.is_empty() {
            if config.account.username_required() {
                errors.push(accounts::required("username"));
            }
        } else {
            let field_errors = accounts::username_field_errors(config, value);
            if field_errors.is_empty() {
                let (config_owned, name) = (config.clone(), value.to_string());
                match deps
                    .db
                    .run(move |conn| accounts::clean_username(conn, &config_owned, &name))
                    .await?
                {
                    Ok(()) => username = Some(value.to_string()),
                    Err(e) => errors.push(e),
                }
            } else {
                errors.extend(field_errors);
            }
        }
    }
    let mut phone = None;
    if let Some(field) = config.account.signup_field(SignupFieldName::Phone) {
        match phones::clean_field(config, form.phone.as_deref(), "phone") {
            Err(e) => errors.push(e),
            Ok(None) if field.required => errors.push(accounts::required("phone")),
            Ok(None) => {}
            Ok(Some(number)) => {
                if phones::owner(deps, &number).await?.is_some() {
                    if config.account.prevent_enumeration.is_enabled() {
                        hidden = true;
                    } else {
                        errors.push(phones::phone_taken("phone"));
                    }
                }
                phone = Some(number);
            }
        }
    }
    if !errors.is_empty() {
        return Err(Failure::Error(Error::Invalid(errors)));
    }
    session.end_login();
    if hidden {
        // As a signup with a taken address or number: the same answer as a
        // new account's, and no account.
        let attempt = Attempt {
            signup: true,
            social: true,
            phone,
            ..Attempt::new(deps, None, email)
        };
        pipeline::authenticated(deps, session, attempt).await?;
        return Ok(true);
    }
    let typed_username = username.is_some();
    let details = Details {
        email,
        username: username.or_else(|| login.username.clone()),
        typed_username,
        phone,
    };
    match create_account(deps, &login, details).await? {
        Created::User(user) => finish_signup(deps, session, user, &login).await?,
        Created::Linked(user) => log_in(deps, session, user, &login).await?,
        Created::EmailTaken => {
            return Err(Failure::Error(Error::Invalid(vec![accounts::email_taken(
                "email",
            )])))
        }
        Created::UsernameTaken => {
            return Err(Failure::Error(Error::Invalid(vec![
                accounts::username_taken(),
            ])))
        }
        Created::PhoneTaken => {
            return Err(Failure::Error(Error::Invalid(vec![phones::phone_taken(
                "phone",
            )])))
        }
    }
    Ok(true)
}

/// One connected account, as listed.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub uid: String,
    pub display: String,
    /// The configured provider, if it still is.
    pub provider: Option<Provider>,
    pub provider_id: String,
}

fn view(config: &Config, account: &SocialAccount) -> AccountView {
    let provider = providers::get(config, &account.provider, None).or_else(|| {
        providers::list(config)
            .into_iter()
            .find(|p| p.sub_id == account.provider)
    });
    let extra: Value = serde_json::from_str(&account.extra_data).unwrap_or(Value::Null);
    let (name, id) = provider
        .as_ref()
        .map(|p| (p.name.clone(), p.id.clone()))
        .unwrap_or_else(|| (account.provider.clone(), account.provider.clone()));
    AccountView {
        uid: account.uid.clone(),
        display: super::display(&name, &id, &extra),
        provider,
        provider_id: account.provider.clone(),
    }
}

/// The user's connected accounts.
pub async fn list(deps: &Deps<'_>, user_id: i64) -> Result<Vec<AccountView>, Error> {
    let accounts = deps
        .db
        .run(move |conn| social_accounts::for_user(conn, user_id))
        .await?;
    Ok(accounts.iter().map(|a| view(deps.config, a)).collect())
}

fn refused(code: &'static str, message: &str) -> Error {
    Error::Invalid(vec![FieldError::new(code, None, message)])
}

/// `DELETE account/providers`: removes the link, unless it is the last
/// one of a user who could then no longer log in (allauth's
/// `validate_disconnect`). `Err(Failure::Reauthenticate)` under
/// `reauthentication_required` without a recent authentication.
pub async fn disconnect(
    deps: &Deps<'_>,
    session: &LiveSession,
    provider: &str,
    uid: &str,
) -> Result<Vec<AccountView>, Failure> {
    let Some(user) = session.user.clone() else {
        return Err(Failure::PermissionDenied);
    };
    let user_id = user.id;
    let (provider_owned, uid_owned) = (provider.to_string(), uid.to_string());
    let (accounts, row) = deps
        .db
        .run(move |conn| {
            let accounts = social_accounts::for_user(conn, user_id)?;
            let row = users::by_id(conn, user_id)?;
            Ok((accounts, row))
        })
        .await?;
    let Some(account) = accounts
        .iter()
        .find(|a| a.provider == provider_owned && a.uid == uid_owned)
        .cloned()
    else {
        return Err(Failure::Error(refused(
            "account_not_found",
            "The account was not found.",
        )));
    };
    if accounts.len() == 1 {
        if deps.config.socialaccount.only {
            return Err(Failure::Error(refused(
                "disconnect_last",
                "You cannot disconnect your last remaining third-party account.",
            )));
        }
        if !row.as_ref().is_some_and(User::has_usable_password) {
            return Err(Failure::Error(refused(
                "no_password",
                "Your account has no password set up.",
            )));
        }
        if deps.config.account.email_verification == EmailVerification::Mandatory
            && !email_verification::has_verified_email(deps, user_id, None).await?
        {
            return Err(Failure::Error(refused(
                "no_verified_email",
                "Your account has no verified email address.",
            )));
        }
    }
    if deps.config.account.reauthentication_required {
        if let Some(flows) = reauthentication::required(deps, session, &user).await? {
            return Err(Failure::Reauthenticate(flows));
        }
    }
    let (account_id, config, now) = (account.id, deps.config.clone(), deps.now_ms);
    let (provider_id, uid) = (account.provider.clone(), account.uid.clone());
    let message = Message::SocialAccountDisconnected {
        provider: view(deps.config, &account)
            .provider
            .map_or_else(|| account.provider.clone(), |p| p.name),
        origin: deps.change_origin(),
    };
    deps.db
        .transaction(move |conn| {
            if social_accounts::delete(conn, user_id, account_id)? {
                email::notify(conn, &config, user_id, message, now)?;
                let event = Event::new(
                    "socialaccount.disconnected",
                    user_id,
                    json!({"provider": provider_id, "uid": uid}),
                );
                webhooks::emit(conn, &config, event, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(list(deps, user_id).await?)
}
