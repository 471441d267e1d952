//! An exact cache of session lookups (a session row with its active user
//! and that user's primary address), by token hash and by row id, kept in
//! this process.
//!
//! Exact means: a lookup answered from here is what the database would
//! answer at the moment the request arrived. The database's change feed
//! (`crate::db::changes`) reports every committed write to a session row,
//! a user or an address; [`crate::db::Db::caught_up`] says when every change
//! committed before a request has been applied (at once on SQLite, after a
//! round trip through the listening connection on PostgreSQL).
//!
//! Versions instead of deletions: every change takes a number from one
//! clock and records it against the session or user it touched; an entry
//! keeps the number taken just before its row was read. An entry is good
//! only while nothing it depends on has a later number, so a read racing
//! a write can never put an older row back into the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::app::sessions::session::SessionData;
use crate::db::changes::{Change, ChangeSink};
use crate::db::sessions::{SessionKey, SessionWithUser};

/// A session lookup as the store uses it: the row (the session, its active
/// user and that user's primary address) and the session's data, parsed
/// once.
#[derive(Debug)]
pub struct Lookup {
    pub row: SessionWithUser,
    pub data: SessionData,
}

impl Lookup {
    pub fn new(row: SessionWithUser) -> Lookup {
        let data = SessionData::parse(&row.0.data);
        Lookup { row, data }
    }
}

/// A cached lookup, with the clock's number taken before it was read.
#[derive(Debug)]
struct Entry {
    stamp: u64,
    lookup: Arc<Lookup>,
}

impl Entry {
    fn key_hash(&self) -> &str {
        &self.lookup.row.0.key_hash
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_hash: HashMap<String, Arc<Entry>>,
    by_id: HashMap<i64, Arc<Entry>>,
    /// The number of the last change to each session row and user.
    sessions: HashMap<i64, u64>,
    users: HashMap<i64, u64>,
    /// Entries stamped at or below this are stale (all was forgotten).
    floor: u64,
}

impl Inner {
    fn good(&self, entry: &Entry, now_ms: i64) -> bool {
        let (session, _, _) = &entry.lookup.row;
        let changed_since = |numbers: &HashMap<i64, u64>, id: i64| {
            numbers.get(&id).is_some_and(|&n| n > entry.stamp)
        };
        entry.stamp > self.floor
            && session.expires_at > now_ms
            && !changed_since(&self.sessions, session.id)
            && !session
                .user_id
                .is_some_and(|user| changed_since(&self.users, user))
    }

    fn entry(&self, key: &SessionKey) -> Option<&Arc<Entry>> {
        match key {
            SessionKey::Hash(key_hash) => self.by_hash.get(key_hash),
            SessionKey::Id(id) => self.by_id.get(id),
        }
    }

    fn forget_all(&mut self, floor: u64) {
        self.by_hash.clear();
        self.by_id.clear();
        self.sessions.clear();
        self.users.clear();
        self.floor = floor;
    }
}

/// The cache; one per server, shared by reference.
#[derive(Debug)]
pub struct SessionCache {
    inner: Mutex<Inner>,
    clock: AtomicU64,
    /// At most this many entries (and change numbers) are kept; past it,
    /// everything is forgotten at once.
    capacity: usize,
}

/// The clock's number for a read about to start (see [`SessionCache::put`]).
#[derive(Debug, Clone, Copy)]
pub struct Stamp(u64);

impl SessionCache {
    pub fn new(capacity: usize) -> Arc<SessionCache> {
        Arc::new(SessionCache {
            inner: Mutex::default(),
            clock: AtomicU64::new(1),
            capacity,
        })
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// To take before reading a row that may be [`put`](Self::put).
    pub fn stamp(&self) -> Stamp {
        Stamp(self.tick())
    }

    /// The cached lookup of the session `key` names, if it is good at
    /// `now_ms`. The caller must have made sure the feed is caught up
    /// ([`crate::db::Db::caught_up`]) after the request arrived.
    pub fn get(&self, key: &SessionKey, now_ms: i64) -> Option<Arc<Lookup>> {
        let inner = self.inner.lock().ok()?;
        let entry = inner.entry(key)?;
        inner.good(entry, now_ms).then(|| entry.lookup.clone())
    }

    /// Whether anything is cached under `key` (good or not): only then is
    /// it worth waiting for the feed.
    pub fn has(&self, key: &SessionKey) -> bool {
        self.inner
            .lock()
            .is_ok_and(|inner| inner.entry(key).is_some())
    }

    /// Keeps a row read after `stamp` was taken. Kept under both its token
    /// hash and its id; a row changed since `stamp` is not kept.
    pub fn put(&self, stamp: Stamp, lookup: &Arc<Lookup>) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let entry = Arc::new(Entry {
            stamp: stamp.0,
            lookup: lookup.clone(),
        });
        if !inner.good(&entry, i64::MIN) {
            return;
        }
        if inner.by_id.len() >= self.capacity {
            // Make room: any one entry goes.
            let victim = inner.by_id.keys().next().copied();
            if let Some(old) = victim.and_then(|id| inner.by_id.remove(&id)) {
                inner.by_hash.remove(old.key_hash());
            }
        }
        let (id, key_hash) = (entry.lookup.row.0.id, entry.key_hash().to_owned());
        // A row's previous entry may be under another (older) token hash.
        if let Some(old) = inner.by_id.insert(id, entry.clone()) {
            if old.key_hash() != key_hash {
                inner.by_hash.remove(old.key_hash());
            }
        }
        inner.by_hash.insert(key_hash, entry);
    }

