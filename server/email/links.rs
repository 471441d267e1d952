//! Links put in mails: the `[headless] frontend_urls` templates with `{key}` filled in, or server-relative fallbacks.
//!
//! Filling a template follows django-allauth's `render_url`: a `{key}` in the
//! path is percent-encoded like Python's `quote` (unreserved characters and
//! `/` kept), one in the query string like `urlencode` (`/` encoded too,
//! space as `+`). A result without a scheme and host is made absolute with
//! the origin given to [`FrontendLinks::with_origin`], when there is one
//! (allauth uses the request's origin there).
//!
//! When a frontend URL is not configured, the link points at the path
//! django-allauth's own (non-headless) views use, relative to the server:
//!
//! | setting                            | fallback                               |
//! |------------------------------------|----------------------------------------|
//! | `account_confirm_email`            | `/accounts/confirm-email/{key}/`       |
//! | `account_reset_password_from_key`  | `/accounts/password/reset/key/{key}/`  |
//! | `account_reset_password`           | `/accounts/password/reset/`            |
//! | `account_signup`                   | `/accounts/signup/`                    |
//!
//! so a frontend that mirrors allauth's routes works unconfigured; any other
//! frontend must configure the URLs (a relative link in a mail is only
//! clickable once made absolute).

use crate::config::FrontendUrls;

/// Fallback of `frontend_urls.account_confirm_email`.
pub const FALLBACK_CONFIRM_EMAIL: &str = "/accounts/confirm-email/{key}/";
/// Fallback of `frontend_urls.account_reset_password_from_key`.
pub const FALLBACK_RESET_PASSWORD_FROM_KEY: &str = "/accounts/password/reset/key/{key}/";
/// Fallback of `frontend_urls.account_reset_password`.
pub const FALLBACK_RESET_PASSWORD: &str = "/accounts/password/reset/";
/// Fallback of `frontend_urls.account_signup`.
pub const FALLBACK_SIGNUP: &str = "/accounts/signup/";

/// The placeholder replaced by the key.
const KEY_PLACEHOLDER: &str = "{key}";

/// Builds the links of the account mails from the configured frontend URLs.
#[derive(Debug, Clone, Copy)]
pub struct FrontendLinks<'a> {
    urls: &'a FrontendUrls,
    origin: Option<&'a str>,
}

impl<'a> FrontendLinks<'a> {
    pub fn new(urls: &'a FrontendUrls) -> Self {
        FrontendLinks { urls, origin: None }
    }

    /// Makes relative results absolute with `origin` (`https://host[:port]`,
    /// a trailing `/` ignored), e.g. the origin of the request being served.
    pub fn with_origin(self, origin: &'a str) -> Self {
        FrontendLinks {
            origin: Some(origin),
            ..self
        }
    }

    /// Where the owner of an address confirms it with `key`.
    pub fn email_verification(&self, key: &str) -> String {
        self.finish(render(
            template(&self.urls.account_confirm_email, FALLBACK_CONFIRM_EMAIL),
            key,
        ))
    }

    /// Where a password is reset with `key` (allauth's `uidb36-key`).
    pub fn password_reset_from_key(&self, key: &str) -> String {
        self.finish(render(
            template(
                &self.urls.account_reset_password_from_key,
                FALLBACK_RESET_PASSWORD_FROM_KEY,
            ),
            key,
        ))
    }

    /// Where a password reset is requested.
    pub fn password_reset(&self) -> String {
        self.finish(template(&self.urls.account_reset_password, FALLBACK_RESET_PASSWORD).to_owned())
    }

    /// Where an account is created.
    pub fn signup(&self) -> String {
        self.finish(template(&self.urls.account_signup, FALLBACK_SIGNUP).to_owned())
    }

    fn finish(&self, url: String) -> String {
        match self.origin {
            Some(origin) if !url.contains("://") && url.starts_with('/') => {
                format!("{}{url}", origin.trim_end_matches('/'))
            }
            _ => url,
        }
    }
}

fn template<'t>(configured: &'t Option<String>, fallback: &'t str) -> &'t str {
    match configured {
        Some(url) if !url.trim().is_empty() => url.trim(),
        _ => fallback,
    }
}

/// `template` with every `{key}` replaced by `key`, percent-encoded for the
/// part of the URL it stands in (path or query). A template without the
/// placeholder is returned as is (configuration validation refuses that for
/// the settings that need a key).
pub fn render(template: &str, key: &str) -> String {
    let query_start = template.find('?');
    let mut out = String::with_capacity(template.len() + key.len() * 3);
    let mut rest = template;
    let mut offset = 0;
    while let Some(at) = rest.find(KEY_PLACEHOLDER) {
        out.push_str(&rest[..at]);
        let in_query = query_start.is_some_and(|q| q < offset + at);
        if in_query {
            encode_query_value(key, &mut out);
        } else {
            encode_path_segment(key, &mut out);
        }
        rest = &rest[at + KEY_PLACEHOLDER.len()..];
        offset += at + KEY_PLACEHOLDER.len();
    }
    out.push_str(rest);
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn push_percent(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Python's `urllib.parse.quote(value)`: unreserved characters and `/` kept.
fn encode_path_segment(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if is_unreserved(b) || b == b'/' {
            out.push(char::from(b));
        } else {
            push_percent(b, out);
        }
    }
}

/// Python's `urlencode` value encoding (`quote_plus`): unreserved kept, space as `+`.
fn encode_query_value(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            push_percent(b, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_in_path_is_quoted_like_python_quote() {
        assert_eq!(
            render("https://app/verify/{key}", "MQ:1u2:a/b c?&é"),
            "https://app/verify/MQ%3A1u2%3Aa/b%20c%3F%26%C3%A9"
        );
    }

    #[test]
    fn key_in_query_is_quoted_like_urlencode() {
        assert_eq!(
            render("https://app/verify?key={key}&x=1", "a/b c+:"),
            "https://app/verify?key=a%2Fb+c%2B%3A&x=1"
        );
    }

    #[test]
    fn every_placeholder_is_replaced() {
        assert_eq!(render("/{key}/x?k={key}", "a b"), "/a%20b/x?k=a+b");
        assert_eq!(render("/no-placeholder", "k"), "/no-placeholder");
    }

    #[test]
    fn fallbacks_and_origin() {
        let urls = FrontendUrls::default();
        let links = FrontendLinks::new(&urls);
        assert_eq!(
            links.email_verification("k:1"),
            "/accounts/confirm-email/k%3A1/"
        );
        assert_eq!(
            links.password_reset_from_key("1-abc"),
            "/accounts/password/reset/key/1-abc/"
        );
        assert_eq!(links.password_reset(), "/accounts/password/reset/");
        assert_eq!(links.signup(), "/accounts/signup/");
        let links = links.with_origin("https://auth.example.com/");
        assert_eq!(links.signup(), "https://auth.example.com/accounts/signup/");
    }

    #[test]
    fn configured_urls_win() {
        let urls = FrontendUrls {
            account_confirm_email: Some("https://app.example/verify/{key}".into()),
            account_signup: Some("https://app.example/join".into()),
            ..FrontendUrls::default()
        };
        let links = FrontendLinks::new(&urls).with_origin("https://server");
        assert_eq!(
            links.email_verification("a b"),
            "https://app.example/verify/a%20b"
        );
        assert_eq!(links.signup(), "https://app.example/join");
        assert_eq!(
            links.password_reset(),
            "https://server/accounts/password/reset/"
        );
    }
}
