//! `[server]`: listening address, data directory, secret key, client address, logging, housekeeping.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::checks::{header_name, positive};
use super::{ConfigError, Secret};

/// `[server]`: listening, files, client address, logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (`IP:PORT`; checked by `validate`, read
    /// it parsed with [`ServerConfig::bind_addr`]).
    pub bind: String,
    /// Where the server keeps its own files (generated secret key, mail, SQLite).
    pub data_dir: PathBuf,
    /// Django `SECRET_KEY`: signs email-confirmation keys, password-reset
    /// tokens, HS256 JWTs. When absent the server generates one and persists
    /// it in `data_dir`.
    pub secret_key: Option<Secret>,
    /// Largest accepted request body.
    pub request_body_max_bytes: usize,
    /// How many reverse proxies in front of us append to `client_ip_header`;
    /// 0 = ignore the header and use the socket's peer address.
    pub trusted_proxy_count: usize,
    /// Header carrying the client chain when `trusted_proxy_count > 0`.
    pub client_ip_header: String,
    /// Django's `SECURE_PROXY_SSL_HEADER`: `[header, value]`, e.g.
    /// `["X-Forwarded-Proto", "https"]`, set by a TLS-terminating proxy
    /// that overwrites it. A request carrying it is treated as HTTPS: its
    /// cookies are `Secure`, and unsafe browser requests without `Origin`
    /// need an HTTPS `Referer` of this site (Django's CSRF check).
    pub secure_proxy_ssl_header: Option<[String; 2]>,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or directives).
    pub log_level: String,
    /// Seconds between two runs of the housekeeping task, which deletes
    /// expired sessions, refresh tokens and rate-limit windows (it also runs
    /// at start-up).
    pub housekeeping_interval: u64,
    /// Seconds a stopping server (SIGTERM, SIGINT) gives the requests in
    /// flight to finish; then it exits anyway, with status 1.
    pub shutdown_timeout: u64,
    /// `IP:PORT` of a second listener serving Prometheus metrics at
    /// `/metrics` (unset: no metrics endpoint). Keep it off the public network.
    pub metrics_bind: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8000".to_owned(),
            data_dir: PathBuf::from("./data"),
            secret_key: None,
            request_body_max_bytes: 65536,
            trusted_proxy_count: 0,
            client_ip_header: "X-Forwarded-For".to_owned(),
            secure_proxy_ssl_header: None,
            log_level: "info".to_owned(),
            housekeeping_interval: 300,
            shutdown_timeout: 30,
            metrics_bind: None,
        }
    }
}

impl ServerConfig {
    /// `bind` parsed.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.trim().parse().map_err(|_| {
            ConfigError::inconsistent(
                "server.bind",
                format!(
                    "{:?} is not an IP:PORT socket address (e.g. 127.0.0.1:8000)",
                    self.bind
                ),
            )
        })
    }

    /// `metrics_bind` parsed.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics_bind
            .as_deref()
            .map(|bind| {
                bind.trim().parse().map_err(|_| {
                    ConfigError::inconsistent(
                        "server.metrics_bind",
                        format!("{bind:?} is not an IP:PORT socket address"),
                    )
                })
            })
            .transpose()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        self.metrics_addr()?;
        if let Some(key) = &self.secret_key {
            if key.expose().trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    "server.secret_key",
                    "must not be empty (leave it out to have one generated)",
                ));
            }
        }
        positive(
            "server.request_body_max_bytes",
            self.request_body_max_bytes as u64,
        )?;
        header_name("server.client_ip_header", &self.client_ip_header)?;
        if let Some([header, value]) = &self.secure_proxy_ssl_header {
            header_name("server.secure_proxy_ssl_header", header)?;
            if value.trim().is_empty() {
                return Err(ConfigError::inconsistent(
                    "server.secure_proxy_ssl_header",
                    "needs the value that marks HTTPS, e.g. [\"X-Forwarded-Proto\", \"https\"]",
                ));
            }
        }
        positive("server.housekeeping_interval", self.housekeeping_interval)?;
        positive("server.shutdown_timeout", self.shutdown_timeout)?;
        if self.log_level.trim().is_empty() {
            return Err(ConfigError::inconsistent(
                "server.log_level",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::testing::load;

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        assert_eq!(
            c.server.bind_addr().unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(c.server.data_dir, PathBuf::from("./data"));
        assert!(c.server.secret_key.is_none());
        assert_eq!(c.server.request_body_max_bytes, 65536);
        assert_eq!(c.server.trusted_proxy_count, 0);
        assert_eq!(c.server.client_ip_header, "X-Forwarded-For");
        assert_eq!(c.server.log_level, "info");
    }
}
