//! Browser cookies: the session cookie and Django's CSRF cookie (`csrftoken`
//! with the `X-CSRFToken` header; masked or plain tokens accepted).

use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue};
use rand::distr::{Alphanumeric, SampleString};

use crate::app::security::secrets::constant_time_eq;
use crate::config::{Config, SameSite as ConfigSameSite};

/// Django's CSRF secret length; a masked token is twice as long.
const CSRF_SECRET_LENGTH: usize = 32;
const CSRF_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Django's CSRF cookie lifetime (one year).
const CSRF_COOKIE_AGE: i64 = 31_449_600;

/// The value of cookie `name` in the request.
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

fn same_site(value: ConfigSameSite) -> SameSite {
    match value {
        ConfigSameSite::Lax => SameSite::Lax,
        ConfigSameSite::Strict => SameSite::Strict,
        ConfigSameSite::None => SameSite::None,
    }
}

fn append(headers: &mut HeaderMap, cookie: Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(http::header::SET_COOKIE, value);
    }
}

/// Sets the MFA trust cookie (allauth's `mfa_trusted`): the session
/// cookie's attributes, `mfa.trust_cookie_age` long.
pub fn set_trust_cookie(headers: &mut HeaderMap, config: &Config, value: &str, https: bool) {
    let s = &config.session;
    let mut cookie = Cookie::build((config.mfa.trust_cookie_name.clone(), value.to_owned()))
        .path(s.cookie_path.clone())
        .http_only(s.cookie_httponly)
        .secure(s.cookie_secure || https)
        .same_site(same_site(s.cookie_samesite))
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(config.mfa.trust_cookie_age).unwrap_or(i64::MAX),
        ));
    if let Some(domain) = &s.cookie_domain {
        cookie = cookie.domain(domain.clone());
    }
    append(headers, cookie.build());
}

/// Sets (or, with `None`, clears) the session cookie; `Secure` with
/// `session.cookie_secure` or over HTTPS (`https`).
pub fn set_session_cookie(
    headers: &mut HeaderMap,
    config: &Config,
    token: Option<&str>,
    https: bool,
) {
    let s = &config.session;
    let mut cookie = Cookie::build((s.cookie_name.clone(), token.unwrap_or_default().to_string()))
        .path(s.cookie_path.clone())
        .http_only(s.cookie_httponly)
        .secure(s.cookie_secure || https)
        .same_site(same_site(s.cookie_samesite));
    if let Some(domain) = &s.cookie_domain {
        cookie = cookie.domain(domain.clone());
    }
    let age = if token.is_some() {
        i64::try_from(s.cookie_age).unwrap_or(i64::MAX)
    } else {
        0
    };
    cookie = cookie.max_age(cookie::time::Duration::seconds(age));
    append(headers, cookie.build());
}

/// Sets the CSRF cookie to `secret`.
pub fn set_csrf_cookie(headers: &mut HeaderMap, config: &Config, secret: &str, https: bool) {
    let c = &config.csrf;
    let mut cookie = Cookie::build((c.cookie_name.clone(), secret.to_string()))
        .path("/")
        .secure(c.cookie_secure || https)
        .same_site(same_site(c.cookie_samesite))
        .max_age(cookie::time::Duration::seconds(CSRF_COOKIE_AGE));
    if let Some(domain) = &c.cookie_domain {
        cookie = cookie.domain(domain.clone());
    }
    append(headers, cookie.build());
}

/// A fresh CSRF secret.
pub fn new_csrf_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), CSRF_SECRET_LENGTH)
}

/// The cookie's secret, if it has the right form.
pub fn csrf_secret_from(cookie: Option<String>) -> Option<String> {
    cookie.filter(|v| v.len() == CSRF_SECRET_LENGTH && v.bytes().all(|b| CSRF_CHARS.contains(&b)))
}

