//! Validation helpers the sections share: positive numbers, header and cookie names, cookie `SameSite`, origins.

use super::{ConfigError, SameSite};

pub(super) fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::inconsistent(key, "must be greater than 0"))
    } else {
        Ok(())
    }
}

/// RFC 9110 `tchar`.
pub(super) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

pub(super) fn header_name(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || !value.chars().all(is_token_char) {
        return Err(ConfigError::inconsistent(
            key,
            format!("{value:?} is not a valid HTTP header name"),
        ));
    }
    Ok(())
}

pub(super) fn cookie_name(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || !value.chars().all(is_token_char) {
        return Err(ConfigError::inconsistent(
            key,
            format!("{value:?} is not a valid cookie name"),
        ));
    }
    Ok(())
}

pub(super) fn samesite_needs_secure(
    section: &str,
    samesite: SameSite,
    secure: bool,
) -> Result<(), ConfigError> {
    if samesite == SameSite::None && !secure {
        // Browsers drop SameSite=None cookies that are not Secure.
        return Err(ConfigError::inconsistent(
            format!("{section}.cookie_samesite"),
            format!("\"None\" requires {section}.cookie_secure = true"),
        ));
    }
    Ok(())
}

/// `scheme://host[:port]` without path, query or trailing slash. With
/// `wildcard_host`, the host may start with `*.`.
pub(super) fn is_origin(origin: &str, wildcard_host: bool) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    {
        return false;
    }
    let host_port = if wildcard_host {
        rest.strip_prefix("*.").unwrap_or(rest)
    } else {
        rest
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (host_port, None), // bare IPv6
        Some((h, p)) => (h, Some(p)),
        None => (host_port, None),
    };
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return false;
        }
    }
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
}
