//! allauth's rate limits (`account.rate_limits`, `mfa.rate_limits`), counted atomically in the database so that every server instance shares them.
//!
//! Each configured `RateLimit` of an action (`amount` per `period_secs` per
//! ip, user or key) is a counter over a window that starts at the key's
//! first hit and lasts `period` (a cooldown such as `1/10s` therefore means
//! ten seconds from the last allowed send, whatever the clock says).
//! [`RateLimiter::consume`] counts one hit on every counter of the action in
//! one transaction; each hit is one atomic upsert
//! (`db::rate_limits::hit_anchored`), so concurrent requests each see their
//! own count and no more than `amount` get through a window.
//!
//! * A call is **refused** when any counter goes past its `amount`. The
//!   refused hit stays counted (on every counter of the action), so
//!   hammering does not earn a retry sooner.
//! * An allowed call gets a [`Ticket`] naming the counters it incremented;
//!   [`RateLimiter::release`] gives those slots back. That is allauth's
//!   `login_failed` pattern: take a slot before checking the password, give
//!   it back only when the password was right, so only failures use up the
//!   limit and a good login in between does not reset it.
//! * A `per` whose subject part is `None` (no user for a `user` limit, no key
//!   for a `key` limit) is skipped; allauth would raise there.
//! * `rate_limits = false` (an empty map) and actions absent from the map
//!   are never limited.
//!
//! Differences from allauth (whose limiter keeps a list of timestamps per
//! cache key, a sliding window, and is not atomic): a window is fixed once
//! started, so a burst at its end and the start of the next can reach twice
//! `amount`; and refused attempts count.
//!
//! Stored counter keys never hold the raw key: `ip:<period>:<address>`,
//! `user:<period>:<id>`, `key:<period>:<sha256 hex of "action:key">`, the key
//! trimmed and lowercased first (allauth lowercases the emails and logins it
//! passes; lowercasing the rest changes nothing). The period is part of the
//! stored key, so two limits of one action with different periods never
//! share a row.
//!
//! What the caller passes as `key`, per action (from allauth 65's call sites):
//!
//! | action | limits (defaults) | `key` |
//! |---|---|---|
//! | `login` | 30/m/ip | — (ip only; every login POST) |
//! | `login_failed` | 10/m/ip, 5/5m/key | `"<site domain>:<login>"`, the login being the `email` (or, when absent, the `username`) credential as typed, lowercased (`adapter._get_login_attempts_cache_key`); for the MFA step `"mfa-auth-user-<user id>"` (`mfa/base/internal/flows.py`) |
//! | `signup` | 20/m/ip | — |
//! | `confirm_email` | 1/3m/key (1/10s/key by code) | the email address, lowercased; counted on sending a verification mail, also for GET |
//! | `reset_password` | 20/m/ip, 5/m/key | the email address asked for, lowercased |
//! | `reset_password_from_key` | 20/m/ip | — |
//! | `change_password` | 5/m/user | — (user) |
//! | `manage_email` | 10/m/user | — (user) |
//! | `change_phone` | 1/m/user | — (user) |
//! | `reauthenticate` | 10/m/user | — (user) |
//! | `request_login_code` | 20/m/ip, 3/m/key | the email (or phone) asked for, lowercased |
//! | `verify_phone` | 1/30s/key, 3/m/ip | the phone number the code is sent to |
//! | `webauthn_login` (mfa) | 10/m/ip | — |
//!
//! allauth only limits unsafe methods (not GET) except `confirm_email`.
//! After a successful password reset the `login_failed` counters of each of
//! the user's addresses (and of the resetting client's address) are wiped,
//! as allauth's `ratelimit.clear` does: see [`counter_keys`] and
//! `db::rate_limits::clear`.

use sha2::{Digest as _, Sha256};

use super::secrets::hex;
use crate::app::Error;
use crate::config::{Config, RateLimit, RateLimitPer};
use crate::db::{self, rate_limits, Db};

/// Who a request is counted against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitSubject {
    /// The client address (as resolved through the trusted proxies).
    pub ip: Option<String>,
    /// The authenticated user.
    pub user: Option<i64>,
    /// The action's key (see the table in the module documentation).
    pub key: Option<String>,
}

/// The answer of [`RateLimiter::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Consumed {
    /// Within every limit; the ticket can give the slots back.
    Allowed(Ticket),
    /// Some limit is exhausted for this window: answer 429 (or, for
    /// `login_failed`, 400 `too_many_login_attempts`).
    Refused,
}

