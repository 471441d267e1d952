//! The session store: loading a session for a request (by token, or by a
//! JWT's session id), the activity record, and saving it back — every write
//! of a session's data, user or key a compare-and-set on its `version`.
//!
//! Two requests on one session never overwrite each other's state:
//! * [`SessionStore::update`] changes the stored data atomically (read the
//!   row, apply a pure change, write it if the version did not move, else
//!   again). Flows count attempts, use up codes and claim stages with it, so
//!   concurrent attempts are counted one after the other and a single-use
//!   code serves one request only.
//! * [`SessionStore::save`] writes what a call changed only if nobody
//!   changed the row since it was read (or last written by this call);
//!   otherwise the call fails with a conflict (409) and writes nothing, so
//!   two concurrent logins cannot both rotate the key.

use std::sync::Arc;

use crate::app::security::codes;
use crate::app::sessions::session::{LiveSession, SessionData, UserView};
use crate::app::sessions::session_cache::{Lookup, SessionCache, Stamp};
use crate::app::Error;
use crate::db::{refresh_tokens, sessions as rows, Db, DbError};

/// How often [`SessionStore::update`] retries a compare-and-set that lost
/// a race before giving up with a conflict.
const MAX_UPDATE_ROUNDS: usize = 64;

/// Where the request came from, for a new or newly logged-in session row.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub client: rows::Client,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub now_ms: i64,
    /// When the session expires if saved now.
    pub expires_at: i64,
}

/// What a token names.
#[derive(Debug)]
pub enum Found {
    /// A live session.
    Session(Box<LiveSession>),
    /// A session whose login was revoked elsewhere: it has just ended, and
    /// this call is anonymous (allauth logs such a session out once; the
    /// next call finds nothing).
    Revoked,
    /// No live session.
    Missing,
}

#[derive(Clone, Debug)]
pub struct SessionStore {
    db: Db,
    /// Lookups answered without the database; `None` when the database's
    /// change feed does not go to it (see [`SessionCache`]).
    cache: Option<Arc<SessionCache>>,
}

impl SessionStore {
    /// A store whose lookups go to the database every time.
    pub fn new(db: Db) -> SessionStore {
        SessionStore { db, cache: None }
    }

    /// A store that keeps lookups in `cache`, which must be the sink of
    /// `db`'s change feed ([`Db::watch`]).
    pub fn cached(db: Db, cache: Arc<SessionCache>) -> SessionStore {
        SessionStore {
            db,
            cache: Some(cache),
        }
    }

    /// The session a client's token names, with its user: one indexed read
    /// (and no hashing but the token's SHA-256), or none when the cache
    /// has it.
    pub async fn by_token(&self, token: &str, now_ms: i64) -> Result<Found, Error> {
        let key = rows::SessionKey::Hash(codes::token_hash(token));
        let lookup = self.lookup(key, now_ms).await?;
        self.found(lookup).await
    }

    /// The lookup `key` names: from the cache when it holds a good one (once
    /// the change feed has caught up), else read and kept.
    async fn lookup(
        &self,
        key: rows::SessionKey,
        now_ms: i64,
    ) -> Result<Option<Arc<Lookup>>, Error> {
        if let Some(cache) = &self.cache {
            if cache.has(&key) && self.db.caught_up().await {
                if let Some(lookup) = cache.get(&key, now_ms) {
                    return Ok(Some(lookup));
                }
            }
        }
        let stamp = self.cache.as_ref().map(|cache| cache.stamp());
        let row = self
            .db
            .run(move |conn| rows::load_with_user(conn, &key, now_ms))
            .await?;
        Ok(self.keep(stamp, row))
    }

