//! Start-up: storage and migrations, the served document, the dropshot server.

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{ConfigDropshot, HandlerTaskMode, HttpServer, ServerBuilder};

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
    #[error("server address {0:?} is not a socket address")]
    Bind(String),
    #[error("the API description is inconsistent: {0}")]
    Api(String),
    #[error("could not start the HTTP server: {0}")]
    Server(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error("{0}")]
    Sms(String),
    #[error("JWT keys: {0}")]
    Jwt(String),
    #[error("data directory {path}: {message}")]
    DataDir { path: String, message: String },
}

/// A started server; dropping it does not stop it, [`RunningServer::stop`] does.
pub struct RunningServer {
    server: HttpServer<ServerContext>,
    background: Background,
    /// The Prometheus listener (`server.metrics_bind`).
    metrics: Option<HttpServer<crate::metrics::MetricsContext>>,
}

/// The background tasks: the mail and SMS senders and the housekeeping of expired
/// sessions and rate-limit windows (no cron job needed).
struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Deletes expired sessions (their refresh tokens go with them), expired
/// refresh tokens and old rate-limit windows now and then every `interval`.
/// Frees the password hashing buffers once logins have paused for
/// `passwords::IDLE_RELEASE` (checked every few seconds).
async fn release_idle_buffers(
    passwords: crate::app::security::passwords::Passwords,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let idle = crate::app::security::passwords::IDLE_RELEASE;
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
        let released = passwords.release_idle_buffers(idle);
        if released > 0 {
            tracing::debug!(released, "password hashing buffers freed after idling");
        }
    }
}

