//! The `email_addresses` table: a user's addresses, which are verified and which is primary.
//!
//! Invariants the schema enforces: one row per (user, folded address); a
//! verified address belongs to one user only; at most one primary per user.

use diesel::prelude::*;

use super::schema::email_addresses;
use super::{DbConnection, DbError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = email_addresses)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct EmailAddress {
    pub id: i64,
    pub user_id: i64,
    /// As the user gave it.
    pub email: String,
    /// [`fold_email`] of `email`.
    pub email_lower: String,
    pub verified: bool,
    pub primary: bool,
}

/// An address to insert; build it with [`NewEmailAddress::new`] so `email_lower` is right.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = email_addresses)]
pub struct NewEmailAddress {
    pub user_id: i64,
    pub email: String,
    pub email_lower: String,
    pub verified: bool,
    pub primary: bool,
}

impl NewEmailAddress {
    pub fn new(user_id: i64, email: &str, verified: bool, primary: bool) -> NewEmailAddress {
        NewEmailAddress {
            user_id,
            email: email.to_owned(),
            email_lower: fold_email(email),
            verified,
            primary,
        }
    }
}

/// The case-insensitive form of an address, as stored in `email_lower`.
pub fn fold_email(email: &str) -> String {
    email.to_lowercase()
}

/// Inserts an address. Unique violations: the user already has it, it is
/// verified elsewhere (when inserted verified), or the user already has a
/// primary (when inserted primary).
pub fn insert(conn: &mut DbConnection, new: &NewEmailAddress) -> Result<EmailAddress, DbError> {
    Ok(diesel::insert_into(email_addresses::table)
        .values(new)
        // MultiConnection cannot render `as_returning()`; the plain column tuple works.
        .returning(<EmailAddress as Selectable<diesel::pg::Pg>>::construct_selection())
        .get_result::<EmailAddress>(conn)?)
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<EmailAddress>, DbError> {
    Ok(email_addresses::table
        .find(id)
        .select(EmailAddress::as_select())
        .first(conn)
        .optional()?)
}

/// Every row with this folded address, across users: verified first, then
/// primary, then oldest.
pub fn by_email_lower(
    conn: &mut DbConnection,
    email_lower: &str,
) -> Result<Vec<EmailAddress>, DbError> {
    Ok(email_addresses::table
        .filter(email_addresses::email_lower.eq(email_lower))
        .order((
            email_addresses::verified.desc(),
            email_addresses::primary.desc(),
            email_addresses::id.asc(),
        ))
        .select(EmailAddress::as_select())
        .load(conn)?)
}

/// The one verified row with this folded address, if any.
pub fn verified_by_email_lower(
    conn: &mut DbConnection,
    email_lower: &str,
) -> Result<Option<EmailAddress>, DbError> {
    Ok(email_addresses::table
        .filter(email_addresses::email_lower.eq(email_lower))
        .filter(email_addresses::verified.eq(true))
        .select(EmailAddress::as_select())
        .first(conn)
        .optional()?)
}

/// A user's addresses: primary first, then in the order they were added.
pub fn for_user(conn: &mut DbConnection, user_id: i64) -> Result<Vec<EmailAddress>, DbError> {
    Ok(email_addresses::table
        .filter(email_addresses::user_id.eq(user_id))
        .order((email_addresses::primary.desc(), email_addresses::id.asc()))
        .select(EmailAddress::as_select())
        .load(conn)?)
}

/// One user's row for a folded address.
pub fn for_user_by_email_lower(
    conn: &mut DbConnection,
    user_id: i64,
    email_lower: &str,
) -> Result<Option<EmailAddress>, DbError> {
    Ok(email_addresses::table
        .filter(email_addresses::user_id.eq(user_id))
        .filter(email_addresses::email_lower.eq(email_lower))
        .select(EmailAddress::as_select())
        .first(conn)
        .optional()?)
}

pub fn primary_for_user(
    conn: &mut DbConnection,
    user_id: i64,
) -> Result<Option<EmailAddress>, DbError> {
    Ok(email_addresses::table
        .filter(email_addresses::user_id.eq(user_id))
        .filter(email_addresses::primary.eq(true))
        .select(EmailAddress::as_select())
        .first(conn)
        .optional()?)
}

/// Marks an address verified; a unique violation when another user has it verified.
pub fn mark_verified(conn: &mut DbConnection, id: i64) -> Result<bool, DbError> {
    let n = diesel::update(email_addresses::table.find(id))
        .set(email_addresses::verified.eq(true))
        .execute(conn)?;
    Ok(n > 0)
}

/// Marks `id` verified only if it is not yet (a link key works once):
/// whether this call did it.
pub fn mark_verified_if_unverified(conn: &mut DbConnection, id: i64) -> Result<bool, DbError> {
    let n = diesel::update(
        email_addresses::table
            .find(id)
            .filter(email_addresses::verified.eq(false)),
    )
    .set(email_addresses::verified.eq(true))
    .execute(conn)?;
    Ok(n > 0)
}

/// Makes `id` the user's only primary address (in a transaction, or a
/// savepoint when one is open). Returns false, changing nothing, when `id` is
/// not one of the user's addresses.
pub fn set_primary(conn: &mut DbConnection, user_id: i64, id: i64) -> Result<bool, DbError> {
    super::transaction(conn, |conn| {
        let owned = email_addresses::table
            .find(id)
            .filter(email_addresses::user_id.eq(user_id))
            .select(email_addresses::id)
            .first::<i64>(conn)
            .optional()?;
        if owned.is_none() {
            return Ok(false);
        }
        // Clear first: the partial unique index allows one primary at a time.
        diesel::update(
            email_addresses::table
                .filter(email_addresses::user_id.eq(user_id))
                .filter(email_addresses::primary.eq(true))
                .filter(email_addresses::id.ne(id)),
        )
        .set(email_addresses::primary.eq(false))
        .execute(conn)?;
        diesel::update(email_addresses::table.find(id))
            .set(email_addresses::primary.eq(true))
            .execute(conn)?;
        Ok(true)
    })
}

/// Deletes one of the user's addresses. Returns whether it existed.
pub fn delete(conn: &mut DbConnection, user_id: i64, id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(
        email_addresses::table
            .find(id)
            .filter(email_addresses::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Serializes writers of one folded address until the transaction ends, so
/// a check-then-insert on it (signup's uniqueness check) cannot race. On
/// SQLite the caller's `BEGIN IMMEDIATE` transaction already serializes every
/// writer; on PostgreSQL this takes a transaction-scoped advisory lock keyed
/// by a hash of the address. Call it inside [`super::transaction`].
pub fn lock_address(conn: &mut DbConnection, email_lower: &str) -> Result<(), DbError> {
    use sha2::{Digest as _, Sha256};
    if conn.backend() != super::Backend::Postgres {
        return Ok(());
    }
    let digest = Sha256::digest(format!("email_addresses:{email_lower}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(i64::from_be_bytes(first))
        .execute(conn)?;
    Ok(())
}
