//! The `mfa_authenticators` table: a user's second factors (allauth's
//! `mfa.Authenticator`). `data` is the JSON allauth keeps for each type, read
//! and written by `app::mfa`; this module only stores it. Using a code is a
//! conditional UPDATE (a newer TOTP step, or `data` at the version it was
//! read), so of concurrent uses of one code exactly one succeeds.

use diesel::prelude::*;

use super::schema::mfa_authenticators;
use super::{DbConnection, DbError};

/// The `type` column: allauth's `Authenticator.Type` values.
pub const TOTP: &str = "totp";
pub const RECOVERY_CODES: &str = "recovery_codes";
pub const WEBAUTHN: &str = "webauthn";

/// An authenticator row. `Debug` leaves `data` out: it holds sealed secrets.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = mfa_authenticators)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Authenticator {
    pub id: i64,
    pub user_id: i64,
    pub type_: String,
    pub data: String,
    /// Unix epoch milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// TOTP: the last time step accepted.
    pub last_step: Option<i64>,
    pub version: i64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("type", &self.type_)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Insertable)]
#[diesel(table_name = mfa_authenticators)]
pub struct NewAuthenticator {
    pub user_id: i64,
    pub type_: String,
    pub data: String,
    pub created_at: i64,
    pub last_step: Option<i64>,
}

/// Inserts an authenticator. A second TOTP or recovery-code set for the
/// same user is a unique violation.
pub fn insert(conn: &mut DbConnection, new: &NewAuthenticator) -> Result<Authenticator, DbError> {
    Ok(diesel::insert_into(mfa_authenticators::table)
        .values(new)
        // MultiConnection cannot render `as_returning()`; the plain column tuple works.
        .returning(<Authenticator as Selectable<diesel::pg::Pg>>::construct_selection())
        .get_result::<Authenticator>(conn)?)
}

/// The user's authenticators, oldest first (allauth's default order).
pub fn for_user(conn: &mut DbConnection, user_id: i64) -> Result<Vec<Authenticator>, DbError> {
    Ok(mfa_authenticators::table
        .filter(mfa_authenticators::user_id.eq(user_id))
        .order(mfa_authenticators::id.asc())
        .select(Authenticator::as_select())
        .load(conn)?)
}

/// The user's authenticator of `type_` (the oldest, for WebAuthn).
pub fn of_type(
    conn: &mut DbConnection,
    user_id: i64,
    type_: &str,
) -> Result<Option<Authenticator>, DbError> {
    Ok(mfa_authenticators::table
        .filter(mfa_authenticators::user_id.eq(user_id))
        .filter(mfa_authenticators::type_.eq(type_))
        .order(mfa_authenticators::id.asc())
        .select(Authenticator::as_select())
        .first(conn)
        .optional()?)
}

/// The distinct types the user has, in no particular order.
pub fn types_for_user(conn: &mut DbConnection, user_id: i64) -> Result<Vec<String>, DbError> {
    Ok(mfa_authenticators::table
        .filter(mfa_authenticators::user_id.eq(user_id))
        .select(mfa_authenticators::type_)
        .distinct()
        .load(conn)?)
}

/// Deletes one authenticator of the user; whether it existed.
pub fn delete(conn: &mut DbConnection, user_id: i64, id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(
        mfa_authenticators::table
            .filter(mfa_authenticators::id.eq(id))
            .filter(mfa_authenticators::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes the user's authenticators of `type_`; how many.
pub fn delete_of_type(
    conn: &mut DbConnection,
    user_id: i64,
    type_: &str,
) -> Result<usize, DbError> {
    Ok(diesel::delete(
        mfa_authenticators::table
            .filter(mfa_authenticators::user_id.eq(user_id))
            .filter(mfa_authenticators::type_.eq(type_)),
    )
    .execute(conn)?)
}

/// Takes TOTP step `step` for authenticator `id` at `now`, if no code of
/// that step or a later one was accepted before: one conditional UPDATE,
/// so a code is accepted once even when it arrives twice at the same time.
pub fn take_totp_step(
    conn: &mut DbConnection,
    id: i64,
    step: i64,
    now: i64,
) -> Result<bool, DbError> {
    let n = diesel::update(
        mfa_authenticators::table
            .filter(mfa_authenticators::id.eq(id))
            .filter(
                mfa_authenticators::last_step
                    .is_null()
                    .or(mfa_authenticators::last_step.lt(step)),
            ),
    )
    .set((
        mfa_authenticators::last_step.eq(step),
        mfa_authenticators::last_used_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Replaces `data` if the row is still at `version` (compare-and-set);
/// with `used_at`, records a use too. Whether it was replaced.
pub fn replace_data(
    conn: &mut DbConnection,
    id: i64,
    version: i64,
    data: &str,
    used_at: Option<i64>,
) -> Result<bool, DbError> {
    let target = mfa_authenticators::table
        .filter(mfa_authenticators::id.eq(id))
        .filter(mfa_authenticators::version.eq(version));
    let n = match used_at {
        Some(now) => diesel::update(target)
            .set((
                mfa_authenticators::data.eq(data),
                mfa_authenticators::version.eq(version + 1),
                mfa_authenticators::last_used_at.eq(now),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                mfa_authenticators::data.eq(data),
                mfa_authenticators::version.eq(version + 1),
            ))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Records a use of authenticator `id` at `now`.
pub fn record_use(conn: &mut DbConnection, id: i64, now: i64) -> Result<(), DbError> {
    diesel::update(mfa_authenticators::table.filter(mfa_authenticators::id.eq(id)))
        .set(mfa_authenticators::last_used_at.eq(now))
        .execute(conn)?;
    Ok(())
}
