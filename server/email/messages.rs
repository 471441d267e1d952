//! The mails of the account flows: one [`Message`] variant each, rendered to a subject, a plain-text body and an HTML body.
//!
//! The set follows django-allauth's `account/email/*` templates (which mails
//! exist and what they must carry: the link or code, the address concerned);
//! the wording is ours. allauth greets with the site's name; we have no site
//! name setting, so the bodies are neutral. Values are inserted as text:
//! escaped in the HTML body, never interpreted as markup.
//!
//! The subject prefix is `account.email_subject_prefix`; unset means
//! allauth's default `"[<site name>] "`, the site being the frontend the
//! mails link to: the host (and port) of the first configured
//! `[headless] frontend_urls` entry. With none configured there is no site
//! to name, and no prefix. Line breaks in the prefix are dropped, as
//! allauth does.

use crate::config::Config;

/// One mail, with the values it needs. Links are absolute (or
/// server-relative) URLs built with [`super::links::FrontendLinks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Confirm an address by following a link (signup, added address, resend).
    EmailVerificationLink { url: String, email: String },
    /// Confirm an address by entering a code.
    EmailVerificationCode { code: String, email: String },
    /// Reset the password by following a link.
    PasswordResetLink { url: String, email: String },
    /// Reset the password by entering a code.
    PasswordResetCode { code: String, email: String },
    /// Sign in by entering a code.
    LoginCode { code: String, email: String },
    /// A reset or a code was asked for an address that has no account
    /// (enumeration prevention answers the request as if it had one).
    UnknownAccount {
        email: String,
        signup_url: Option<String>,
    },
    /// Someone signed up with an address that already has an account
    /// (mandatory verification with enumeration prevention).
    AccountAlreadyExists {
        email: String,
        password_reset_url: Option<String>,
    },
    /// Notification: the primary address changed from `from` to `to`.
    EmailChanged {
        from: String,
        to: String,
        origin: ChangeOrigin,
    },
    /// Notification: an address was confirmed.
    EmailConfirmed { email: String, origin: ChangeOrigin },
    /// Notification: an address was removed from the account.
    EmailDeleted { email: String, origin: ChangeOrigin },
    /// Notification: the password was changed.
    PasswordChanged { origin: ChangeOrigin },
    /// Notification: a password was set on an account that had none.
    PasswordSet { origin: ChangeOrigin },
    /// Notification: the password was reset.
    PasswordReset { origin: ChangeOrigin },
    /// Notification: TOTP was activated.
    TotpActivated { origin: ChangeOrigin },
    /// Notification: TOTP was deactivated.
    TotpDeactivated { origin: ChangeOrigin },
    /// Notification: a new set of recovery codes was generated.
    RecoveryCodesGenerated { origin: ChangeOrigin },
    /// Notification: a security key or passkey was added.
    WebauthnAdded { name: String, origin: ChangeOrigin },
    /// Notification: a security key or passkey was removed.
    WebauthnRemoved { name: String, origin: ChangeOrigin },
    /// A provider account was connected (`provider` is its display name).
    SocialAccountConnected {
        provider: String,
        origin: ChangeOrigin,
    },
    SocialAccountDisconnected {
        provider: String,
        origin: ChangeOrigin,
    },
}

/// Where a change to an account came from: the notices show it (allauth's
/// notification context `timestamp`, `ip` and `user_agent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeOrigin {
    /// Unix epoch milliseconds.
    pub at_ms: i64,
    pub ip: String,
    /// The `User-Agent` of the request, "" when it had none.
    pub user_agent: String,
}

impl ChangeOrigin {
    /// The date as an HTTP date (`Sun, 22 Nov 2026 08:46:11 GMT`).
    fn date(&self) -> String {
        let at = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(self.at_ms).unwrap_or(0));
        httpdate::fmt_http_date(at)
    }
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, prefix included.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A piece of a mail body; each renders to text and to HTML.
enum Block {
    /// A paragraph of prose; `{}` holes are already filled.
    Para(String),
    /// A code to type, set apart.
    Code(String),
    /// A link, shown in full.
    Link(String),
}