async fn housekeeping(
    db: Db,
    limiter: crate::app::security::ratelimit::RateLimiter,
    interval: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        let now = crate::db::now_millis();
        if let Err(error) = db
            .run(move |conn| crate::db::sessions::delete_expired(conn, now))
            .await
        {
            tracing::warn!(%error, "removing expired sessions failed");
        }
        if let Err(error) = db
            .run(move |conn| crate::db::refresh_tokens::delete_expired(conn, now))
            .await
        {
            tracing::warn!(%error, "removing expired refresh tokens failed");
        }
        if let Err(error) = limiter.purge().await {
            tracing::warn!(%error, "purging rate-limit windows failed");
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn context(&self) -> &ServerContext {
        self.server.app_private()
    }

    /// Where the metrics listener listens, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }

    pub async fn stop(self) -> Result<(), String> {
        if let Some(metrics) = self.metrics {
            let _ = metrics.close().await;
        }
        let result = self.server.close().await;
        self.background.stop().await;
        result
    }

    /// Serves until `signal` fires, then stops gracefully: no new
    /// connections, the requests in flight finish (within `grace`), the
    /// background tasks end (the mail and SMS senders after the message they are sending).
    pub async fn serve_until(
        self,
        signal: impl std::future::Future<Output = ()>,
        grace: std::time::Duration,
    ) -> Result<(), String> {
        let ended = self.server.wait_for_shutdown();
        tokio::select! {
            result = ended => {
                self.background.stop().await;
                result
            }
            () = signal => {
                tracing::info!(grace_secs = grace.as_secs(), "stopping: finishing the requests in flight");
                match tokio::time::timeout(grace, self.stop()).await {
                    Ok(result) => {
                        tracing::info!("stopped");
                        result
                    }
                    Err(_) => Err(format!(
                        "requests still in flight after {}s; exiting anyway",
                        grace.as_secs()
                    )),
                }
            }
        }
    }

    /// Runs until the server stops.
    pub async fn wait(self) -> Result<(), String> {
        let result = self.server.await;
        self.background.stop().await;
        result
    }
}

/// Connects to the database, migrates it and starts serving.
pub async fn start(mut config: Config) -> Result<RunningServer, StartError> {
    config.validate()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    if config.server.secret_key.is_none() {
        config.server.secret_key = Some(persistent_secret_key(&config.server.data_dir)?);
    }
    let bind: SocketAddr = config
        .server
        .bind
        .parse()
        .map_err(|_| StartError::Bind(config.server.bind.clone()))?;
    // Connecting and migrating is blocking work, mostly waiting for the
    // database: it runs off the executor while the rest is built.
    let (url, max) = (config.database.url.clone(), config.database.max_connections);
    let opening = tokio::task::spawn_blocking(move || Db::open(&url, max));
    let cors = CorsPolicy::new(&config.cors);
    let request_body_max_bytes = config.server.request_body_max_bytes;
    // dropshot's records go through `tracing`, whole lines on one stream.
    let log = crate::logging::dropshot_logger();
    let api = allauth_api::api::allauth_api_mod::api_description::<Api>()
        .map_err(|e| StartError::Api(e.to_string()))?;
    let jwt = crate::app::sessions::jwt::JwtKeys::from_config(&config)
        .map_err(StartError::Jwt)?
        .map(Arc::new);
    let config_answers =
        crate::http::configuration::ConfigAnswers::new(&config).map_err(StartError::Server)?;
    let db = opening
        .await
        .map_err(|e| StartError::Server(format!("database connect task: {e}")))??;
    let config = Arc::new(config);
    let spec = ServedSpec::new(config.clone());
    let passwords = crate::app::security::passwords::Passwords::new(&config.account);
    let rate_limiter = crate::app::security::ratelimit::RateLimiter::new(db.clone());
    let mailer = crate::email::sender::Mailer::new();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let sender = crate::email::sender::spawn_sender(
        db.clone(),
        config.clone(),
        mailer.clone(),
        stopped(stop_rx.clone()),
    )
    .map_err(|e| StartError::Mail(e.to_string()))?;
    let texter = crate::sms::Texter::new();
    let sms_sender = crate::sms::spawn_sender(
        db.clone(),
        config.clone(),
        texter.clone(),
        stopped(stop_rx.clone()),
    )
    .map_err(|e| StartError::Sms(e.to_string()))?;
    let interval = std::time::Duration::from_secs(config.server.housekeeping_interval);
    let dispatcher = crate::webhooks::Dispatcher::default();
    let deliverer = crate::webhooks::spawn_deliverer(
        db.clone(),
        config.clone(),
        dispatcher.clone(),
        stopped(stop_rx.clone()),
    );
    let releaser = tokio::spawn(release_idle_buffers(
        passwords.clone(),
        stopped(stop_rx.clone()),
    ));
    let chores = tokio::spawn(housekeeping(
        db.clone(),
        rate_limiter.clone(),
        interval,
        stop_rx,
    ));
    let background = Background {
        stop,
        tasks: [sender, sms_sender, chores, releaser]
            .into_iter()
            .chain(deliverer)
            .collect(),
    };
    let sessions = match config.database.session_cache_entries {
        0 => crate::app::sessions::session_store::SessionStore::new(db.clone()),
        entries => {
            let cache = crate::app::sessions::session_cache::SessionCache::new(entries);
            db.watch(cache.clone())?;
            crate::app::sessions::session_store::SessionStore::cached(db.clone(), cache)
        }
    };
    let metrics_bind = config.server.metrics_addr()?;
    let metrics_db = db.clone();
    let remote = crate::app::social::remote::Remote::new(
        config.socialaccount.requests_timeout,
        config.socialaccount.enabled && !config.socialaccount.providers.is_empty(),
    );
    let context = ServerContext {
        services: crate::app::services::Services {
            config,
            db,
            passwords,
            rate_limiter,
            mailer,
            texter,
            jwt,
            sessions,
            remote,
            webhooks: dispatcher,
        },
        spec,
        cors,
        config_answers,
    };
    let dropshot_config = ConfigDropshot {
        bind_address: bind,
        default_request_body_max_bytes: request_body_max_bytes,
        default_handler_task_mode: HandlerTaskMode::Detached,
        ..Default::default()
    };
    let metrics = match metrics_bind {
        Some(bind) => Some(
            crate::metrics::serve(bind, metrics_db)
                .map_err(|e| StartError::Server(format!("metrics listener: {e}")))?,
        ),
        None => None,
    };
    let server = ServerBuilder::new(api, context, log)
        .config(dropshot_config)
        .start()
        .map_err(|e| StartError::Server(e.to_string()))?;
    Ok(RunningServer {
        server,
        background,
        metrics,
    })
}

/// The file in `data_dir` that keeps the generated secret key.
const SECRET_KEY_FILE: &str = "secret_key";

/// `server.secret_key` when none is configured: read from `data_dir`, or
/// generated (64 random characters) and written there, readable by the owner
/// only, so that signed keys survive restarts.
pub(crate) fn persistent_secret_key(
    data_dir: &std::path::Path,
) -> Result<crate::config::Secret, StartError> {
    use rand::distr::{Alphanumeric, SampleString};
    let fail = |e: std::io::Error| StartError::DataDir {
        path: data_dir.display().to_string(),
        message: e.to_string(),
    };
    let path = data_dir.join(SECRET_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 50 => return Ok(crate::config::Secret::new(text.trim())),
        Ok(_) => {
            return Err(StartError::DataDir {
                path: path.display().to_string(),
                message: "the stored secret key is shorter than 50 characters".to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(fail)?;
    let key = Alphanumeric.sample_string(&mut rand::rng(), 64);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(fail)?;
    std::io::Write::write_all(&mut file, key.as_bytes()).map_err(fail)?;
    Ok(crate::config::Secret::new(key))
}
