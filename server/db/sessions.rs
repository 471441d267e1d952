//! The `sessions` table: browser and app sessions, found by the SHA-256 of their token.
//!
//! The token (cookie value or `X-Session-Token`) is never stored; callers hash
//! it and pass the lowercase hex digest as `key_hash`. `data` is JSON owned by
//! the application layer (the typed pending-flow state among it).

use diesel::prelude::*;

use super::schema::sessions;
use super::{DbConnection, DbError};

/// Which kind of client a session serves; stored as `'app'` or `'browser'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    App,
    Browser,
}

impl Client {
    pub fn as_str(self) -> &'static str {
        match self {
            Client::App => "app",
            Client::Browser => "browser",
        }
    }

    pub fn parse(s: &str) -> Option<Client> {
        match s {
            "app" => Some(Client::App),
            "browser" => Some(Client::Browser),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Session {
    pub id: i64,
    pub key_hash: String,
    /// `None` while nobody is logged in (e.g. a pending login or signup).
    pub user_id: Option<i64>,
    /// `'app'` or `'browser'`; see [`Session::client`].
    pub client: String,
    /// JSON written by the application layer.
    pub data: String,
    /// Unix epoch milliseconds, like the two below.
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Bumped by every change of `data`, `user_id` or `key_hash`; those
    /// changes are compare-and-set on it ([`update_if_version`]).
    pub version: i64,
}

impl Session {
    /// The client kind; `None` cannot happen while the CHECK constraint holds.
    pub fn client(&self) -> Option<Client> {
        Client::parse(&self.client)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    pub key_hash: String,
    pub user_id: Option<i64>,
    pub client: String,
    pub data: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl NewSession {
    /// A session created at `now` and living until `expires_at` (both unix
    /// epoch milliseconds), with empty data (`{}`) and no user.
    pub fn new(key_hash: String, client: Client, now: i64, expires_at: i64) -> NewSession {
        NewSession {
            key_hash,
            user_id: None,
            client: client.as_str().to_owned(),
            data: "{}".to_owned(),
            created_at: now,
            expires_at,
            last_seen_at: now,
            ip: None,
            user_agent: None,
        }
    }
}

/// Columns to change on a session; `None` leaves a column as it is
/// (`Some(None)` clears a nullable one).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = sessions)]
pub struct SessionUpdate {
    /// A new token hash, when the key is rotated (at login).
    pub key_hash: Option<String>,
    pub user_id: Option<Option<i64>>,
    pub data: Option<String>,
    pub expires_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub ip: Option<Option<String>>,
    pub user_agent: Option<Option<String>>,
    pub created_at: Option<i64>,
}

impl SessionUpdate {
    fn is_empty(&self) -> bool {
        self.created_at.is_none()
            && self.key_hash.is_none()
            && self.user_id.is_none()
            && self.data.is_none()
            && self.expires_at.is_none()
            && self.last_seen_at.is_none()
            && self.ip.is_none()
            && self.user_agent.is_none()
    }
}

pub fn insert(conn: &mut DbConnection, new: &NewSession) -> Result<Session, DbError> {
    Ok(diesel::insert_into(sessions::table)
        .values(new)
        // MultiConnection cannot render `as_returning()`; the plain column tuple works.
        .returning(<Session as Selectable<diesel::pg::Pg>>::construct_selection())
        .get_result::<Session>(conn)?)
}

/// The live session with this token hash: one read on the unique index.
/// A session that expired at or before `now` is not returned.
pub fn by_key_hash(
    conn: &mut DbConnection,
    key_hash: &str,
    now: i64,
) -> Result<Option<Session>, DbError> {
    Ok(sessions::table
        .filter(sessions::key_hash.eq(key_hash))
        .filter(sessions::expires_at.gt(now))
        .select(Session::as_select())
        .first(conn)
        .optional()?)
}

/// A session by id, expired or not.
pub fn by_id(conn: &mut DbConnection, id: i64) -> Result<Option<Session>, DbError> {
    Ok(sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()?)
}

/// A user's live sessions, oldest first.
pub fn for_user(conn: &mut DbConnection, user_id: i64, now: i64) -> Result<Vec<Session>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .order(sessions::id.asc())
        .select(Session::as_select())
        .load(conn)?)
}

/// Changes the given columns without touching the version (activity
/// tracking). Returns whether the session exists.
pub fn update(conn: &mut DbConnection, id: i64, changes: &SessionUpdate) -> Result<bool, DbError> {
    if changes.is_empty() {
        return Ok(by_id(conn, id)?.is_some());
    }
    let n = diesel::update(sessions::table.find(id))
        .set(changes)
        .execute(conn)?;
    Ok(n > 0)
}

/// Changes the given columns and bumps the version, if the row still has
/// `version` (compare-and-set). Returns whether it did: `false` means that
/// another request changed (or ended) the session since it was read.
pub fn update_if_version(
    conn: &mut DbConnection,
    id: i64,
    version: i64,
    changes: &SessionUpdate,
) -> Result<bool, DbError> {
    let target = sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::version.eq(version));
    let n = if changes.is_empty() {
        diesel::update(target)
            .set(sessions::version.eq(version + 1))
            .execute(conn)?
    } else {
        diesel::update(target)
            .set((changes, sessions::version.eq(version + 1)))
            .execute(conn)?
    };
    Ok(n > 0)
}

/// Records activity at `last_seen_at` and moves the expiry (both unix epoch milliseconds).
pub fn touch(
    conn: &mut DbConnection,
    id: i64,
    last_seen_at: i64,
    expires_at: i64,
) -> Result<bool, DbError> {
    let n = diesel::update(sessions::table.find(id))
        .set((
            sessions::last_seen_at.eq(last_seen_at),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// Moves the session's expiry to `expires_at` (unix epoch milliseconds).
pub fn extend(conn: &mut DbConnection, id: i64, expires_at: i64) -> Result<bool, DbError> {
    let n = diesel::update(sessions::table.find(id))
        .set(sessions::expires_at.eq(expires_at))
        .execute(conn)?;
    Ok(n > 0)
}

/// Replaces the session's JSON data (and bumps the version), whatever it
/// was: for tests and maintenance; flows use [`update_if_version`].
pub fn update_data(conn: &mut DbConnection, id: i64, data: &str) -> Result<bool, DbError> {
    let n = diesel::update(sessions::table.find(id))
        .set((
            sessions::data.eq(data),
            sessions::version.eq(sessions::version + 1),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

pub fn delete(conn: &mut DbConnection, id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(sessions::table.find(id)).execute(conn)?;
    Ok(n > 0)
}

/// The data of a session whose login was revoked (see [`revoke_for_user`]).
pub const REVOKED_DATA: &str = r#"{"revoked":true}"#;

/// Revokes the logins of a user's sessions, but for `keep` when given: each
/// row loses its user and is marked, so that its next use is anonymous and
/// ends it (Django flushes a session whose password hash is stale: the next
/// request is logged out, the one after finds no session). Their JWT refresh
/// tokens end at once. Returns how many were revoked.
pub fn revoke_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    keep: Option<i64>,
) -> Result<usize, DbError> {
    let ids: Vec<i64> = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::id.ne(keep.unwrap_or(-1)))
        .select(sessions::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    super::refresh_tokens::delete_for_sessions(conn, &ids)?;
    // The version moves too: a request in flight on one of these sessions
    // cannot write its (now stale) login back.
    Ok(
        diesel::update(sessions::table.filter(sessions::id.eq_any(&ids)))
            .set((
                sessions::user_id.eq(None::<i64>),
                sessions::data.eq(REVOKED_DATA),
                sessions::version.eq(sessions::version + 1),
            ))
            .execute(conn)?,
    )
}

/// Ends a user's sessions, but for `keep` when given. Returns how many ended.
pub fn delete_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    keep: Option<i64>,
) -> Result<usize, DbError> {
    let n = match keep {
        Some(keep) => diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(keep)),
        )
        .execute(conn)?,
        None => {
            diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?
        }
    };
    Ok(n)
}

/// Ends the given sessions of a user (ids of other users are ignored).
pub fn delete_many_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    ids: &[i64],
) -> Result<usize, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.eq_any(ids)),
    )
    .execute(conn)?)
}

