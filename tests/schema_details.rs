//! Invariants of the migrated schema, checked on SQLite and (with `TEST_DATABASE_URL`) on PostgreSQL.
//!
//! Every test runs once per backend in [`TestDatabase::all`], each time on a
//! fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use allauth_server::db::email_addresses::{self, NewEmailAddress};
use allauth_server::db::mail_outbox::{self, NewMail};
use allauth_server::db::rate_limits;
use allauth_server::db::sessions::{self, Client, NewSession, SessionUpdate};
use allauth_server::db::testing::TestDatabase;
use allauth_server::db::users::{self, NewUser};
use allauth_server::db::{Backend, Db, DbConnection, DbError};
use diesel::sql_types::{Integer, Text};
use diesel::{QueryableByName, RunQueryDsl};

const NOW: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

/// Fresh migrated databases, one per backend, kept alive beside their pools.
async fn databases() -> Vec<(TestDatabase, Db)> {
    let mut out = Vec::new();
    for tdb in TestDatabase::all().unwrap() {
        let db = tdb.migrated(8).await.unwrap();
        out.push((tdb, db));
    }
    out
}

async fn new_user(db: &Db, username: &str) -> i64 {
    let new = NewUser::new(Some(username), Some("argon2id$…".into()), NOW);
    db.run(move |c| users::insert(c, &new)).await.unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_twice() {
    for tdb in TestDatabase::all().unwrap() {
        let db = tdb.migrated(2).await.unwrap();
        db.migrate().await.unwrap();
        // A second pool on the same database sees nothing left to do.
        let again = tdb.migrated(2).await.unwrap();
        let versions = again
            .run(|c| {
                #[derive(QueryableByName)]
                struct Version {
                    #[diesel(sql_type = Text)]
                    version: String,
                }
                Ok(
                    diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                        .load::<Version>(c)?
                        .into_iter()
                        .map(|v| v.version)
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .unwrap();
        // PostgreSQL has migrations of its own (its triggers).
        let dir = match tdb.backend() {
            Backend::Sqlite => "migrations/sqlite",
            Backend::Postgres => "migrations/postgres",
        };
        let expected = std::fs::read_dir(dir).unwrap().count();
        assert_eq!(
            versions.len(),
            expected,
            "{:?}: {versions:?}",
            tdb.backend()
        );
        assert_eq!(db.backend(), tdb.backend());
    }
}

/// Start-up's `Db::open` (on PostgreSQL: the migrations on the connection
/// that checked the URL, the pool opening its own meanwhile), by several
/// instances starting at once on a fresh database: each applies or finds
/// every migration once, and each pool works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_opening_a_fresh_database_at_once() {
    for tdb in TestDatabase::all().unwrap() {
        let opening: Vec<_> = (0..4)
            .map(|_| {
                let url = tdb.url().to_owned();
                tokio::task::spawn_blocking(move || Db::open(&url, 2))
            })
            .collect();
        let mut pools = Vec::new();
        for open in opening {
            pools.push(open.await.unwrap().unwrap());
        }
        let dir = match tdb.backend() {
            Backend::Sqlite => "migrations/sqlite",
            Backend::Postgres => "migrations/postgres",
        };
        let expected = std::fs::read_dir(dir).unwrap().count() as i64;
        for db in &pools {
            let (versions, distinct) = db
                .run(|c| {
                    #[derive(QueryableByName)]
                    struct Counts {
                        #[diesel(sql_type = diesel::sql_types::BigInt)]
                        versions: i64,
                        #[diesel(sql_type = diesel::sql_types::BigInt)]
                        distinct_versions: i64,
                    }
                    let counts = diesel::sql_query(
                        "SELECT COUNT(*) AS versions, COUNT(DISTINCT version) AS distinct_versions \
                         FROM __diesel_schema_migrations",
                    )
                    .get_result::<Counts>(c)?;
                    Ok((counts.versions, counts.distinct_versions))
                })
                .await
                .unwrap();
            assert_eq!(
                (versions, distinct),
                (expected, expected),
                "{:?}",
                tdb.backend()
            );
        }
        // Every pool can write and read what another wrote.
        let id = new_user(&pools[0], "opened").await;
        let found = pools[3].run(move |c| users::by_id(c, id)).await.unwrap();
        assert!(found.is_some(), "{:?}", tdb.backend());
    }
}

// ---------------------------------------------------------------------------
// schema.rs against the migrated database

/// table → column → (diesel type, nullable), as written in schema.rs.
type Columns = BTreeMap<String, BTreeMap<String, (String, bool)>>;

fn schema_rs_columns() -> Columns {
    let text = include_str!("../server/db/schema.rs");
    let mut tables = Columns::new();
    let mut current: Option<String> = None;
    // A `#[sql_name = "…"]` names the next column in the database.
    let mut sql_name: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("//") {
            continue;
        }
        if let Some(name) = line
            .strip_prefix("#[sql_name = \"")
            .and_then(|rest| rest.strip_suffix("\"]"))
        {
            sql_name = Some(name.to_owned());
            continue;
        }
        if let Some(name) = current.as_ref() {
            if line == "}" {
                current = None;
            } else if let Some((column, ty)) = line.split_once(" -> ") {
                let column = sql_name.take().unwrap_or_else(|| column.to_owned());
                let ty = ty.trim_end_matches(',');
                let (ty, nullable) = match ty.strip_prefix("Nullable<") {
                    Some(inner) => (inner.trim_end_matches('>'), true),
                    None => (ty, false),
                };
                tables
                    .get_mut(name)
                    .unwrap()
                    .insert(column, (ty.to_owned(), nullable));
            }
        } else if line.ends_with('{') && line.contains(" (") && !line.starts_with("diesel::") {
            let name = line.split(" (").next().unwrap().to_owned();
            tables.insert(name.clone(), BTreeMap::new());
            current = Some(name);
        }
    }
    tables
}

#[derive(QueryableByName)]
struct ColumnInfo {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Integer)]
    nullable: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

fn database_columns(c: &mut DbConnection) -> Result<Columns, DbError> {
    let sql = match c.backend() {
        Backend::Sqlite => {
            "SELECT m.name AS table_name, p.name AS column_name, upper(p.type) AS data_type, \
                    CASE WHEN p.\"notnull\" = 0 THEN 1 ELSE 0 END AS nullable, p.pk AS pk \
             FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
               AND m.name <> '__diesel_schema_migrations'"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                    data_type::text AS data_type, \
                    CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END AS nullable, 0 AS pk \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'"
        }
    };
    let mut tables = Columns::new();
    for col in diesel::sql_query(sql).load::<ColumnInfo>(c)? {
        let ty = match (col.data_type.as_str(), col.pk) {
            // SQLite's rowid alias must be declared INTEGER; it is 64-bit.
            ("INTEGER", pk) if pk > 0 => "Int8",
            ("BIGINT" | "bigint", _) => "Int8",
            ("INTEGER" | "integer", _) => "Int4",
            ("TEXT" | "text", _) => "Text",
            ("BOOLEAN" | "boolean", _) => "Bool",
            (other, _) => other,
        };
        tables
            .entry(col.table_name)
            .or_default()
            .insert(col.column_name, (ty.to_owned(), col.nullable != 0));
    }
    Ok(tables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_the_migrations() {
    let expected = schema_rs_columns();
    assert_eq!(expected.len(), 12, "parsed schema.rs: {expected:?}");
    for (tdb, db) in databases().await {
        let actual = db.run(database_columns).await.unwrap();
        assert_eq!(actual, expected, "{:?}", tdb.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_exist() {
    let expected: BTreeSet<&str> = [
        "users_username_lower_key",
        "email_addresses_verified_email_lower_key",
        "email_addresses_primary_user_id_key",
        "email_addresses_email_lower_idx",
        "sessions_key_hash_key",
        "sessions_expires_at_idx",
        "sessions_user_id_idx",
        "rate_limit_hits_expires_at_idx",
        "mail_outbox_next_attempt_at_idx",
        "sms_outbox_next_attempt_at_idx",
        "mfa_authenticators_user_id_type_key",
        "mfa_authenticators_user_id_idx",
    ]
    .into();
    for (tdb, db) in databases().await {
        #[derive(QueryableByName)]
        struct Index {
            #[diesel(sql_type = Text)]
            name: String,
        }
        let sql = match tdb.backend() {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index'",
            Backend::Postgres => {
                "SELECT indexname::text AS name FROM pg_indexes WHERE schemaname = 'public'"
            }
        };
        let names: BTreeSet<String> = db
            .run(move |c| Ok(diesel::sql_query(sql).load::<Index>(c)?))
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        for want in &expected {
            assert!(
                names.contains(*want),
                "{:?}: {want} missing from {names:?}",
                tdb.backend()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// constraints

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_cascades() {
    for (tdb, db) in databases().await {
        let alice = new_user(&db, "alice").await;
        let bob = new_user(&db, "bob").await;
        db.run(move |c| {
            email_addresses::insert(
                c,
                &NewEmailAddress::new(alice, "alice@example.com", true, true),
            )?;
            email_addresses::insert(
                c,
                &NewEmailAddress::new(alice, "a2@example.com", false, false),
            )?;
            email_addresses::insert(c, &NewEmailAddress::new(bob, "bob@example.com", true, true))?;
            let mut s = NewSession::new("a".repeat(64), Client::Browser, NOW, NOW + HOUR);
            s.user_id = Some(alice);
            sessions::insert(c, &s)?;
            let mut s = NewSession::new("b".repeat(64), Client::App, NOW, NOW + HOUR);
            s.user_id = Some(bob);
            sessions::insert(c, &s)?;
            // An anonymous session stays whatever happens to users.
            sessions::insert(
                c,
                &NewSession::new("c".repeat(64), Client::App, NOW, NOW + HOUR),
            )?;
            Ok(())
        })
        .await
        .unwrap();

        assert!(db.run(move |c| users::delete(c, alice)).await.unwrap());
        let (emails, alice_sessions, bob_emails, bob_sessions, anon) = db
            .run(move |c| {
                Ok((
                    email_addresses::for_user(c, alice)?,
                    sessions::for_user(c, alice, NOW)?,
                    email_addresses::for_user(c, bob)?,
                    sessions::for_user(c, bob, NOW)?,
                    sessions::by_key_hash(c, &"c".repeat(64), NOW)?,
                ))
            })
            .await
            .unwrap();
        let backend = tdb.backend();
        assert!(emails.is_empty(), "{backend:?}");
        assert!(alice_sessions.is_empty(), "{backend:?}");
        assert_eq!(bob_emails.len(), 1, "{backend:?}");
        assert_eq!(bob_sessions.len(), 1, "{backend:?}");
        assert!(anon.is_some(), "{backend:?}");
    }
}

/// A user has at most one TOTP and one recovery-code set, any number of
/// WebAuthn credentials; their authenticators go with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticators_one_per_kind_and_cascading() {
    use allauth_server::db::authenticators::{self, NewAuthenticator};
    let new = |user_id: i64, type_: &str| NewAuthenticator {
        user_id,
        type_: type_.to_owned(),
        data: "{}".to_owned(),
        created_at: NOW,
        last_step: None,
    };
    for (tdb, db) in databases().await {
        let backend = tdb.backend();
        let alice = new_user(&db, "alice").await;
        let bob = new_user(&db, "bob").await;
        for type_ in ["totp", "recovery_codes", "webauthn", "webauthn"] {
            let row = new(alice, type_);
            db.run(move |c| authenticators::insert(c, &row))
                .await
                .unwrap();
        }
        for type_ in ["totp", "recovery_codes"] {
            let row = new(alice, type_);
            let err = db
                .run(move |c| authenticators::insert(c, &row))
                .await
                .unwrap_err();
            assert!(err.is_unique_violation(), "{backend:?} {type_}: {err:?}");
            let row = new(bob, type_);
            db.run(move |c| authenticators::insert(c, &row))
                .await
                .unwrap();
        }
        let row = new(alice, "sms");
        let err = db
            .run(move |c| authenticators::insert(c, &row))
            .await
            .unwrap_err();
        assert!(err.is_check_violation(), "{backend:?}: {err:?}");
        assert!(db.run(move |c| users::delete(c, alice)).await.unwrap());
        let (left, bobs) = db
            .run(move |c| {
                Ok((
                    authenticators::for_user(c, alice)?,
                    authenticators::for_user(c, bob)?,
                ))
            })
            .await
            .unwrap();
        assert!(left.is_empty(), "{backend:?}");
        assert_eq!(bobs.len(), 2, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_are_enforced() {
    for (tdb, db) in databases().await {
        let err = db
            .run(|c| {
                email_addresses::insert(
                    c,
                    &NewEmailAddress::new(12345, "x@example.com", false, false),
                )
            })
            .await
            .unwrap_err();
        assert!(
            err.is_foreign_key_violation(),
            "{:?}: {err:?}",
            tdb.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_are_unique_ignoring_case() {
    for (tdb, db) in databases().await {
        new_user(&db, "Alice").await;
        let err = db
            .run(|c| users::insert(c, &NewUser::new(Some("aLICE"), None, NOW)))
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{:?}: {err:?}", tdb.backend());
        // Users without a username do not collide.
        for _ in 0..2 {
            db.run(|c| users::insert(c, &NewUser::new(None, None, NOW)))
                .await
                .unwrap();
        }
        let found = db
            .run(|c| users::by_username_lower(c, "alice"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.username.as_deref(), Some("Alice"));
        assert!(found.has_usable_password());
        assert!(
            !format!("{found:?}").contains("argon2id"),
            "Debug shows the hash"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_email_belongs_to_one_user() {
    for (tdb, db) in databases().await {
        let backend = tdb.backend();
        let alice = new_user(&db, "alice").await;
        let bob = new_user(&db, "bob").await;
        db.run(move |c| {
            email_addresses::insert(
                c,
                &NewEmailAddress::new(alice, "Shared@Example.com", true, true),
            )
        })
        .await
        .unwrap();

        // Another verified row with the same folded address: refused.
        let err = db
            .run(move |c| {
                email_addresses::insert(
                    c,
                    &NewEmailAddress::new(bob, "shared@EXAMPLE.com", true, false),
                )
            })
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{backend:?}: {err:?}");

        // Unverified, it may sit on another account, but not be verified there.
        let bobs = db
            .run(move |c| {
                email_addresses::insert(
                    c,
                    &NewEmailAddress::new(bob, "shared@example.com", false, false),
                )
            })
            .await
            .unwrap();
        let err = db
            .run(move |c| email_addresses::mark_verified(c, bobs.id))
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{backend:?}: {err:?}");

        // The same user cannot hold the address twice.
        let err = db
            .run(move |c| {
                email_addresses::insert(
                    c,
                    &NewEmailAddress::new(alice, "SHARED@example.com", false, false),
                )
            })
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{backend:?}: {err:?}");

        let (rows, verified) = db
            .run(|c| {
                Ok((
                    email_addresses::by_email_lower(c, "shared@example.com")?,
                    email_addresses::verified_by_email_lower(c, "shared@example.com")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{backend:?}");
        assert_eq!(rows[0].user_id, alice, "verified first");
        assert_eq!(verified.map(|e| e.user_id), Some(alice));

        // Once alice's row is gone, bob's can be verified.
        let alices = rows[0].id;
        assert!(db
            .run(move |c| email_addresses::delete(c, alice, alices))
            .await
            .unwrap());
        assert!(db
            .run(move |c| email_addresses::mark_verified(c, bobs.id))
            .await
            .unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_primary_per_user() {
    for (tdb, db) in databases().await {
        let backend = tdb.backend();
        let alice = new_user(&db, "alice").await;
        let bob = new_user(&db, "bob").await;
        let first = db
            .run(move |c| {
                email_addresses::insert(
                    c,
                    &NewEmailAddress::new(alice, "one@example.com", true, true),
                )
            })
            .await
            .unwrap();
        let err = db
            .run(move |c| {
                email_addresses::insert(
                    c,
                    &NewEmailAddress::new(alice, "two@example.com", true, true),
                )
            })
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{backend:?}: {err:?}");
        // Another user's primary is no conflict.
        db.run(move |c| {
            email_addresses::insert(
                c,
                &NewEmailAddress::new(bob, "bob@example.com", false, true),
            )
        })
        .await
        .unwrap();

        let second = db
            .run(move |c| {
                email_addresses::insert(
                    c,
                    &NewEmailAddress::new(alice, "two@example.com", true, false),
                )
            })
            .await
            .unwrap();
        assert!(db
            .run(move |c| email_addresses::set_primary(c, alice, second.id))
            .await
            .unwrap());
        // Not alice's address: nothing changes.
        assert!(!db
            .run(move |c| email_addresses::set_primary(c, bob, first.id))
            .await
            .unwrap());
        let (primary, all) = db
            .run(move |c| {
                Ok((
                    email_addresses::primary_for_user(c, alice)?,
                    email_addresses::for_user(c, alice)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(primary.map(|e| e.id), Some(second.id), "{backend:?}");
        assert_eq!(all.iter().filter(|e| e.primary).count(), 1, "{backend:?}");
        assert_eq!(all[0].id, second.id, "primary listed first");
    }
}

// ---------------------------------------------------------------------------
// sessions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_by_key_hash() {
    for (tdb, db) in databases().await {
        let backend = tdb.backend();
        let user = new_user(&db, "alice").await;
        let key = "ab".repeat(32);
        let k = key.clone();
        let s = db
            .run(move |c| sessions::insert(c, &NewSession::new(k, Client::App, NOW, NOW + HOUR)))
            .await
            .unwrap();
        assert_eq!(s.client(), Some(Client::App));
        assert_eq!(s.data, "{}");

        let k = key.clone();
        let err = db
            .run(move |c| {
                sessions::insert(c, &NewSession::new(k, Client::Browser, NOW, NOW + HOUR))
            })
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{backend:?}: {err:?}");

        let err = db
            .run(|c| {
                let mut s = NewSession::new("cd".repeat(32), Client::App, NOW, NOW + HOUR);
                s.client = "desktop".into();
                sessions::insert(c, &s)
            })
            .await
            .unwrap_err();
        assert!(err.is_check_violation(), "{backend:?}: {err:?}");

        // Login: rotate the key, attach the user, store the flow state.
        let rotated = "ef".repeat(32);
        let changes = SessionUpdate {
            key_hash: Some(rotated.clone()),
            user_id: Some(Some(user)),
            data: Some(r#"{"pending":null}"#.into()),
            ip: Some(Some("127.0.0.1".into())),
            ..SessionUpdate::default()
        };
        assert!(db
            .run(move |c| sessions::update(c, s.id, &changes))
            .await
            .unwrap());
        assert!(db
            .run(move |c| sessions::update(c, s.id, &SessionUpdate::default()))
            .await
            .unwrap());
        let k = key.clone();
        let r = rotated.clone();
        let (old, new) = db
            .run(move |c| {
                Ok((
                    sessions::by_key_hash(c, &k, NOW)?,
                    sessions::by_key_hash(c, &r, NOW)?,
                ))
            })
            .await
            .unwrap();
        assert!(old.is_none(), "{backend:?}");
        let new = new.unwrap();
        assert_eq!(new.user_id, Some(user));
        assert_eq!(new.ip.as_deref(), Some("127.0.0.1"));

        assert!(db
            .run(move |c| sessions::update_data(c, s.id, r#"{"x":1}"#))
            .await
            .unwrap());
        assert!(db
            .run(move |c| sessions::touch(c, s.id, NOW + 10, NOW + 2 * HOUR))
            .await
            .unwrap());
        let r = rotated.clone();
        let live = db
            .run(move |c| sessions::by_key_hash(c, &r, NOW + HOUR + 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.data, r#"{"x":1}"#);
        assert_eq!(live.last_seen_at, NOW + 10);

        // Expired: not found, then purged.
        let r = rotated.clone();
        assert!(db
            .run(move |c| sessions::by_key_hash(c, &r, NOW + 2 * HOUR))
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            db.run(|c| sessions::delete_expired(c, NOW + 2 * HOUR))
                .await
                .unwrap(),
            1
        );
        assert!(!db.run(move |c| sessions::delete(c, s.id)).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_users_other_sessions() {
    for (tdb, db) in databases().await {
        let user = new_user(&db, "alice").await;
        let ids = db
            .run(move |c| {
                let mut ids = Vec::new();
                for i in 0..4 {
                    let mut s =
                        NewSession::new(format!("{i:064}"), Client::Browser, NOW, NOW + HOUR);
                    s.user_id = Some(user);
                    ids.push(sessions::insert(c, &s)?.id);
                }
                Ok(ids)
            })
            .await
            .unwrap();
        let (a, b) = (ids[0], ids[1]);
        assert_eq!(
            db.run(move |c| sessions::delete_many_for_user(c, user, &[b]))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            db.run(move |c| sessions::delete_for_user(c, user, Some(a)))
                .await
                .unwrap(),
            2
        );
        let left = db
            .run(move |c| sessions::for_user(c, user, NOW))
            .await
            .unwrap();
        assert_eq!(
            left.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![a],
            "{:?}",
            tdb.backend()
        );
    }
}

// ---------------------------------------------------------------------------
// rate limits

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_hits_are_atomic() {
    for (tdb, db) in databases().await {
        let backend = tdb.backend();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            tasks.push(tokio::spawn(db.run(|c| {
                rate_limits::hit(c, "login_failed", "ip:127.0.0.1", NOW, NOW + 60_000)
            })));
        }
        let mut counts = BTreeSet::new();
        for task in tasks {
            counts.insert(task.await.unwrap().unwrap());
        }
        assert_eq!(counts, (1..=50).collect::<BTreeSet<i32>>(), "{backend:?}");
        let total = db
            .run(|c| rate_limits::count(c, "login_failed", "ip:127.0.0.1", NOW))
            .await
            .unwrap();
        assert_eq!(total, 50, "{backend:?}");

        // Other windows, keys and actions count apart.
        let other = db
            .run(|c| {
                Ok((
                    rate_limits::hit(
                        c,
                        "login_failed",
                        "ip:127.0.0.1",
                        NOW + 60_000,
                        NOW + 120_000,
                    )?,
                    rate_limits::hit(c, "login_failed", "ip:10.0.0.1", NOW, NOW + 60_000)?,
                    rate_limits::hit(c, "signup", "ip:127.0.0.1", NOW, NOW + 60_000)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(other, (1, 1, 1), "{backend:?}");

        // Release gives one back, never below zero.
        let released = db
            .run(|c| {
                let first = rate_limits::release(c, "signup", "ip:127.0.0.1", NOW)?;
                let second = rate_limits::release(c, "signup", "ip:127.0.0.1", NOW)?;
                let missing = rate_limits::release(c, "signup", "nobody", NOW)?;
                Ok((
                    first,
                    second,
                    missing,
                    rate_limits::count(c, "signup", "ip:127.0.0.1", NOW)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(released, (true, false, false, 0), "{backend:?}");
        assert_eq!(
            db.run(|c| rate_limits::hit(c, "login_failed", "ip:127.0.0.1", NOW, 0))
                .await
                .unwrap(),
            51
        );

        // Purge drops the windows that expired.
        assert_eq!(
            db.run(|c| rate_limits::purge(c, NOW + 60_001))
                .await
                .unwrap(),
            3,
            "{backend:?}"
        );
        assert_eq!(
            db.run(|c| rate_limits::count(c, "login_failed", "ip:127.0.0.1", NOW + 60_000))
                .await
                .unwrap(),
            1
        );
    }
}

// ---------------------------------------------------------------------------
// mail outbox

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_outbox_flow() {
    for (tdb, db) in databases().await {
        let backend = tdb.backend();
        let (a, b, later) = db
            .run(|c| {
                let a = mail_outbox::enqueue(
                    c,
                    &NewMail::new(NOW, "a@example.com", "Hi", "text", Some("<p>html</p>")),
                )?;
                let b = mail_outbox::enqueue(
                    c,
                    &NewMail::new(NOW + 1, "b@example.com", "Hi", "text", None),
                )?;
                let mut later = NewMail::new(NOW, "c@example.com", "Later", "text", None);
                later.next_attempt_at = NOW + 1_000;
                let later = mail_outbox::enqueue(c, &later)?;
                Ok((a, b, later))
            })
            .await
            .unwrap();
        assert_eq!(a.attempts, 0);
        assert_eq!(a.body_html.as_deref(), Some("<p>html</p>"));

        let due = db.run(|c| mail_outbox::due(c, NOW + 1, 10)).await.unwrap();
        assert_eq!(
            due.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![a.id, b.id],
            "{backend:?}"
        );
        let limited = db.run(|c| mail_outbox::due(c, NOW + 1, 1)).await.unwrap();
        assert_eq!(limited.len(), 1);

        // Claiming: once only, and the claimed mail leaves `due` for the lease.
        let claims = db
            .run(move |c| {
                Ok((
                    mail_outbox::claim(c, a.id, NOW + 1, NOW + 60_000)?,
                    mail_outbox::claim(c, a.id, NOW + 1, NOW + 60_000)?,
                    mail_outbox::claim(c, later.id, NOW + 1, NOW + 60_000)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(claims, (true, false, false), "{backend:?}");
        assert!(db
            .run(move |c| mail_outbox::mark_sent(c, a.id, NOW + 2))
            .await
            .unwrap());

        assert!(db
            .run(move |c| mail_outbox::claim(c, b.id, NOW + 1, NOW + 60_000))
            .await
            .unwrap());
        assert!(db
            .run(move |c| mail_outbox::mark_failed(c, b.id, NOW + 500, "smtp: connection refused"))
            .await
            .unwrap());
        let b_now = db
            .run(move |c| mail_outbox::by_id(c, b.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b_now.attempts, 1);
        assert_eq!(
            b_now.last_error.as_deref(),
            Some("smtp: connection refused")
        );
        assert!(b_now.sent_at.is_none());

        assert!(db
            .run(|c| mail_outbox::due(c, NOW + 499, 10))
            .await
            .unwrap()
            .is_empty());
        let due = db
            .run(|c| mail_outbox::due(c, NOW + 1_000, 10))
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![b.id, later.id],
            "{backend:?}"
        );

        let a_now = db
            .run(move |c| mail_outbox::by_id(c, a.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((a_now.sent_at, a_now.attempts), (Some(NOW + 2), 1));
        assert_eq!(
            db.run(|c| mail_outbox::purge_sent(c, NOW + 3))
                .await
                .unwrap(),
            1
        );
    }
}

// ---------------------------------------------------------------------------
// the pool and transactions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_roll_back_on_error() {
    for (tdb, db) in databases().await {
        let err = db
            .transaction(|c| {
                users::insert(c, &NewUser::new(Some("ghost"), None, NOW))?;
                Err::<(), _>(DbError::Migration("stop".into()))
            })
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Migration(_)));
        let ghost = db
            .run(|c| users::by_username_lower(c, "ghost"))
            .await
            .unwrap();
        assert!(ghost.is_none(), "{:?}", tdb.backend());

        // Nested: the inner failure rolls back only the savepoint.
        let kept = db
            .transaction(|c| {
                users::insert(c, &NewUser::new(Some("outer"), None, NOW))?;
                let inner = allauth_server::db::transaction(c, |c| {
                    users::insert(c, &NewUser::new(Some("inner"), None, NOW))?;
                    users::insert(c, &NewUser::new(Some("INNER"), None, NOW))
                });
                assert!(inner.unwrap_err().is_unique_violation());
                Ok(users::by_username_lower(c, "inner")?.is_none())
            })
            .await
            .unwrap();
        assert!(kept);
        assert!(db
            .run(|c| users::by_username_lower(c, "outer"))
            .await
            .unwrap()
            .is_some());
    }
}

/// Read-then-write transactions on SQLite queue on the write lock instead of
/// failing with SQLITE_BUSY or losing updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_transactions_serialize_writers() {
    let tdb = TestDatabase::sqlite().unwrap();
    let db = tdb.migrated(8).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(tokio::spawn(db.transaction(|c| {
            let n = rate_limits::count(c, "counter", "k", 0)?;
            std::thread::sleep(std::time::Duration::from_millis(2));
            if n == 0 {
                rate_limits::hit(c, "counter", "k", 0, 0)?;
            } else {
                diesel::sql_query("UPDATE rate_limit_hits SET count = ? WHERE action = 'counter'")
                    .bind::<Integer, _>(n + 1)
                    .execute(c)?;
            }
            Ok(())
        })));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        db.run(|c| rate_limits::count(c, "counter", "k", 0))
            .await
            .unwrap(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pragmas_are_set() {
    let tdb = TestDatabase::sqlite().unwrap();
    let db = tdb.migrated(2).await.unwrap();
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = Integer)]
        value: i32,
    }
    let (mode, fk, timeout, sync) = db
        .run(|c| {
            let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<Mode>(c)?;
            let fk = diesel::sql_query("SELECT foreign_keys AS value FROM pragma_foreign_keys")
                .get_result::<Flag>(c)?;
            let timeout = diesel::sql_query("SELECT timeout AS value FROM pragma_busy_timeout")
                .get_result::<Flag>(c)?;
            let sync = diesel::sql_query("SELECT synchronous AS value FROM pragma_synchronous")
                .get_result::<Flag>(c)?;
            Ok((mode.journal_mode, fk.value, timeout.value, sync.value))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!((fk, timeout, sync), (1, 5000, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sqlite_keeps_its_data_across_calls() {
    for url in [":memory:", "sqlite::memory:"] {
        let db = Db::connect(url, 8).unwrap();
        assert_eq!(db.backend(), Backend::Sqlite);
        db.migrate().await.unwrap();
        let id = new_user(&db, "alice").await;
        let found = db.run(move |c| users::by_id(c, id)).await.unwrap();
        assert_eq!(found.and_then(|u| u.username), Some("alice".to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_parent_directory_is_created() {
    let tdb = TestDatabase::sqlite().unwrap();
    let dir = tdb
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("db.sqlite3")
        .to_owned();
    let url = format!("{dir}nested/deeper/db.sqlite3");
    let db = Db::connect(&url, 2).unwrap();
    db.migrate().await.unwrap();
    assert!(std::path::Path::new(&url).exists());
}

#[test]
fn bad_urls_are_refused() {
    assert!(matches!(
        Db::connect("mysql://localhost/x", 1),
        Err(DbError::Config(_))
    ));
    assert!(matches!(
        Db::connect("postgres://nobody@127.0.0.1:1/x", 1),
        Err(DbError::Connection(_))
    ));
}