/// Closing line of the mails that carry a code or a link.
const IGNORE_IF_NOT_YOU: &str =
    "If you did not ask for this, you can ignore this message: nothing changes until the code or link is used.";

/// Closing line of the notifications.
const SECURITY_NOTE: &str =
    "If you did not make this change, someone else may have access to your account: \
     reset your password at once and check the email addresses on your account.";

impl Message {
    /// A stable name for logs (never the body: it may hold a code or a link).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::EmailVerificationLink { .. } => "email_verification_link",
            Message::EmailVerificationCode { .. } => "email_verification_code",
            Message::PasswordResetLink { .. } => "password_reset_link",
            Message::PasswordResetCode { .. } => "password_reset_code",
            Message::LoginCode { .. } => "login_code",
            Message::UnknownAccount { .. } => "unknown_account",
            Message::AccountAlreadyExists { .. } => "account_already_exists",
            Message::EmailChanged { .. } => "email_changed",
            Message::EmailConfirmed { .. } => "email_confirmed",
            Message::EmailDeleted { .. } => "email_deleted",
            Message::PasswordChanged { .. } => "password_changed",
            Message::PasswordSet { .. } => "password_set",
            Message::PasswordReset { .. } => "password_reset",
            Message::TotpActivated { .. } => "totp_activated",
            Message::TotpDeactivated { .. } => "totp_deactivated",
            Message::RecoveryCodesGenerated { .. } => "recovery_codes_generated",
            Message::WebauthnAdded { .. } => "webauthn_added",
            Message::WebauthnRemoved { .. } => "webauthn_removed",
            Message::SocialAccountConnected { .. } => "account_connected",
            Message::SocialAccountDisconnected { .. } => "account_disconnected",
        }
    }

    /// Subject and both bodies, the subject prefixed with `subject_prefix`.
    pub fn render(&self, subject_prefix: &str) -> Rendered {
        let (subject, blocks) = self.content();
        let prefix: String = subject_prefix.lines().collect();
        let subject = format!("{prefix}{subject}");
        Rendered {
            text: render_text(&blocks),
            html: render_html(&subject, &blocks),
            subject,
        }
    }

    /// [`Message::render`] with the prefix from `config`.
    pub fn render_for(&self, config: &Config) -> Rendered {
        self.render(&subject_prefix(config))
    }

    fn content(&self) -> (&'static str, Vec<Block>) {
        use Block::{Code, Link, Para};
        let ignore = || Para(IGNORE_IF_NOT_YOU.to_owned());
        let notice = |what: String, origin: &ChangeOrigin| {
            let browser = if origin.user_agent.is_empty() {
                "unknown"
            } else {
                origin.user_agent.as_str()
            };
            vec![
                Para("This is a notice about a change to your account.".to_owned()),
                Para(what),
                Para(format!(
                    "The change was made on {} from the IP address {}, with the browser: {browser}.",
                    origin.date(),
                    origin.ip,
                )),
                Para(SECURITY_NOTE.to_owned()),
            ]
        };
        match self {
            Message::EmailVerificationLink { url, email } => (
                "Confirm your email address",
                vec![
                    Para(format!(
                        "The address {email} was given for an account. To confirm that it is yours, open this link:"
                    )),
                    Link(url.clone()),
                    ignore(),
                ],
            ),
            Message::EmailVerificationCode { code, email } => (
                "Your email verification code",
                vec![
                    Para(format!(
                        "To confirm that {email} is yours, enter this code in the window where it was asked for:"
                    )),
                    Code(code.clone()),
                    ignore(),
                ],
            ),
            Message::PasswordResetLink { url, email } => (
                "Reset your password",
                vec![
                    Para(format!(
                        "A new password was requested for the account of {email}. To choose one, open this link:"
                    )),
                    Link(url.clone()),
                    ignore(),
                ],
            ),
            Message::PasswordResetCode { code, email } => (
                "Your password reset code",
                vec![
                    Para(format!(
                        "A new password was requested for the account of {email}. \
                         Enter this code in the window where it was asked for:"
                    )),
                    Code(code.clone()),
                    ignore(),
                ],
            ),
            Message::LoginCode { code, email } => (
                "Your sign-in code",
                vec![
                    Para(format!(
                        "To sign in as {email}, enter this code in the window where it was asked for:"
                    )),
                    Code(code.clone()),
                    ignore(),
                ],
            ),
            Message::UnknownAccount { email, signup_url } => {
                let mut blocks = vec![Para(format!(
                    "Someone, perhaps you, tried to reach an account with the address {email}, \
                     but no account uses that address."
                ))];
                if let Some(url) = signup_url {
                    blocks.push(Para("If it was you, you can create an account here:".to_owned()));
                    blocks.push(Link(url.clone()));
                }
                blocks.push(Para(
                    "If it was not you, you can ignore this message.".to_owned(),
                ));
                ("No account for this address", blocks)
            }
            Message::AccountAlreadyExists {
                email,
                password_reset_url,
            } => {
                let mut blocks = vec![Para(format!(
                    "Someone, perhaps you, tried to sign up with the address {email}, \
                     but an account with that address already exists."
                ))];
                if let Some(url) = password_reset_url {
                    blocks.push(Para(
                        "If it is your account and you no longer know its password, choose a new one here:"
                            .to_owned(),
                    ));
                    blocks.push(Link(url.clone()));
                }
                blocks.push(Para(
                    "If it was not you, you can ignore this message.".to_owned(),
                ));
                ("You already have an account", blocks)
            }
            Message::EmailChanged { from, to, origin } => (
                "Your email address was changed",
                notice(
                    format!("The email address of your account was changed from {from} to {to}."),
                    origin,
                ),
            ),
            Message::EmailConfirmed { email, origin } => (
                "Email address confirmed",
                notice(format!("The address {email} is now confirmed."), origin),
            ),
            Message::EmailDeleted { email, origin } => (
                "Email address removed",
                notice(
                    format!("The address {email} was removed from your account."),
                    origin,
                ),
            ),
            Message::PasswordChanged { origin } => (
                "Your password was changed",
                notice("The password of your account was changed.".to_owned(), origin),
            ),
            Message::PasswordSet { origin } => (
                "A password was set",
                notice("A password was set for your account.".to_owned(), origin),
            ),
            Message::PasswordReset { origin } => (
                "Your password was reset",
                notice("The password of your account was reset.".to_owned(), origin),
            ),
            Message::TotpActivated { origin } => (
                "Authenticator app activated",
                notice(
                    "An authenticator app (TOTP) now protects your account as a second factor."
                        .to_owned(),
                    origin,
                ),
            ),
            Message::TotpDeactivated { origin } => (
                "Authenticator app deactivated",
                notice(
                    "The authenticator app (TOTP) was removed from your account.".to_owned(),
                    origin,
                ),
            ),
            Message::WebauthnAdded { name, origin } => (
                "Security key added",
                notice(
                    format!("The security key or passkey \"{name}\" was added to your account."),
                    origin,
                ),
            ),
            Message::WebauthnRemoved { name, origin } => (
                "Security key removed",
                notice(
                    format!("The security key or passkey \"{name}\" was removed from your account."),
                    origin,
                ),
            ),
            Message::SocialAccountConnected { provider, origin } => (
                "Third-party account connected",
                notice(
                    format!("A {provider} account was connected to your account."),
                    origin,
                ),
            ),
            Message::SocialAccountDisconnected { provider, origin } => (
                "Third-party account disconnected",
                notice(
                    format!("A {provider} account was disconnected from your account."),
                    origin,
                ),
            ),
            Message::RecoveryCodesGenerated { origin } => (
                "New recovery codes generated",
                notice(
                    "A new set of recovery codes was generated for your account; the old codes no longer work."
                        .to_owned(),
                    origin,
                ),
            ),
        }
    }
}