impl Consumed {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Consumed::Allowed(_))
    }
}

/// The counters one allowed [`RateLimiter::consume`] incremented. Holds
/// only hashed keys, so it may be logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ticket {
    hits: Vec<Hit>,
}

impl Ticket {
    /// Whether nothing was counted (no limit applied).
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    action: String,
    key: String,
    window_start: i64,
}

/// Rate limiting over the shared database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    db: Db,
}

impl RateLimiter {
    pub fn new(db: Db) -> RateLimiter {
        RateLimiter { db }
    }

    /// Counts one `action` by `subject` now; see [`RateLimiter::consume_at`].
    pub async fn consume(
        &self,
        config: &Config,
        action: &str,
        subject: &RateLimitSubject,
    ) -> Result<Consumed, Error> {
        self.consume_at(config, action, subject, db::now_millis())
            .await
    }

    /// Counts one `action` by `subject` at `now_ms` (unix milliseconds)
    /// against the action's limits in `account.rate_limits`, else
    /// `mfa.rate_limits`: every applicable counter in one transaction.
    pub async fn consume_at(
        &self,
        config: &Config,
        action: &str,
        subject: &RateLimitSubject,
        now_ms: i64,
    ) -> Result<Consumed, Error> {
        let limits = limits_of(config, action);
        let planned: Vec<(Hit, i64, u32)> = limits
            .iter()
            .filter_map(|limit| {
                let key = counter_key(action, limit, subject)?;
                let period_ms = period_millis(limit);
                // One row per key; its window starts at the first hit.
                let hit = Hit {
                    action: action.to_owned(),
                    key,
                    window_start: rate_limits::ANCHORED,
                };
                Some((hit, period_ms, limit.amount))
            })
            .collect();
        if planned.is_empty() {
            return Ok(Consumed::Allowed(Ticket::default()));
        }
        let allowed = self
            .db
            .transaction(move |conn| {
                let mut allowed = true;
                let mut hits = Vec::with_capacity(planned.len());
                for (hit, period_ms, amount) in planned {
                    let count =
                        rate_limits::hit_anchored(conn, &hit.action, &hit.key, now_ms, period_ms)?;
                    if i64::from(count) > i64::from(amount) {
                        allowed = false;
                    }
                    hits.push(hit);
                }
                Ok(allowed.then_some(Ticket { hits }))
            })
            .await?;
        if allowed.is_none() {
            crate::metrics::rate_limit_refused(action);
        }
        Ok(allowed.map_or(Consumed::Refused, Consumed::Allowed))
    }

