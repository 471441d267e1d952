//! The one services value the application layer runs on: configuration,
//! storage, password hashing, rate limits, mail, text messages, JWT keys
//! and the session store, built once at start-up. A request adds its own
//! context (time, client address, user agent) to make the flows' [`Deps`].

use std::sync::Arc;

use crate::app::account::accounts::Deps;
use crate::app::security::passwords::Passwords;
use crate::app::security::ratelimit::RateLimiter;
use crate::app::sessions::jwt::JwtKeys;
use crate::app::sessions::session_store::SessionStore;
use crate::config::Config;
use crate::db::Db;
use crate::email::sender::Mailer;

pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    /// Password hashing on its bounded blocking pool.
    pub passwords: Passwords,
    /// allauth's rate limits, shared through the database.
    pub rate_limiter: RateLimiter,
    /// Wakes the background mail sender after a mail is queued.
    pub mailer: Mailer,
    /// Wakes the background SMS sender after a text message is queued.
    pub texter: crate::sms::Texter,
    /// The JWT keys, with the `jwt` token strategy.
    pub jwt: Option<Arc<JwtKeys>>,
    /// Sessions, read and written with compare-and-set.
    pub sessions: SessionStore,
    /// HTTP to the social providers, with its caches.
    pub remote: crate::app::social::remote::Remote,
    /// Wakes the webhook deliverer.
    pub webhooks: crate::webhooks::Dispatcher,
}

impl Services {
    /// What the flows need for one request.
    pub fn request<'a>(&'a self, now_ms: i64, ip: &'a str, user_agent: &'a str) -> Deps<'a> {
        Deps {
            config: &self.config,
            db: &self.db,
            passwords: &self.passwords,
            rate_limiter: &self.rate_limiter,
            mailer: &self.mailer,
            texter: &self.texter,
            store: &self.sessions,
            remote: &self.remote,
            now_ms,
            ip,
            user_agent,
        }
    }
}