    /// How many lookups the cache holds (0 without a cache).
    pub fn cached_lookups(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.len())
    }

    /// The lookup of a row read after `stamp`, kept in the cache.
    fn keep(
        &self,
        stamp: Option<Stamp>,
        row: Option<rows::SessionWithUser>,
    ) -> Option<Arc<Lookup>> {
        let lookup = Arc::new(Lookup::new(row?));
        if let (Some(cache), Some(stamp)) = (&self.cache, stamp) {
            cache.put(stamp, &lookup);
        }
        Some(lookup)
    }

    /// The session a JWT names by its row id, if it still has the key the
    /// token was issued under (`names_key`).
    pub async fn by_id(
        &self,
        id: i64,
        now_ms: i64,
        names_key: impl FnOnce(&str) -> bool,
    ) -> Result<Found, Error> {
        let lookup = self.lookup(rows::SessionKey::Id(id), now_ms).await?;
        match lookup {
            Some(lookup) if !names_key(&lookup.row.0.key_hash) => Ok(Found::Missing),
            lookup => self.found(lookup).await,
        }
    }

    async fn found(&self, lookup: Option<Arc<Lookup>>) -> Result<Found, Error> {
        let Some(lookup) = lookup else {
            return Ok(Found::Missing);
        };
        let (session, user, email) = &lookup.row;
        if lookup.data.revoked {
            let id = session.id;
            self.db.run(move |conn| rows::delete(conn, id)).await?;
            return Ok(Found::Revoked);
        }
        // A session whose user is gone or inactive is anonymous.
        let user = user.as_ref().map(|u| UserView::from_row(u, email.clone()));
        Ok(Found::Session(Box::new(LiveSession::loaded(
            session.id,
            session.version,
            session.key_hash.clone(),
            user,
            lookup.data.clone(),
        ))))
    }

    /// allauth's `UserSessionsMiddleware`: a logged-in session records the
    /// client's current address and user agent, and when it was seen.
    pub async fn track_activity(
        &self,
        session: &LiveSession,
        ip: &str,
        user_agent: &str,
        now_ms: i64,
    ) -> Result<(), Error> {
        let (Some(id), true) = (session.row_id, session.is_authenticated()) else {
            return Ok(());
        };
        let changes = rows::SessionUpdate {
            last_seen_at: Some(now_ms),
            ip: Some(Some(ip.to_owned())),
            user_agent: Some(Some(user_agent.to_owned())),
            ..Default::default()
        };
        self.db
            .run(move |conn| rows::update(conn, id, &changes))
            .await?;
        Ok(())
    }

    /// Applies `change` to the stored data of the session atomically and
    /// returns what it returned; `session` then holds the data written.
    ///
    /// `change` must be pure (it may run several times, each on the data
    /// as stored then). A session without a row is changed in memory (no
    /// other request can see it). If the row was logged in or out, or
    /// ended, since `session` was read, this is a conflict.
    pub async fn update<R, F>(&self, session: &mut LiveSession, mut change: F) -> Result<R, Error>
    where
        F: FnMut(&mut SessionData) -> R + Clone + Send + 'static,
        R: Send + 'static,
    {
        let Some(id) = session.row_id else {
            let result = change(&mut session.data);
            session.mark_modified();
            return Ok(result);
        };
        let expected_user = session.user.as_ref().map(|u| u.id);
        let expected_key = session.key_hash.clone();
        let outcome = self
            .db
            .run(move |conn| {
                for _ in 0..MAX_UPDATE_ROUNDS {
                    let Some(row) = rows::by_id(conn, id)? else {
                        return Ok(None);
                    };
                    if row.user_id != expected_user || Some(&row.key_hash) != expected_key.as_ref()
                    {
                        return Ok(None);
                    }
                    let mut data = SessionData::parse(&row.data);
                    let before = data.clone();
                    let result = change(&mut data);
                    if data == before {
                        return Ok(Some((result, data, row.version)));
                    }
                    let changes = rows::SessionUpdate {
                        data: Some(data.to_json()),
                        ..Default::default()
                    };
                    if rows::update_if_version(conn, id, row.version, &changes)? {
                        return Ok(Some((result, data, row.version + 1)));
                    }
                }
                Ok(None)
            })
            .await?;
        let Some((result, data, version)) = outcome else {
            return Err(Error::Conflict);
        };
        session.data = data;
        session.version = version;
        Ok(result)
    }

    /// Writes the session back if the call changed it; returns the new
    /// token when the session was created or its key rotated. A row that
    /// changed since it was read is not overwritten: [`Error::Conflict`].
    pub async fn save(
        &self,
        session: &mut LiveSession,
        origin: Origin<'_>,
    ) -> Result<Option<String>, Error> {
        if !session.is_modified() {
            return Ok(None);
        }
        let row_id = session.row_id;
        if !session.worth_keeping() {
            if let Some(id) = row_id {
                self.db.run(move |conn| rows::delete(conn, id)).await?;
            }
            session.row_id = None;
            return Ok(None);
        }
        let token = session.new_token.clone();
        let user_id = session.user.as_ref().map(|u| u.id);
        let data = session.data.to_json();
        let Some(id) = row_id else {
            let token = token.unwrap_or_else(codes::new_token);
            let key_hash = codes::token_hash(&token);
            let mut new = rows::NewSession::new(
                key_hash.clone(),
                origin.client,
                origin.now_ms,
                origin.expires_at,
            );
            new.user_id = user_id;
            new.data = data;
            new.ip = Some(origin.ip.to_owned());
            new.user_agent = Some(origin.user_agent.to_owned());
            let row = self.db.run(move |conn| rows::insert(conn, &new)).await?;
            session.row_id = Some(row.id);
            session.version = row.version;
            session.key_hash = Some(key_hash);
            return Ok(Some(token));
        };
        let key_hash = token.as_deref().map(codes::token_hash);
        let cycled = key_hash.is_some();
        let mut changes = rows::SessionUpdate {
            key_hash: key_hash.clone(),
            user_id: Some(user_id),
            data: Some(data),
            expires_at: Some(origin.expires_at),
            last_seen_at: Some(origin.now_ms),
            ..Default::default()
        };
        if session.logged_in {
            // The user sessions list shows the login's time and client.
            changes.created_at = Some(origin.now_ms);
            changes.ip = Some(Some(origin.ip.to_owned()));
            changes.user_agent = Some(Some(origin.user_agent.to_owned()));
        }
        let version = session.version;
        // A new key ends the JWTs issued under the old one: their `sid` no
        // longer matches, and their refresh tokens go with it.
        let written = self
            .db
            .transaction(move |conn| {
                if !rows::update_if_version(conn, id, version, &changes)? {
                    return Ok(false);
                }
                if cycled {
                    refresh_tokens::delete_for_session(conn, id)?;
                }
                Ok(true)
            })
            .await?;
        if !written {
            return Err(Error::Conflict);
        }
        session.version = version + 1;
        if key_hash.is_some() {
            session.key_hash = key_hash;
        }
        Ok(token)
    }

    /// Deletes a session row (expired-session housekeeping aside, only a
    /// logout ends a session).
    pub async fn delete(&self, id: i64) -> Result<(), DbError> {
        self.db.run(move |conn| rows::delete(conn, id)).await?;
        Ok(())
    }
}