    /// Gives back the slots `ticket` took (in their own windows; a window
    /// that has passed is left alone, as its row no longer limits anyone).
    pub async fn release(&self, ticket: Ticket) -> Result<(), Error> {
        if ticket.hits.is_empty() {
            return Ok(());
        }
        self.db
            .transaction(move |conn| {
                for hit in &ticket.hits {
                    rate_limits::release(conn, &hit.action, &hit.key, hit.window_start)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Deletes the counters of windows that have ended. Returns how many.
    pub async fn purge(&self) -> Result<usize, Error> {
        self.purge_at(db::now_millis()).await
    }

    /// [`RateLimiter::purge`] as of `now_ms`.
    pub async fn purge_at(&self, now_ms: i64) -> Result<usize, Error> {
        Ok(self
            .db
            .run(move |conn| rate_limits::purge(conn, now_ms))
            .await?)
    }
}

/// The limits configured for `action` (account's first, then MFA's).
fn limits_of<'c>(config: &'c Config, action: &str) -> &'c [RateLimit] {
    config
        .account
        .rate_limits()
        .get(action)
        .or_else(|| config.mfa.rate_limits().get(action))
        .map_or(&[], Vec::as_slice)
}

fn period_millis(limit: &RateLimit) -> i64 {
    i64::try_from(limit.period_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
        .max(1)
}

/// The stored key of one counter, or `None` when the subject lacks the part
/// the limit counts per.
/// The stored keys of every counter `action` keeps for `subject` (to clear
/// them).
pub fn counter_keys(config: &Config, action: &str, subject: &RateLimitSubject) -> Vec<String> {
    limits_of(config, action)
        .iter()
        .filter_map(|limit| counter_key(action, limit, subject))
        .collect()
}

fn counter_key(action: &str, limit: &RateLimit, subject: &RateLimitSubject) -> Option<String> {
    let period = limit.period_secs;
    let per = limit.per.as_str();
    let who = match limit.per {
        RateLimitPer::Ip => subject.ip.as_deref()?.trim().to_ascii_lowercase(),
        RateLimitPer::User => subject.user?.to_string(),
        RateLimitPer::Key => {
            let key = subject.key.as_deref()?.trim().to_lowercase();
            hex(&Sha256::digest(format!("{action}:{key}").as_bytes()))
        }
    };
    Some(format!("{per}:{period}:{who}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::testing::TestDatabase;

    fn config(toml: &str) -> Config {
        Config::from_sources(toml, &[]).unwrap()
    }

    fn ip(addr: &str) -> RateLimitSubject {
        RateLimitSubject {
            ip: Some(addr.into()),
            ..RateLimitSubject::default()
        }
    }

    /// A time in the middle of a minute, an hour and a five-minute window.
    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000 + 10_000;

    async fn on_every_backend<F, Fut>(test: F)
    where
        F: Fn(RateLimiter) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        for database in TestDatabase::all().unwrap() {
            let db = database.migrated(4).await.unwrap();
            eprintln!("backend {:?}", database.backend());
            test(RateLimiter::new(db)).await;
        }
    }

    #[tokio::test]
    async fn limits_are_enforced_exactly() {
        on_every_backend(|limiter| async move {
            let config = config("[account.rate_limits]\nsignup = \"3/m/ip\"\n");
            let a = ip("192.0.2.1");
            for i in 0..3 {
                let c = limiter
                    .consume_at(&config, "signup", &a, T0 + i)
                    .await
                    .unwrap();
                assert!(c.is_allowed(), "hit {i}");
            }
            for _ in 0..3 {
                assert_eq!(
                    limiter
                        .consume_at(&config, "signup", &a, T0 + 49_000)
                        .await
                        .unwrap(),
                    Consumed::Refused
                );
            }
            // Another address has its own counter.
            assert!(limiter
                .consume_at(&config, "signup", &ip("192.0.2.2"), T0)
                .await
                .unwrap()
                .is_allowed());
            // Another action too.
            assert!(limiter
                .consume_at(&config, "login", &a, T0)
                .await
                .unwrap()
                .is_allowed());
            // The next window starts afresh.
            assert!(limiter
                .consume_at(&config, "signup", &a, T0 + 50_000 + 60_000)
                .await
                .unwrap()
                .is_allowed());
        })
        .await;
    }

    #[tokio::test]
    async fn every_limit_of_the_action_counts() {
        on_every_backend(|limiter| async move {
            // reset_password: 20/m/ip and 5/m/key (allauth's defaults).
            let config = config("");
            let subject = |addr: &str, email: &str| RateLimitSubject {
                ip: Some(addr.into()),
                user: None,
                key: Some(email.into()),
            };
            for i in 0..5 {
                let s = subject(&format!("198.51.100.{i}"), "Alice@Example.com");
                assert!(limiter
                    .consume_at(&config, "reset_password", &s, T0)
                    .await
                    .unwrap()
                    .is_allowed());
            }
            // The key is exhausted whatever the address and the case.
            assert_eq!(
                limiter
                    .consume_at(
                        &config,
                        "reset_password",
                        &subject("198.51.100.9", "alice@example.COM "),
                        T0
                    )
                    .await
                    .unwrap(),
                Consumed::Refused
            );
            // The ip limit alone: 20 per address over many keys.
            let mut allowed = 0;
            for i in 0..25 {
                let s = subject("203.0.113.7", &format!("user{i}@example.com"));
                if limiter
                    .consume_at(&config, "reset_password", &s, T0)
                    .await
                    .unwrap()
                    .is_allowed()
                {
                    allowed += 1;
                }
            }
            assert_eq!(allowed, 20);
            // Without a key only the ip limit applies.
            assert!(limiter
                .consume_at(&config, "reset_password", &ip("203.0.113.8"), T0)
                .await
                .unwrap()
                .is_allowed());
        })
        .await;
    }

    #[tokio::test]
    async fn release_gives_the_slot_back() {
        on_every_backend(|limiter| async move {
            // login_failed: 10/m/ip and 5/300s/key.
            let config = config("");
            let s = RateLimitSubject {
                ip: Some("192.0.2.10".into()),
                user: None,
                key: Some("example.com:alice".into()),
            };
            // Successful logins give their slot back: any number of them.
            for _ in 0..20 {
                match limiter
                    .consume_at(&config, "login_failed", &s, T0)
                    .await
                    .unwrap()
                {
                    Consumed::Allowed(ticket) => {
                        assert!(!ticket.is_empty());
                        limiter.release(ticket).await.unwrap();
                    }
                    Consumed::Refused => panic!("refused"),
                }
            }
            // Failures keep theirs: the key allows 5 per 5 minutes.
            for _ in 0..5 {
                assert!(limiter
                    .consume_at(&config, "login_failed", &s, T0)
                    .await
                    .unwrap()
                    .is_allowed());
            }
            assert_eq!(
                limiter
                    .consume_at(&config, "login_failed", &s, T0 + 1000)
                    .await
                    .unwrap(),
                Consumed::Refused
            );
            // …and still refused four minutes later, in the same 5-minute window.
            assert_eq!(
                limiter
                    .consume_at(&config, "login_failed", &s, T0 + 240_000)
                    .await
                    .unwrap(),
                Consumed::Refused
            );
            assert!(limiter
                .consume_at(&config, "login_failed", &s, T0 + 300_000)
                .await
                .unwrap()
                .is_allowed());
        })
        .await;
    }

    #[tokio::test]
    async fn refused_attempts_count() {
        on_every_backend(|limiter| async move {
            let config = config("[account.rate_limits]\nlogin = \"2/m/ip\"\n");
            let a = ip("192.0.2.20");
            let mut tickets = Vec::new();
            for _ in 0..2 {
                match limiter.consume_at(&config, "login", &a, T0).await.unwrap() {
                    Consumed::Allowed(t) => tickets.push(t),
                    Consumed::Refused => panic!("refused"),
                }
            }
            for _ in 0..3 {
                assert_eq!(
                    limiter.consume_at(&config, "login", &a, T0).await.unwrap(),
                    Consumed::Refused
                );
            }
            // Giving back both slots does not undo the three refused hits.
            for t in tickets {
                limiter.release(t).await.unwrap();
            }
            assert_eq!(
                limiter.consume_at(&config, "login", &a, T0).await.unwrap(),
                Consumed::Refused
            );
        })
        .await;
    }

    #[tokio::test]
    async fn missing_subject_parts_and_disabled_limits() {
        on_every_backend(|limiter| async move {
            let config_default = config("");
            // change_password is per user: without a user nothing is counted.
            for _ in 0..10 {
                match limiter
                    .consume_at(&config_default, "change_password", &ip("192.0.2.30"), T0)
                    .await
                    .unwrap()
                {
                    Consumed::Allowed(t) => assert!(t.is_empty()),
                    Consumed::Refused => panic!("refused"),
                }
            }
            let user = RateLimitSubject {
                user: Some(42),
                ..RateLimitSubject::default()
            };
            for _ in 0..5 {
                assert!(limiter
                    .consume_at(&config_default, "change_password", &user, T0)
                    .await
                    .unwrap()
                    .is_allowed());
            }
            assert_eq!(
                limiter
                    .consume_at(&config_default, "change_password", &user, T0)
                    .await
                    .unwrap(),
                Consumed::Refused
            );
            // rate_limits = false: nothing is ever limited or stored.
            let off = config("[account]\nrate_limits = false\n[mfa]\nrate_limits = false\n");
            for _ in 0..50 {
                match limiter
                    .consume_at(&off, "change_password", &user, T0)
                    .await
                    .unwrap()
                {
                    Consumed::Allowed(t) => assert!(t.is_empty()),
                    Consumed::Refused => panic!("refused"),
                }
            }
            // An action that is not configured is not limited.
            assert!(limiter
                .consume_at(&config_default, "no_such_action", &user, T0)
                .await
                .unwrap()
                .is_allowed());
            // MFA's actions are found in mfa.rate_limits.
            let mfa = config("[mfa.rate_limits]\nwebauthn_login = \"1/m/ip\"\n");
            let a = ip("192.0.2.31");
            assert!(limiter
                .consume_at(&mfa, "webauthn_login", &a, T0)
                .await
                .unwrap()
                .is_allowed());
            assert_eq!(
                limiter
                    .consume_at(&mfa, "webauthn_login", &a, T0)
                    .await
                    .unwrap(),
                Consumed::Refused
            );
        })
        .await;
    }

    #[tokio::test]
    async fn limits_with_different_periods_do_not_share_a_counter() {
        on_every_backend(|limiter| async move {
            // At T0 - 10s both windows start at the same instant (a full hour).
            let config = config("[account.rate_limits]\nsignup = \"2/m/ip,3/h/ip\"\n");
            let a = ip("192.0.2.40");
            let at = T0 - 10_000;
            assert!(limiter
                .consume_at(&config, "signup", &a, at)
                .await
                .unwrap()
                .is_allowed());
            assert!(limiter
                .consume_at(&config, "signup", &a, at)
                .await
                .unwrap()
                .is_allowed());
            assert_eq!(
                limiter.consume_at(&config, "signup", &a, at).await.unwrap(),
                Consumed::Refused
            );
            // Next minute: the minute counter is fresh, but the hourly one
            // has counted 3 hits (the refused one included).
            assert_eq!(
                limiter
                    .consume_at(&config, "signup", &a, at + 60_000)
                    .await
                    .unwrap(),
                Consumed::Refused,
                "the hourly limit (3 counted, this is the 4th)"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn keys_are_not_stored_in_clear() {
        on_every_backend(|limiter| async move {
            let config = config("");
            let s = RateLimitSubject {
                ip: Some("192.0.2.50".into()),
                user: None,
                key: Some("Secret.Person@Example.com".into()),
            };
            let Consumed::Allowed(ticket) = limiter
                .consume_at(&config, "reset_password", &s, T0)
                .await
                .unwrap()
            else {
                panic!("refused")
            };
            let keys: Vec<&str> = ticket.hits.iter().map(|h| h.key.as_str()).collect();
            assert_eq!(keys.len(), 2);
            assert_eq!(keys[0], "ip:60:192.0.2.50");
            let expected = hex(&Sha256::digest(b"reset_password:secret.person@example.com"));
            assert_eq!(keys[1], format!("key:60:{expected}"));
            let stored = limiter
                .db
                .run(|conn| {
                    use crate::db::schema::rate_limit_hits::dsl::*;
                    use diesel::prelude::*;
                    Ok(rate_limit_hits.select(key).load::<String>(conn)?)
                })
                .await
                .unwrap();
            assert!(
                stored.iter().all(|k| !k.to_lowercase().contains("person")),
                "{stored:?}"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn purge_removes_ended_windows() {
        on_every_backend(|limiter| async move {
            let config = config("[account.rate_limits]\nsignup = \"1/m/ip\"\nlogin = \"1/h/ip\"\n");
            let a = ip("192.0.2.60");
            assert!(limiter
                .consume_at(&config, "signup", &a, T0)
                .await
                .unwrap()
                .is_allowed());
            assert!(limiter
                .consume_at(&config, "login", &a, T0)
                .await
                .unwrap()
                .is_allowed());
            assert_eq!(limiter.purge_at(T0).await.unwrap(), 0);
            // The minute window (from the first hit) ended; the hour one has not.
            assert_eq!(limiter.purge_at(T0 + 60_001).await.unwrap(), 1);
            assert_eq!(
                limiter
                    .consume_at(&config, "login", &a, T0 + 60_000)
                    .await
                    .unwrap(),
                Consumed::Refused
            );
            assert_eq!(limiter.purge_at(T0 + 3_600_001).await.unwrap(), 1);
            assert!(limiter.purge().await.is_ok());
        })
        .await;
    }

    /// 100 concurrent attempts against 30/m: exactly 30 get through, on
    /// every backend, with several pooled connections racing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_consumers_get_exactly_the_limit() {
        for database in TestDatabase::all().unwrap() {
            let db = database.migrated(8).await.unwrap();
            let limiter = RateLimiter::new(db);
            let config = Arc::new(config(""));
            let subject = ip("192.0.2.70");
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let limiter = limiter.clone();
                    let config = Arc::clone(&config);
                    let subject = subject.clone();
                    tokio::spawn(async move {
                        limiter
                            .consume_at(&config, "login", &subject, T0)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut allowed = 0;
            for task in tasks {
                if task.await.unwrap().is_allowed() {
                    allowed += 1;
                }
            }
            assert_eq!(allowed, 30, "{:?}", database.backend());
        }
    }
}
