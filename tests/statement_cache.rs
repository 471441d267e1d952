//! The session check's query is prepared once per connection and reused
//! (SQLite parses SQL only when a statement is prepared).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use allauth_server::db::sessions;
use allauth_server::db::testing::TestDatabase;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::Connection;

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Instrumentation for Events {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let name = match event {
            InstrumentationEvent::CacheQuery { .. } => "cache",
            InstrumentationEvent::StartQuery { .. } => "start",
            _ => return,
        };
        self.0.lock().unwrap().push(name.to_string());
    }
}

#[tokio::test]
async fn the_session_lookup_is_prepared_once() {
    for tdb in TestDatabase::all().unwrap() {
        let db = tdb.migrated(1).await.unwrap();
        let events = Events::default();
        let seen = events.clone();
        db.run(move |conn| {
            conn.set_instrumentation(events);
            for _ in 0..3 {
                sessions::load_with_user(conn, &sessions::SessionKey::Hash("nothing".into()), 0)?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let seen = seen.0.lock().unwrap().clone();
        println!("{:?}: {seen:?}", tdb.backend());
        let prepared = seen.iter().filter(|e| *e == "cache").count();
        assert_eq!(prepared, 1, "{:?}: {seen:?}", tdb.backend());
    }
}