/// Django accepts the secret itself or a masked token (salt + cipher).
fn unmask(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    if !bytes.iter().all(|b| CSRF_CHARS.contains(b)) {
        return None;
    }
    match bytes.len() {
        CSRF_SECRET_LENGTH => Some(token.to_string()),
        n if n == 2 * CSRF_SECRET_LENGTH => {
            let (salt, cipher) = bytes.split_at(CSRF_SECRET_LENGTH);
            let index = |b: &u8| CSRF_CHARS.iter().position(|c| c == b);
            salt.iter()
                .zip(cipher)
                .map(|(s, c)| {
                    let (s, c) = (index(s)?, index(c)?);
                    Some(CSRF_CHARS[(c + CSRF_CHARS.len() - s) % CSRF_CHARS.len()] as char)
                })
                .collect()
        }
        _ => None,
    }
}

/// Whether the header token matches the cookie's secret.
pub fn csrf_token_matches(secret: &str, header_token: &str) -> bool {
    unmask(header_token.trim())
        .is_some_and(|given| constant_time_eq(given.as_bytes(), secret.as_bytes()))
}

/// Django's origin check for unsafe requests: an `Origin` header, when sent,
/// must be this server's own origin or a trusted one.
/// Django's CSRF `Referer` check of an HTTPS request without `Origin`: the
/// `Referer` must be an `https` URL of this host or of a trusted origin.
pub fn referer_allowed(headers: &HeaderMap, config: &Config) -> bool {
    if headers.contains_key(http::header::ORIGIN) {
        return true;
    }
    let Some(referer) = headers
        .get(http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok())
    else {
        return false;
    };
    if referer.scheme() != "https" {
        return false;
    }
    let origin = referer.origin().ascii_serialization();
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin == format!("https://{host}")
        || config
            .csrf
            .trusted_origins
            .iter()
            .any(|t| t.trim_end_matches('/') == origin)
}

pub fn origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
    let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let own = [format!("http://{host}"), format!("https://{host}")];
    own.iter().any(|o| o == origin)
        || config
            .csrf
            .trusted_origins
            .iter()
            .any(|t| t.trim_end_matches('/') == origin)
}

/// The cookie that carries what Apple posted to the callback
/// (`user`, `id_token`, sealed) over to the callback's GET, where the
/// session cookie is sent again (allauth's `apple_login_session`).
pub const APPLE_COOKIE: &str = "apple-login-session";
/// Its path: the Apple callback pages only.
const APPLE_COOKIE_PATH: &str = "/accounts/apple/";

/// Sets (`Some`) or deletes the Apple callback cookie. Five minutes at
/// most; `SameSite=None` over HTTPS, since it is set on Apple's cross-site
/// post.
pub fn set_apple_cookie(headers: &mut HeaderMap, value: Option<&str>, https: bool) {
    let mut cookie = Cookie::build((APPLE_COOKIE, value.unwrap_or_default().to_owned()))
        .path(APPLE_COOKIE_PATH)
        .http_only(true)
        .secure(https)
        .same_site(if https { SameSite::None } else { SameSite::Lax })
        .max_age(cookie::time::Duration::seconds(if value.is_some() {
            300
        } else {
            0
        }))
        .build();
    if value.is_none() {
        cookie.make_removal();
    }
    append(headers, cookie);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_unmask_to_the_secret() {
        let secret = "abcdefghijklmnopqrstuvwxyzABCDEF";
        let salt = "0123456789abcdefghijklmnopqrstuv";
        let cipher: String = salt
            .bytes()
            .zip(secret.bytes())
            .map(|(s, c)| {
                let i = |b: u8| CSRF_CHARS.iter().position(|x| *x == b).unwrap_or(0);
                CSRF_CHARS[(i(s) + i(c)) % CSRF_CHARS.len()] as char
            })
            .collect();
        assert!(csrf_token_matches(secret, &format!("{salt}{cipher}")));
        assert!(csrf_token_matches(secret, secret));
        assert!(!csrf_token_matches(
            secret,
            "abcdefghijklmnopqrstuvwxyzABCDEG"
        ));
        assert!(!csrf_token_matches(secret, ""));
    }
}
