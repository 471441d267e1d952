//! Delivery of one `sms_outbox` row through the configured backend.
//!
//! Backends (`[sms] backend`):
//!
//! * `console`: the message on standard output between two marker lines,
//!   the number masked, the body in full (codes included: that is its
//!   purpose; for development only).
//! * `file`: one `<created_at>-<id>.txt` per message in `file_path`
//!   (created when missing; both numbers zero-padded, so names sort by
//!   time), written to a temporary name then renamed, so a reader never sees
//!   half a file and a retry replaces rather than duplicates.
//! * `webhook`: `POST webhook_url` with the JSON body
//!   `{"id", "to", "body", "kind"}` and the headers `Webhook-Id` (the same
//!   for every attempt at a message, for deduplication), `Webhook-Timestamp`
//!   (unix seconds of this attempt) and `Webhook-Signature` (`v1=` and the
//!   hex HMAC-SHA256 under `webhook_secret` of `"{timestamp}.{body}"`, as
//!   `crate::webhooks`). A 2xx answer is success; anything else is retried.
//! * `twilio`: `POST {twilio_base_url}/2010-04-01/Accounts/{sid}/Messages.json`,
//!   form `To`, `From`, `Body`, HTTP Basic auth `sid:token`. A 2xx answer is
//!   success; 429, 5xx and network errors are retried; any other 4xx (an
//!   invalid or unreachable number, a bad sender, bad credentials) is
//!   permanent.
//!
//! Error texts (stored in `last_error`, logged) never hold the number nor
//! the body: of a Twilio refusal only the status and Twilio's numeric error
//! code are kept, since Twilio's message repeats the number.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Secret, SmsBackend, SmsConfig};
use crate::db::now_millis;
use crate::db::sms_outbox::Sms;

use super::messages::{is_e164, mask_number};

/// The configuration cannot give a working transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("sms: HTTP client: {0}")]
    Http(String),
    #[error("sms: {0}")]
    Config(String),
}

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Retrying cannot help (not an E.164 number, a 4xx from Twilio).
    #[error("{0}")]
    Permanent(String),
    /// The backend refused or could not be reached: worth retrying.
    #[error("{0}")]
    Delivery(String),
}

impl SendError {
    /// True when a retry cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

/// A configured backend.
pub struct Transport {
    backend: Backend,
}

enum Backend {
    Console,
    File(PathBuf),
    Webhook {
        http: reqwest::Client,
        url: String,
        secret: Secret,
    },
    Twilio {
        http: reqwest::Client,
        /// The Messages endpoint of the account.
        url: String,
        sid: String,
        token: Secret,
        from: String,
    },
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Name the backend only: the others hold credentials.
        let backend = match &self.backend {
            Backend::Console => "console",
            Backend::File(_) => "file",
            Backend::Webhook { .. } => "webhook",
            Backend::Twilio { .. } => "twilio",
        };
        f.debug_struct("Transport")
            .field("backend", &backend)
            .finish()
    }
}

fn missing(key: &str) -> TransportError {
    TransportError::Config(format!("sms.{key} is not set"))
}

impl Transport {
    /// Builds the backend `config` names; opens no connection.
    pub fn from_config(config: &SmsConfig) -> Result<Transport, TransportError> {
        let http = || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(config.timeout_secs.max(1)))
                // Credentials and signed bodies go where configured, nowhere else.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| TransportError::Http(e.to_string()))
        };
        let backend = match config.backend {
            SmsBackend::Console => Backend::Console,
            SmsBackend::File => Backend::File(config.file_path.clone()),
            SmsBackend::Webhook => Backend::Webhook {
                http: http()?,
                url: config
                    .webhook_url
                    .clone()
                    .ok_or_else(|| missing("webhook_url"))?,
                secret: config
                    .webhook_secret
                    .clone()
                    .ok_or_else(|| missing("webhook_secret"))?,
            },
            SmsBackend::Twilio => {
                let sid = config
                    .twilio_account_sid
                    .clone()
                    .ok_or_else(|| missing("twilio_account_sid"))?;
                Backend::Twilio {
                    http: http()?,
                    url: format!(
                        "{}/2010-04-01/Accounts/{sid}/Messages.json",
                        config.twilio_base_url.trim().trim_end_matches('/')
                    ),
                    sid,
                    token: config
                        .twilio_auth_token
                        .clone()
                        .ok_or_else(|| missing("twilio_auth_token"))?,
                    from: config
                        .twilio_from
                        .clone()
                        .ok_or_else(|| missing("twilio_from"))?,
                }
            }
        };
        Ok(Transport { backend })
    }

    /// One delivery attempt, bounded in time by `timeout_secs` for the HTTP
    /// backends; callers add an overall limit.
    pub async fn send(&self, sms: &Sms) -> Result<(), SendError> {
        if !is_e164(&sms.to_number) {
            return Err(SendError::Permanent(format!(
                "{} is not an E.164 number",
                mask_number(&sms.to_number)
            )));
        }
        match &self.backend {
            Backend::Console => print_to_console(sms),
            Backend::File(dir) => write_file(dir, sms).await,
            Backend::Webhook { http, url, secret } => send_webhook(http, url, secret, sms).await,
            Backend::Twilio {
                http,
                url,
                sid,
                token,
                from,
            } => send_twilio(http, url, sid, token, from, sms).await,
        }
    }
}

