//! The `users` table: accounts, their username and password hash, and the queries on them.

use diesel::prelude::*;

use super::schema::users;
use super::{DbConnection, DbError};

/// An account row.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub username: Option<String>,
    /// [`fold_username`] of `username`; unique.
    pub username_lower: Option<String>,
    /// `None`: the user has no usable password.
    pub password_hash: Option<String>,
    pub is_active: bool,
    /// Unix epoch milliseconds.
    pub date_joined: i64,
    /// Unix epoch milliseconds.
    pub last_login: Option<i64>,
}

impl User {
    /// Whether a password login is possible at all.
    pub fn has_usable_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("is_active", &self.is_active)
            .field("date_joined", &self.date_joined)
            .field("last_login", &self.last_login)
            .finish()
    }
}

/// A user to insert; build it with [`NewUser::new`] so `username_lower` is right.
#[derive(Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub username: Option<String>,
    pub username_lower: Option<String>,
    pub password_hash: Option<String>,
    pub is_active: bool,
    pub date_joined: i64,
}

impl NewUser {
    /// An active user joining at `date_joined` (unix epoch milliseconds).
    pub fn new(username: Option<&str>, password_hash: Option<String>, date_joined: i64) -> NewUser {
        NewUser {
            username: username.map(str::to_owned),
            username_lower: username.map(fold_username),
            password_hash,
            is_active: true,
            date_joined,
        }
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("is_active", &self.is_active)
            .field("date_joined", &self.date_joined)
            .finish()
    }
}

/// The case-insensitive form of a username, as stored in `username_lower`.
pub fn fold_username(username: &str) -> String {
    username.to_lowercase()
}

/// Inserts a user; a taken username is a unique violation.
pub fn insert(conn: &mut DbConnection, new: &NewUser) -> Result<User, DbError> {
    Ok(diesel::insert_into(users::table)
        .values(new)
        // MultiConnection cannot render `as_returning()`; the plain column tuple works.
        .returning(<User as Selectable<diesel::pg::Pg>>::construct_selection())
        .get_result::<User>(conn)?)
}

/// The newest `limit` users, newest first.
pub fn newest(conn: &mut DbConnection, limit: i64) -> Result<Vec<User>, DbError> {
    Ok(users::table
        .order(users::id.desc())
        .limit(limit.max(0))
        .select(User::as_select())
        .load(conn)?)
}

pub fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Looks a user up by an already folded username (see [`fold_username`]).
pub fn by_username_lower(
    conn: &mut DbConnection,
    username_lower: &str,
) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::username_lower.eq(username_lower))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Sets or clears (`None`: unusable) the password hash. Returns whether the user exists.
pub fn set_password_hash(
    conn: &mut DbConnection,
    id: i64,
    password_hash: Option<&str>,
) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id))
        .set(users::password_hash.eq(password_hash))
        .execute(conn)?;
    Ok(n > 0)
}

/// Replaces the password hash only if it still is `expected` (a reset key
/// works once, even when two requests use it at the same moment): whether
/// it did.
pub fn replace_password_hash(
    conn: &mut DbConnection,
    id: i64,
    expected: Option<&str>,
    password_hash: &str,
) -> Result<bool, DbError> {
    let target = users::table.find(id);
    let n = match expected {
        Some(old) => diesel::update(target.filter(users::password_hash.eq(old)))
            .set(users::password_hash.eq(password_hash))
            .execute(conn)?,
        None => diesel::update(target.filter(users::password_hash.is_null()))
            .set(users::password_hash.eq(password_hash))
            .execute(conn)?,
    };
    Ok(n > 0)
}

/// Sets or clears the username (and its folded copy).
pub fn set_username(
    conn: &mut DbConnection,
    id: i64,
    username: Option<&str>,
) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::username.eq(username),
            users::username_lower.eq(username.map(fold_username)),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// Records a login at `at` (unix epoch milliseconds).
pub fn set_last_login(conn: &mut DbConnection, id: i64, at: i64) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id))
        .set(users::last_login.eq(Some(at)))
        .execute(conn)?;
    Ok(n > 0)
}

pub fn set_active(conn: &mut DbConnection, id: i64, is_active: bool) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id))
        .set(users::is_active.eq(is_active))
        .execute(conn)?;
    Ok(n > 0)
}

/// Deletes a user; their email addresses and sessions go with them (ON DELETE CASCADE).
pub fn delete(conn: &mut DbConnection, id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(users::table.find(id)).execute(conn)?;
    Ok(n > 0)
}