/// Deletes every session that expired at or before `now`. Returns how many.
/// Live sessions at `now`: all of them, and those with a user.
pub fn live_counts(conn: &mut DbConnection, now: i64) -> Result<(i64, i64), DbError> {
    let live = sessions::table.filter(sessions::expires_at.gt(now));
    let all = live.count().get_result(conn)?;
    let authenticated = live
        .filter(sessions::user_id.is_not_null())
        .count()
        .get_result(conn)?;
    Ok((all, authenticated))
}

pub fn delete_expired(conn: &mut DbConnection, now: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
}

/// A session with its active user and that user's primary address.
pub type SessionWithUser = (Session, Option<super::users::User>, Option<String>);

/// What names a session: the hash of its token, or its row id (a JWT's
/// `sid`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionKey {
    Hash(String),
    Id(i64),
}

/// The live session `key` names with its user (if active) and that user's
/// primary address, in **one indexed read**: the unique `key_hash` index (or
/// the primary key), then primary-key and partial-unique-index joins. This
/// is the per-request session check.
pub fn load_with_user(
    conn: &mut DbConnection,
    key: &SessionKey,
    now: i64,
) -> Result<Option<SessionWithUser>, DbError> {
    use super::schema::{email_addresses, users};
    macro_rules! joined {
        () => {
            sessions::table
                .left_join(
                    users::table.on(sessions::user_id
                        .eq(users::id.nullable())
                        .and(users::is_active.eq(true))),
                )
                .left_join(
                    email_addresses::table.on(email_addresses::user_id
                        .nullable()
                        .eq(users::id.nullable())
                        .and(email_addresses::primary.eq(true))),
                )
                .filter(sessions::expires_at.gt(now))
                .select((
                    Session::as_select(),
                    Option::<super::users::User>::as_select(),
                    email_addresses::email.nullable(),
                ))
        };
    }
    let row = match key {
        SessionKey::Hash(key_hash) => joined!()
            .filter(sessions::key_hash.eq(key_hash))
            .first::<SessionWithUser>(conn)
            .optional()?,
        SessionKey::Id(id) => joined!()
            .filter(sessions::id.eq(*id))
            .first::<SessionWithUser>(conn)
            .optional()?,
    };
    Ok(row)
}