    /// How many lookups are cached (good or not).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|inner| inner.by_id.len())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ChangeSink for SessionCache {
    fn apply(&self, changes: &[Change]) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for change in changes {
            let number = self.tick();
            match *change {
                Change::Session(id) => {
                    inner.sessions.insert(id, number);
                    if let Some(old) = inner.by_id.remove(&id) {
                        inner.by_hash.remove(old.key_hash());
                    }
                }
                Change::User(id) => {
                    inner.users.insert(id, number);
                }
                Change::Everything => inner.forget_all(number),
            }
        }
        if inner.sessions.len() + inner.users.len() > self.capacity.max(1) * 2 {
            let floor = self.tick();
            inner.forget_all(floor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sessions::Session;

    fn hash(key: &str) -> SessionKey {
        SessionKey::Hash(key.to_owned())
    }

    fn row(id: i64, key: &str, user: Option<i64>, expires_at: i64) -> Arc<Lookup> {
        let session = Session {
            id,
            key_hash: key.to_owned(),
            user_id: user,
            expires_at,
            ..Session::default()
        };
        Arc::new(Lookup::new((session, None, None)))
    }

    #[test]
    fn a_change_after_the_stamp_keeps_the_row_out() {
        let cache = SessionCache::new(10);
        let stamp = cache.stamp();
        cache.apply(&[Change::Session(1)]);
        cache.put(stamp, &row(1, "a", Some(5), 100));
        assert!(cache.get(&hash("a"), 0).is_none());
        let stamp = cache.stamp();
        cache.put(stamp, &row(1, "a", Some(5), 100));
        assert!(cache.get(&hash("a"), 0).is_some());
        assert!(cache.get(&SessionKey::Id(1), 0).is_some());
    }

    #[test]
    fn changes_to_the_session_or_its_user_end_an_entry() {
        let cache = SessionCache::new(10);
        cache.put(cache.stamp(), &row(1, "a", Some(5), 100));
        cache.put(cache.stamp(), &row(2, "b", Some(6), 100));
        cache.apply(&[Change::User(5)]);
        assert!(cache.get(&hash("a"), 0).is_none());
        assert!(cache.get(&hash("b"), 0).is_some());
        cache.apply(&[Change::Session(2)]);
        assert!(cache.get(&SessionKey::Id(2), 0).is_none());
        assert!(!cache.has(&hash("b")));
        // A read stamped before a user's change is not kept either.
        let stamp = cache.stamp();
        cache.apply(&[Change::User(6)]);
        cache.put(stamp, &row(2, "b", Some(6), 100));
        assert!(cache.get(&hash("b"), 0).is_none());
    }

    #[test]
    fn expiry_and_everything() {
        let cache = SessionCache::new(10);
        cache.put(cache.stamp(), &row(1, "a", None, 100));
        assert!(cache.get(&hash("a"), 99).is_some());
        assert!(cache.get(&hash("a"), 100).is_none());
        cache.apply(&[Change::Everything]);
        assert!(cache.is_empty());
        // A read stamped before the forgetting stays out.
        let stamp = cache.stamp();
        cache.apply(&[Change::Everything]);
        cache.put(stamp, &row(1, "a", None, 100));
        assert!(cache.get(&hash("a"), 0).is_none());
    }

    #[test]
    fn a_new_key_replaces_the_old_entry() {
        let cache = SessionCache::new(10);
        cache.put(cache.stamp(), &row(1, "a", Some(5), 100));
        cache.put(cache.stamp(), &row(1, "b", Some(5), 100));
        assert!(!cache.has(&hash("a")));
        assert!(cache.get(&hash("b"), 0).is_some());
    }

    #[test]
    fn capacity_bounds_the_cache() {
        let cache = SessionCache::new(3);
        for id in 0..10 {
            cache.put(cache.stamp(), &row(id, &format!("k{id}"), Some(id), 100));
            assert!(cache.len() <= 3);
        }
        let off = SessionCache::new(0);
        off.put(off.stamp(), &row(1, "a", None, 100));
        assert!(off.is_empty());
    }
}