/// The marker lines around a message printed by the console backend.
pub const CONSOLE_BEGIN: &str = "-------- sms begins";
pub const CONSOLE_END: &str = "-------- sms ends";

fn print_to_console(sms: &Sms) -> Result<(), SendError> {
    use std::io::Write;
    let id = sms.id;
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "{CONSOLE_BEGIN} (outbox {id}) --------\nTo: {}\nKind: {}\n\n{}\n{CONSOLE_END} (outbox {id}) --------\n",
        mask_number(&sms.to_number),
        sms.kind,
        sms.body.trim_end()
    )
    .and_then(|()| out.flush())
    .map_err(|e| SendError::Delivery(format!("writing to standard output: {e}")))
}

/// The name of the file of `sms`: sorts by queuing time, then id.
pub fn file_name(sms: &Sms) -> String {
    format!("{:015}-{:012}.txt", sms.created_at.max(0), sms.id.max(0))
}

async fn write_file(dir: &Path, sms: &Sms) -> Result<(), SendError> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        SendError::Delivery(format!("{what} {}: {e}", path.display()))
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| fail("cannot create", dir, e))?;
    let name = file_name(sms);
    let path = dir.join(&name);
    let temporary = dir.join(format!(".{name}.tmp"));
    let text = format!(
        "To: {}\nKind: {}\nCreated: {}\n\n{}\n",
        sms.to_number, sms.kind, sms.created_at, sms.body
    );
    tokio::fs::write(&temporary, text)
        .await
        .map_err(|e| fail("cannot write", &temporary, e))?;
    tokio::fs::rename(&temporary, &path)
        .await
        .map_err(|e| fail("cannot rename to", &path, e))
}

/// A request error, without the URL (it may hold a token) and never with the
/// body.
fn request_error(e: &reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = e.to_string();
    if let Some(url) = e.url() {
        detail = detail.replace(url.as_str(), "<url>");
    }
    SendError::Delivery(format!("{what}: {detail}"))
}

/// The `Webhook-Id` of a row: the same on every attempt.
pub fn webhook_id(sms: &Sms) -> String {
    format!("sms_{}_{}", sms.created_at, sms.id)
}

async fn send_webhook(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret,
    sms: &Sms,
) -> Result<(), SendError> {
    let id = webhook_id(sms);
    let body = serde_json::json!({
        "id": id,
        "to": sms.to_number,
        "body": sms.body,
        "kind": sms.kind,
    })
    .to_string();
    let timestamp = now_millis().div_euclid(1000);
    let response = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("Webhook-Id", &id)
        .header("Webhook-Timestamp", timestamp.to_string())
        .header(
            "Webhook-Signature",
            crate::webhooks::signature(secret.expose(), timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| request_error(&e))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(SendError::Delivery(format!("webhook answered {status}")))
    }
}

async fn send_twilio(
    http: &reqwest::Client,
    url: &str,
    sid: &str,
    token: &Secret,
    from: &str,
    sms: &Sms,
) -> Result<(), SendError> {
    let response = http
        .post(url)
        .basic_auth(sid, Some(token.expose()))
        .form(&[
            ("To", sms.to_number.as_str()),
            ("From", from),
            ("Body", sms.body.as_str()),
        ])
        .send()
        .await
        .map_err(|e| request_error(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // Twilio's `message` names the number: keep only its numeric `code`.
    let code = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v.get("code").and_then(serde_json::Value::as_i64));
    let text = match code {
        Some(code) => format!("Twilio answered {status} (error {code})"),
        None => format!("Twilio answered {status}"),
    };
    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(SendError::Permanent(text))
    } else {
        Err(SendError::Delivery(text))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn sms(to: &str) -> Sms {
        Sms {
            id: 7,
            to_number: to.into(),
            body: "123456 is your code".into(),
            kind: "verification_code".into(),
            created_at: 1_700_000_000_000,
            next_attempt_at: 0,
            attempts: 0,
            last_error: None,
            sent_at: None,
        }
    }

    #[tokio::test]
    async fn a_number_that_is_not_e164_is_permanent_and_masked() {
        let transport = Transport::from_config(&SmsConfig::default()).unwrap();
        let err = transport.send(&sms("004915112345678")).await.unwrap_err();
        assert!(err.is_permanent());
        assert!(!err.to_string().contains("15112345678"), "{err}");
    }

    #[test]
    fn file_names_sort_by_time() {
        let mut a = sms("+15005550006");
        let mut b = a.clone();
        a.created_at = 999_999_999_999;
        a.id = 100;
        b.created_at = 1_000_000_000_000;
        b.id = 2;
        assert!(file_name(&a) < file_name(&b));
    }

    #[test]
    fn debug_names_the_backend_only() {
        let config = SmsConfig {
            backend: SmsBackend::Twilio,
            twilio_account_sid: Some("AC1".into()),
            twilio_auth_token: Some(Secret::new("tw-s3cr3t")),
            twilio_from: Some("+15005550006".into()),
            ..SmsConfig::default()
        };
        let transport = Transport::from_config(&config).unwrap();
        let printed = format!("{transport:?}");
        assert!(printed.contains("twilio") && !printed.contains("s3cr3t"));
    }
}