/// `account.email_subject_prefix`, or when unset `"[<site>] "` with the
/// frontend's host (see the module documentation), or `""`.
pub fn subject_prefix(config: &Config) -> std::borrow::Cow<'_, str> {
    if let Some(prefix) = &config.account.email_subject_prefix {
        return prefix.as_str().into();
    }
    site_name(config).map_or("".into(), |site| format!("[{site}] ").into())
}

/// The site's name as allauth would take it from the request: the host
/// (and port) of the first configured frontend URL.
pub fn site_name(config: &Config) -> Option<&str> {
    frontend_urls(config).find_map(site_of)
}

/// The configured frontend URLs, in a fixed order.
pub fn frontend_urls(config: &Config) -> impl Iterator<Item = &str> {
    let urls = &config.headless.frontend_urls;
    [
        &urls.account_confirm_email,
        &urls.account_reset_password_from_key,
        &urls.account_reset_password,
        &urls.account_signup,
        &urls.socialaccount_login_error,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
}

/// `host[:port]` of an absolute URL.
fn site_of(url: &str) -> Option<&str> {
    let (_, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

fn render_text(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        match block {
            Block::Para(text) => out.push_str(text),
            Block::Code(code) => {
                out.push_str("    ");
                out.push_str(code);
            }
            Block::Link(url) => out.push_str(url),
        }
    }
    out.push('\n');
    out
}

fn render_html(subject: &str, blocks: &[Block]) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>");
    escape_into(subject, &mut out);
    out.push_str(
        "</title>\n</head>\n<body style=\"font-family: sans-serif; line-height: 1.5; max-width: 40em;\">\n",
    );
    for block in blocks {
        match block {
            Block::Para(text) => {
                out.push_str("<p>");
                escape_into(text, &mut out);
                out.push_str("</p>\n");
            }
            Block::Code(code) => {
                out.push_str(
                    "<p style=\"font-family: monospace; font-size: 1.6em; letter-spacing: 0.1em;\"><strong>",
                );
                escape_into(code, &mut out);
                out.push_str("</strong></p>\n");
            }
            Block::Link(url) => {
                out.push_str("<p><a href=\"");
                escape_into(url, &mut out);
                out.push_str("\">");
                escape_into(url, &mut out);
                out.push_str("</a></p>\n");
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(text, &mut out);
    out
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_prefix_defaults_to_the_frontend_site() {
        let mut config = Config::from_sources("", &[]).expect("defaults");
        assert_eq!(subject_prefix(&config), "");
        config
            .headless
            .frontend_urls
            .account_reset_password_from_key =
            Some("https://user:pw@app.example.com:8443/reset/{key}".into());
        assert_eq!(subject_prefix(&config), "[app.example.com:8443] ");
        config.account.email_subject_prefix = Some("Acme: ".into());
        assert_eq!(subject_prefix(&config), "Acme: ");
        config.account.email_subject_prefix = Some(String::new());
        assert_eq!(subject_prefix(&config), "");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            escape_html(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
        );
    }

    fn origin() -> ChangeOrigin {
        ChangeOrigin {
            at_ms: 1_795_336_000_000,
            ip: "192.0.2.1".into(),
            user_agent: "Agent <1>".into(),
        }
    }

    #[test]
    fn prefix_is_one_line() {
        let r = Message::PasswordSet { origin: origin() }.render("[Site]\n ");
        assert_eq!(r.subject, "[Site] A password was set");
    }

    #[test]
    fn notices_say_when_where_and_with_what() {
        let r = Message::PasswordChanged { origin: origin() }.render("");
        assert!(
            r.text.contains(
                "on Sun, 22 Nov 2026 08:26:40 GMT from the IP address 192.0.2.1, with the browser: Agent <1>."
            ),
            "{}",
            r.text
        );
        assert!(
            r.html.contains("with the browser: Agent &lt;1&gt;."),
            "{}",
            r.html
        );
        let unknown = ChangeOrigin {
            user_agent: String::new(),
            ..origin()
        };
        let r = Message::PasswordReset { origin: unknown }.render("");
        assert!(r.text.contains("with the browser: unknown."), "{}", r.text);
    }

    #[test]
    fn optional_links_are_left_out() {
        let r = Message::UnknownAccount {
            email: "a@b.c".into(),
            signup_url: None,
        }
        .render("");
        assert!(!r.text.contains("create an account"));
        assert!(!r.html.contains("<a "));
    }
}
