//! Starting a real server for a test, on a fresh database of either backend.

use std::future::Future;

use allauth_server::config::Config;
use allauth_server::db::testing::TestDatabase;
use allauth_server::RunningServer;

/// The storage backends a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL when `TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        all.push(Backend::Postgres);
    }
    all
}

pub struct TestServer {
    pub server: RunningServer,
    pub base: String,
    #[allow(dead_code)]
    pub backend: Backend,
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with allauth's defaults, changed by `configure`.
    pub async fn start(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::from_sources("", &[]).expect("default configuration");
        config.server.bind = "127.0.0.1:0".to_string();
        config.server.data_dir = dir.path().to_path_buf();
        config.server.log_level = "warn".to_string();
        config.email.file_path = dir.path().join("mail");
        let database = match backend {
            Backend::Sqlite => {
                config.database.url =
                    format!("sqlite://{}", dir.path().join("test.sqlite3").display());
                None
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                let database = TestDatabase::create(&admin).expect("throwaway PostgreSQL database");
                config.database.url = database.url().to_string();
                Some(database)
            }
        };
        configure(&mut config);
        let server = allauth_server::start(config).await.expect("server starts");
        let base = format!("http://{}", server.local_addr());
        TestServer {
            server,
            base,
            backend,
            _database: database,
            _dir: dir,
        }
    }

    pub fn client(&self) -> allauth_api::client::Client {
        allauth_api::client::Client::new(&self.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(self) {
        let TestServer {
            server,
            _database,
            _dir,
            ..
        } = self;
        server.stop().await.expect("server stops");
        drop(_database);
    }
}

/// Runs `test` once per backend, each on a fresh server.
pub async fn on_each_backend<F, Fut>(configure: impl Fn(&mut Config), test: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = TestServer>,
{
    for backend in backends() {
        let server = TestServer::start(backend, &configure).await;
        let server = test(server).await;
        server.stop().await;
    }
}

/// A plain HTTP client for requests the generated client cannot make.
pub fn raw() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// The shipped example configuration (every feature on, specification
/// served), as a configure step. Server and storage keep the test's values.
pub fn everything(config: &mut Config) {
    let example = Config::from_sources(include_str!("../../allauth-server.example.toml"), &[])
        .expect("the example configuration loads");
    let server = config.server.clone();
    let database = config.database.clone();
    let email = config.email.clone();
    *config = example;
    config.server = server;
    config.database = database;
    config.email = email;
}

/// The value a response's `Set-Cookie` gives cookie `name`, if it sets it.
pub fn response_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(prefix.as_str()))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
}
