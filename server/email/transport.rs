//! Delivery of one outbox row: build the RFC 5322 message (text and HTML as multipart/alternative) and hand it to the configured backend.
//!
//! Backends (`[email] backend`):
//!
//! * `console`: the whole message on standard output between two marker
//!   lines. Printing mails, codes and links included, is its purpose: for
//!   development only.
//! * `file`: one `<created_at>-<id>.eml` per mail in `file_path` (created
//!   when missing), written to a temporary name then renamed, so a reader never
//!   sees half a file and a retry replaces rather than duplicates.
//! * `smtp`: `smtp_host`:`smtp_port`, plain (`none`), `starttls` (required, not
//!   opportunistic) or implicit `tls`, optional credentials, `smtp_timeout`
//!   per network operation. TLS is rustls, server certificates checked
//!   against the system's trust store (Debian: `ca-certificates`).
//!
//! The Message-ID is derived from the outbox row, so every attempt at the
//! same mail carries the same one, and the Date is the time it was queued.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::{header, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{EmailBackend, EmailConfig, SmtpTls};
use crate::db::mail_outbox::Mail;

/// The configuration cannot give a working transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("email.from: {value:?} is not a valid mailbox: {message}")]
    From { value: String, message: String },
    #[error("SMTP transport: {0}")]
    Smtp(String),
}

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The row cannot become a message (e.g. the recipient is not a valid
    /// address): retrying cannot help.
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The backend refused or could not be reached: worth retrying.
    #[error("{0}")]
    Delivery(String),
}

impl SendError {
    /// True when a retry cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Build(_))
    }
}

/// A configured backend and sender address.
pub struct Transport {
    from: Mailbox,
    /// Right part of the sender address, for Message-IDs.
    id_domain: String,
    backend: Backend,
}

enum Backend {
    Console,
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SMTP transport holds the credentials: name the backend only.
        let backend = match &self.backend {
            Backend::Console => "console",
            Backend::File(_) => "file",
            Backend::Smtp(_) => "smtp",
        };
        f.debug_struct("Transport")
            .field("from", &self.from.to_string())
            .field("backend", &backend)
            .finish()
    }
}

impl Transport {
    /// Builds the backend `config` names; opens no connection. The SMTP
    /// backend must be built inside a tokio runtime (its connection pool
    /// lives there): elsewhere it is an error.
    pub fn from_config(config: &EmailConfig) -> Result<Transport, TransportError> {
        let from: Mailbox =
            config
                .from
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| TransportError::From {
                    value: config.from.clone(),
                    message: e.to_string(),
                })?;
        let id_domain = from.email.domain().to_owned();
        let backend = match config.backend {
            EmailBackend::Console => Backend::Console,
            EmailBackend::File => Backend::File(config.file_path.clone()),
            EmailBackend::Smtp => Backend::Smtp(smtp_transport(config)?),
        };
        Ok(Transport {
            from,
            id_domain,
            backend,
        })
    }

    /// The message for an outbox row.
    pub fn build_message(&self, mail: &Mail) -> Result<lettre::Message, SendError> {
        let to: Mailbox =
            mail.to_addr
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| {
                    SendError::Build(format!("recipient {:?}: {e}", mail.to_addr))
                })?;
        let date = UNIX_EPOCH + Duration::from_millis(u64::try_from(mail.created_at).unwrap_or(0));
        let date = if date > SystemTime::now() + Duration::from_secs(3600) {
            SystemTime::now()
        } else {
            date
        };
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.lines().collect::<String>())
            .date(date)
            .message_id(Some(format!(
                "<outbox.{}.{}@{}>",
                mail.id, mail.created_at, self.id_domain
            )))
            .header(header::MIME_VERSION_1_0);
        let built = match &mail.body_html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                mail.body_text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(SinglePart::plain(mail.body_text.clone())),
        };
        built.map_err(|e| SendError::Build(e.to_string()))
    }

    /// One delivery attempt. Bounded in time only by the backend's own
    /// timeouts (SMTP: `smtp_timeout` per operation); callers add an overall limit.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let message = self.build_message(mail)?;
        match &self.backend {
            Backend::Console => print_to_console(mail.id, &message.formatted()),
            Backend::File(dir) => write_file(dir, mail, &message.formatted()).await,
            Backend::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Delivery(format!("SMTP: {e}"))),
        }
    }
}

