//! Writes of `allauth-server import django` (see `crate::import`): rows that
//! keep the ids they had in Django (users), or are found again by their
//! natural keys (an address by user and address, a TOTP or recovery-code
//! set by user and type, a WebAuthn credential by its id, a provider account
//! by provider and uid), so that a second run updates instead of adding.
//! Each function decides nothing: the importer checks allauth's rules first.

use diesel::prelude::*;

use super::schema::{email_addresses, mfa_authenticators, social_accounts, users};
use super::social_accounts::NewSocialAccount;
use super::{Backend, DbConnection, DbError};

/// Whether a row was added or an existing one was brought up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    Updated,
}

/// A user as imported: Django's id and fields, the hash as Django stored it.
#[derive(Clone, Insertable, AsChangeset)]
#[diesel(table_name = users)]
#[diesel(treat_none_as_null = true)]
pub struct ImportedUser {
    pub id: i64,
    pub username: Option<String>,
    pub username_lower: Option<String>,
    pub password_hash: Option<String>,
    pub is_active: bool,
    pub date_joined: i64,
    pub last_login: Option<i64>,
    pub first_name: String,
    pub last_name: String,
}

impl std::fmt::Debug for ImportedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Inserts `user` with its id, or updates the user of that id. An
/// Argon2id hash already stored here (the user logged in or changed the
/// password since the last import) is kept: a later run never takes a
/// user back to the password they had in Django.
pub fn upsert_user(conn: &mut DbConnection, user: &ImportedUser) -> Result<Upsert, DbError> {
    let existing: Option<Option<String>> = users::table
        .filter(users::id.eq(user.id))
        .select(users::password_hash)
        .first(conn)
        .optional()?;
    if let Some(stored) = existing {
        let mut user = user.clone();
        if stored
            .as_deref()
            .is_some_and(|h| h.starts_with("$argon2id$"))
        {
            user.password_hash = stored;
        }
        diesel::update(users::table.filter(users::id.eq(user.id)))
            .set(&user)
            .execute(conn)?;
        return Ok(Upsert::Updated);
    }
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    Ok(Upsert::Inserted)
}

/// The id of the user whose folded username is `username_lower`.
pub fn user_with_username(
    conn: &mut DbConnection,
    username_lower: &str,
) -> Result<Option<i64>, DbError> {
    Ok(users::table
        .filter(users::username_lower.eq(username_lower))
        .select(users::id)
        .first(conn)
        .optional()?)
}

