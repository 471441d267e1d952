//! Start-up: storage and migrations, the served document, the dropshot server.

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{
    ConfigDropshot, ConfigLogging, ConfigLoggingLevel, HandlerTaskMode, HttpServer, ServerBuilder,
};

use crate::config::Config;
use crate::db::Db;
use crate::http::{api::Api, cors::CorsPolicy, ServerContext};
use crate::spec::ServedSpec;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Spec(#[from] crate::spec::SpecError),
    #[error("server address {0:?} is not a socket address")]
    Bind(String),
    #[error("logging: {0}")]
    Logging(String),
    #[error("the API description is inconsistent: {0}")]
    Api(String),
    #[error("could not start the HTTP server: {0}")]
    Server(String),
}

/// A started server; dropping it does not stop it, [`RunningServer::stop`] does.
pub struct RunningServer {
    server: HttpServer<ServerContext>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn context(&self) -> &ServerContext {
        self.server.app_private()
    }

    pub async fn stop(self) -> Result<(), String> {
        self.server.close().await
    }

    /// Runs until the server stops.
    pub async fn wait(self) -> Result<(), String> {
        self.server.await
    }
}

/// Connects to the database, migrates it and starts serving.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    config.validate()?;
    let bind: SocketAddr = config
        .server
        .bind
        .parse()
        .map_err(|_| StartError::Bind(config.server.bind.clone()))?;
    let db = Db::connect(&config.database.url, config.database.max_connections)?;
    db.migrate().await?;
    let spec = ServedSpec::build(&config)?;
    let cors = CorsPolicy::new(&config.cors);
    let request_body_max_bytes = config.server.request_body_max_bytes;
    let level = match config.server.log_level.as_str() {
        "trace" => ConfigLoggingLevel::Trace,
        "debug" => ConfigLoggingLevel::Debug,
        "warn" => ConfigLoggingLevel::Warn,
        "error" => ConfigLoggingLevel::Error,
        "critical" => ConfigLoggingLevel::Critical,
        _ => ConfigLoggingLevel::Info,
    };
    let log = ConfigLogging::StderrTerminal { level }
        .to_logger("allauth-server")
        .map_err(|e| StartError::Logging(e.to_string()))?;
    let api = allauth_api::api::allauth_api_mod::api_description::<Api>()
        .map_err(|e| StartError::Api(e.to_string()))?;
    let context = ServerContext {
        config: Arc::new(config),
        db,
        spec,
        cors,
    };
    let dropshot_config = ConfigDropshot {
        bind_address: bind,
        default_request_body_max_bytes: request_body_max_bytes,
        default_handler_task_mode: HandlerTaskMode::Detached,
        ..Default::default()
    };
    let server = ServerBuilder::new(api, context, log)
        .config(dropshot_config)
        .start()
        .map_err(|e| StartError::Server(e.to_string()))?;
    Ok(RunningServer { server })
}
