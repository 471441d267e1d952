//! The server's shared state as HTTP sees it: the application's services,
//! plus what only HTTP needs (the served document, the CORS policy, the
//! config answers).

use crate::app::services::Services;
use crate::http::configuration::ConfigAnswers;
use crate::http::cors;
use crate::spec::ServedSpec;

/// Shared state of the running server: the application's services, and
/// what only HTTP needs (the served document, the CORS policy, the config
/// answers).
pub struct ServerContext {
    pub services: Services,
    pub spec: ServedSpec,
    pub cors: cors::CorsPolicy,
    /// The `GET config` answers, serialised at start.
    pub config_answers: ConfigAnswers,
}

impl std::ops::Deref for ServerContext {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl ServerContext {
    /// What the account flows need from the server for one request.
    pub fn deps<'a>(
        &'a self,
        now_ms: i64,
        ip: &'a str,
        user_agent: &'a str,
    ) -> crate::app::account::accounts::Deps<'a> {
        self.services.request(now_ms, ip, user_agent)
    }
}
