//! Which session a call belongs to, from the credential its client
//! presented: a session token (the app's `X-Session-Token`, the browser's
//! session cookie) or, with the JWT strategy, an access token. One indexed
//! read in every case, and no hashing but the token's SHA-256 (or the JWT's
//! signature check).

use crate::app::services::Services;
use crate::app::sessions::jwt::TokenUse;
use crate::app::sessions::session::LiveSession;
use crate::app::sessions::session_store::Found;
use crate::app::Error;
pub use crate::db::sessions::Client;

/// What the client presented to name its session.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A session token (app header or browser cookie).
    SessionToken(String),
    /// An access token from the `Authorization` header (app, JWT strategy).
    AccessToken(String),
    /// Nothing: an anonymous call.
    Nothing,
}

/// The session the call runs in.
#[derive(Debug)]
pub enum Admitted {
    /// A live session, a new anonymous one, or one that has just ended
    /// (revoked elsewhere, or a stale browser cookie: the cookie is then
    /// deleted).
    Session(Box<LiveSession>),
    /// The app named a session that no longer exists: allauth's 410.
    Gone,
}

impl Services {
    /// The session `credential` names for a `client` call at `now_ms`.
    pub async fn admit(
        &self,
        client: Client,
        credential: Credential,
        now_ms: i64,
    ) -> Result<Admitted, Error> {
        let session = |s: LiveSession| Ok(Admitted::Session(Box::new(s)));
        match credential {
            Credential::Nothing => session(LiveSession::default()),
            Credential::SessionToken(token) => {
                match self.sessions.by_token(&token, now_ms).await? {
                    Found::Session(live) => Ok(Admitted::Session(live)),
                    Found::Revoked => session(LiveSession::forgotten()),
                    Found::Missing if client == Client::App => Ok(Admitted::Gone),
                    // A stale browser cookie is no session, and is deleted (as
                    // Django's session middleware does).
                    Found::Missing => session(LiveSession::forgotten()),
                }
            }
            Credential::AccessToken(token) => self.by_access_token(&token, now_ms).await,
        }
    }

    /// The session named by an access token's `sid`. A token that does not
    /// verify leaves the call anonymous, as in allauth (which then ignores
    /// the header).
    async fn by_access_token(&self, token: &str, now_ms: i64) -> Result<Admitted, Error> {
        let anonymous = || Ok(Admitted::Session(Box::default()));
        let Some(claims) = self
            .jwt
            .as_ref()
            .and_then(|keys| keys.verify(token, TokenUse::Access))
        else {
            return anonymous();
        };
        let Some(session_id) = claims.session_id() else {
            return anonymous();
        };
        // The session must still have the key the token was issued under (a
        // password change cycles it); else it is gone.
        let found = self
            .sessions
            .by_id(session_id, now_ms, |key_hash| claims.names_key(key_hash))
            .await?;
        let session = match found {
            Found::Session(session) => session,
            Found::Revoked => return Ok(Admitted::Session(Box::new(LiveSession::forgotten()))),
            // Stateful validation refuses the token; stateless validation
            // answers allauth's 410.
            Found::Missing if self.config.headless.jwt_stateful_validation_enabled => {
                return anonymous()
            }
            Found::Missing => return Ok(Admitted::Gone),
        };
        // A live session whose user is inactive or deleted is anonymous
        // (401), as with a session token; one of another user than the
        // token's is not this token's session at all.
        if session
            .user
            .as_ref()
            .is_some_and(|u| u.id.to_string() != claims.sub)
        {
            return anonymous();
        }
        Ok(Admitted::Session(session))
    }
}