/// Whether user `id` exists.
pub fn user_exists(conn: &mut DbConnection, id: i64) -> Result<bool, DbError> {
    Ok(users::table
        .filter(users::id.eq(id))
        .select(users::id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

/// The user (not `user_id`) who has `email_lower` verified, if any.
pub fn verified_elsewhere(
    conn: &mut DbConnection,
    user_id: i64,
    email_lower: &str,
) -> Result<Option<i64>, DbError> {
    Ok(email_addresses::table
        .filter(email_addresses::email_lower.eq(email_lower))
        .filter(email_addresses::verified.eq(true))
        .filter(email_addresses::user_id.ne(user_id))
        .select(email_addresses::user_id)
        .first(conn)
        .optional()?)
}

/// Sets the address `email` of `user_id` (found case-insensitively, or
/// added) to `verified` and `primary`; a primary one first makes the
/// user's other addresses non-primary.
pub fn upsert_address(
    conn: &mut DbConnection,
    user_id: i64,
    email: &str,
    verified: bool,
    primary: bool,
) -> Result<Upsert, DbError> {
    let email_lower = super::email_addresses::fold_email(email);
    let of_user = email_addresses::table.filter(email_addresses::user_id.eq(user_id));
    if primary {
        diesel::update(
            of_user
                .filter(email_addresses::email_lower.ne(&email_lower))
                .filter(email_addresses::primary.eq(true)),
        )
        .set(email_addresses::primary.eq(false))
        .execute(conn)?;
    }
    let updated = diesel::update(of_user.filter(email_addresses::email_lower.eq(&email_lower)))
        .set((
            email_addresses::email.eq(email),
            email_addresses::verified.eq(verified),
            email_addresses::primary.eq(primary),
        ))
        .execute(conn)?;
    if updated > 0 {
        return Ok(Upsert::Updated);
    }
    diesel::insert_into(email_addresses::table)
        .values(&super::email_addresses::NewEmailAddress::new(
            user_id, email, verified, primary,
        ))
        .execute(conn)?;
    Ok(Upsert::Inserted)
}

/// An authenticator as imported (`data` already in our shape, sealed).
#[derive(Clone)]
pub struct ImportedAuthenticator {
    pub user_id: i64,
    pub type_: String,
    pub data: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Replaces the data of authenticator `existing` (a row of the same user
/// and type found by the caller), or inserts a new row. A TOTP step
/// already used here is kept.
pub fn upsert_authenticator(
    conn: &mut DbConnection,
    existing: Option<i64>,
    new: &ImportedAuthenticator,
) -> Result<Upsert, DbError> {
    if let Some(id) = existing {
        diesel::update(mfa_authenticators::table.filter(mfa_authenticators::id.eq(id)))
            .set((
                mfa_authenticators::data.eq(&new.data),
                mfa_authenticators::created_at.eq(new.created_at),
                mfa_authenticators::last_used_at.eq(new.last_used_at),
                mfa_authenticators::version.eq(mfa_authenticators::version + 1),
            ))
            .execute(conn)?;
        return Ok(Upsert::Updated);
    }
    diesel::insert_into(mfa_authenticators::table)
        .values((
            mfa_authenticators::user_id.eq(new.user_id),
            mfa_authenticators::type_.eq(&new.type_),
            mfa_authenticators::data.eq(&new.data),
            mfa_authenticators::created_at.eq(new.created_at),
            mfa_authenticators::last_used_at.eq(new.last_used_at),
        ))
        .execute(conn)?;
    Ok(Upsert::Inserted)
}

/// Inserts or updates the account `(provider, uid)`; its id here.
pub fn upsert_social_account(
    conn: &mut DbConnection,
    new: &NewSocialAccount<'_>,
) -> Result<(i64, Upsert), DbError> {
    let existing = super::social_accounts::by_provider_uid(conn, new.provider, new.uid)?;
    if let Some(id) = existing.map(|a| a.id) {
        diesel::update(social_accounts::table.filter(social_accounts::id.eq(id)))
            .set((
                social_accounts::user_id.eq(new.user_id),
                social_accounts::extra_data.eq(new.extra_data),
                social_accounts::date_joined.eq(new.date_joined),
                social_accounts::last_login.eq(new.last_login),
            ))
            .execute(conn)?;
        return Ok((id, Upsert::Updated));
    }
    let id = super::social_accounts::insert(conn, new)?.id;
    Ok((id, Upsert::Inserted))
}

/// PostgreSQL: moves the id sequences of the tables the import writes past
/// their largest id, so that the next signup does not collide with an
/// imported user. (SQLite's AUTOINCREMENT follows explicit ids by itself.)
pub fn move_sequences_past_ids(conn: &mut DbConnection) -> Result<(), DbError> {
    if conn.backend() != Backend::Postgres {
        return Ok(());
    }
    for table in [
        "users",
        "email_addresses",
        "mfa_authenticators",
        "social_accounts",
        "social_tokens",
    ] {
        // setval(…, max, true): the next id is max + 1; an empty table
        // starts at 1 again.
        diesel::sql_query(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
             COALESCE((SELECT MAX(id) FROM {table}), 1), \
             (SELECT MAX(id) FROM {table}) IS NOT NULL)"
        ))
        .execute(conn)?;
    }
    Ok(())
}
