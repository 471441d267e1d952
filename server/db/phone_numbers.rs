//! The `phone_numbers` table: the phone number of a user (at most one, in
//! E.164 form) and whether it was verified — what allauth asks the
//! project's adapter to keep (`get_phone`, `set_phone`,
//! `set_phone_verified`, `get_user_by_phone`). A number belongs to one
//! user: the unique index decides between concurrent signups or changes,
//! and the loser sees a unique violation.

use diesel::prelude::*;

use super::schema::phone_numbers;
use super::{DbConnection, DbError};

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = phone_numbers)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct PhoneNumber {
    pub user_id: i64,
    pub phone: String,
    pub verified: bool,
    /// Unix epoch milliseconds.
    pub created_at: i64,
}

#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = phone_numbers)]
struct NewPhoneNumber<'a> {
    user_id: i64,
    phone: &'a str,
    verified: bool,
    created_at: i64,
}

/// The user's number, if any.
pub fn for_user(conn: &mut DbConnection, user_id: i64) -> Result<Option<PhoneNumber>, DbError> {
    Ok(phone_numbers::table
        .filter(phone_numbers::user_id.eq(user_id))
        .select(PhoneNumber::as_select())
        .first(conn)
        .optional()?)
}

/// Whose number `phone` (E.164) is, verified or not.
pub fn owner(conn: &mut DbConnection, phone: &str) -> Result<Option<PhoneNumber>, DbError> {
    Ok(phone_numbers::table
        .filter(phone_numbers::phone.eq(phone))
        .select(PhoneNumber::as_select())
        .first(conn)
        .optional()?)
}

/// Gives the user `phone` in place of any number they had (allauth's
/// `set_phone`). A number of another user is a unique violation.
pub fn set(
    conn: &mut DbConnection,
    user_id: i64,
    phone: &str,
    verified: bool,
    now: i64,
) -> Result<(), DbError> {
    let updated = diesel::update(phone_numbers::table.filter(phone_numbers::user_id.eq(user_id)))
        .set((
            phone_numbers::phone.eq(phone),
            phone_numbers::verified.eq(verified),
            phone_numbers::created_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(phone_numbers::table)
            .values(&NewPhoneNumber {
                user_id,
                phone,
                verified,
                created_at: now,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Marks the user's number verified if it is still `phone` (allauth's
/// `set_phone_verified` after a login by code).
pub fn mark_verified(
    conn: &mut DbConnection,
    user_id: i64,
    phone: &str,
    _now: i64,
) -> Result<bool, DbError> {
    let updated = diesel::update(
        phone_numbers::table
            .filter(phone_numbers::user_id.eq(user_id))
            .filter(phone_numbers::phone.eq(phone)),
    )
    .set(phone_numbers::verified.eq(true))
    .execute(conn)?;
    Ok(updated > 0)
}

/// How many users have a number (verified or not).
pub fn count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(phone_numbers::table.count().get_result(conn)?)
}