fn smtp_transport(
    config: &EmailConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, TransportError> {
    // The connection pool spawns its upkeep task on the current runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TransportError::Smtp(
            "the SMTP transport must be built inside a tokio runtime".to_owned(),
        ));
    }
    let host = config.smtp_host.trim();
    let tls_parameters =
        || TlsParameters::new(host.to_owned()).map_err(|e| TransportError::Smtp(e.to_string()));
    let tls = match config.smtp_tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(tls_parameters()?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(config.smtp_port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(config.smtp_timeout)));
    if let Some(username) = &config.smtp_username {
        let password = config
            .smtp_password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok(builder.build())
}

/// The marker lines around a mail printed by the console backend.
pub const CONSOLE_BEGIN: &str = "-------- mail begins";
pub const CONSOLE_END: &str = "-------- mail ends";

fn print_to_console(id: i64, formatted: &[u8]) -> Result<(), SendError> {
    use std::io::Write;
    let text = String::from_utf8_lossy(formatted);
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "{CONSOLE_BEGIN} (outbox {id}) --------\n{}\n{CONSOLE_END} (outbox {id}) --------\n",
        text.trim_end()
    )
    .and_then(|()| out.flush())
    .map_err(|e| SendError::Delivery(format!("writing to standard output: {e}")))
}

async fn write_file(dir: &Path, mail: &Mail, formatted: &[u8]) -> Result<(), SendError> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        SendError::Delivery(format!("{what} {}: {e}", path.display()))
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| fail("cannot create", dir, e))?;
    let name = format!("{}-{}.eml", mail.created_at, mail.id);
    let path = dir.join(&name);
    let temporary = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&temporary, formatted)
        .await
        .map_err(|e| fail("cannot write", &temporary, e))?;
    tokio::fs::rename(&temporary, &path)
        .await
        .map_err(|e| fail("cannot rename to", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str) -> Mail {
        Mail {
            id: 7,
            created_at: 1_700_000_000_000,
            to_addr: to.into(),
            subject: "Hello\r\nBcc: x@y".into(),
            body_text: "text body".into(),
            body_html: Some("<p>html body</p>".into()),
            attempts: 0,
            next_attempt_at: 0,
            sent_at: None,
            last_error: None,
        }
    }

    #[tokio::test]
    async fn builds_multipart_alternative() {
        let transport = Transport::from_config(&EmailConfig::default()).unwrap();
        let message = transport.build_message(&mail("a@example.com")).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("Message-ID: <outbox.7.1700000000000@localhost>"),
            "{text}"
        );
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.contains("text/plain") && text.contains("text/html"));
    }

    #[tokio::test]
    async fn a_bad_recipient_is_permanent() {
        let transport = Transport::from_config(&EmailConfig::default()).unwrap();
        let err = transport
            .build_message(&mail("not an address"))
            .unwrap_err();
        assert!(err.is_permanent());
    }

    #[test]
    fn smtp_outside_a_runtime_is_an_error() {
        let config = EmailConfig {
            backend: EmailBackend::Smtp,
            ..EmailConfig::default()
        };
        assert!(matches!(
            Transport::from_config(&config),
            Err(TransportError::Smtp(_))
        ));
    }

    #[tokio::test]
    async fn a_bad_sender_is_refused() {
        let config = EmailConfig {
            from: "not@ an address".into(),
            ..EmailConfig::default()
        };
        assert!(matches!(
            Transport::from_config(&config),
            Err(TransportError::From { .. })
        ));
    }
}
