//! What the HTTP layer reads off a request about its client: the address
//! (behind trusted proxies), the user agent, and the credential that names
//! its session.

use std::net::IpAddr;

use allauth_api::runtime::ClientKind;
use dropshot::RequestContext;
use http::HeaderMap;

use crate::app::sessions::admission::{Client, Credential};
use crate::config::Config;
use crate::http::{cookies, ServerContext};

/// The credential naming the call's session: the app's `X-Session-Token`
/// (else, with the JWT strategy, `Authorization: <scheme> <access token>`,
/// scheme case-insensitive), or the browser's session cookie.
pub fn credential(request: &HeaderMap, kind: ClientKind, config: &Config) -> Credential {
    let token = match kind {
        ClientKind::App => request
            .get("x-session-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ClientKind::Browser => cookies::request_cookie(request, &config.session.cookie_name),
    };
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        return Credential::SessionToken(token);
    }
    if kind == ClientKind::App {
        let scheme = config.headless.jwt_authorization_header_scheme.as_str();
        let access = request
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case(scheme))
            .map(|(_, token)| token.trim().to_string());
        if let Some(token) = access {
            return Credential::AccessToken(token);
        }
    }
    Credential::Nothing
}

/// The session rows' name for the kind of client.
pub fn session_client(kind: ClientKind) -> Client {
    match kind {
        ClientKind::App => Client::App,
        ClientKind::Browser => Client::Browser,
    }
}

/// The request's `User-Agent`, cut to allauth's 200 characters ("" when
/// absent).
/// Whether the request came over HTTPS, as `server.secure_proxy_ssl_header`
/// says (the server itself speaks plain HTTP behind its proxy).
pub fn is_secure(request: &HeaderMap, config: &Config) -> bool {
    config
        .server
        .secure_proxy_ssl_header
        .as_ref()
        .is_some_and(|[header, value]| {
            request
                .get(header.as_str())
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() == value)
        })
}

/// `scheme://host` of this server as the request named it (the `Host`
/// header; `localhost` without one). Only a host made of URL-safe
/// characters is used.
pub fn own_origin(request: Option<&HeaderMap>, https: bool) -> String {
    let host = request
        .and_then(|h| h.get(http::header::HOST))
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{host}")
}

pub fn user_agent(request: &HeaderMap) -> String {
    let value = request
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    value.chars().take(USER_AGENT_MAX_CHARS).collect()
}

/// allauth's `HTTP_USER_AGENT_MAX_LENGTH`.
const USER_AGENT_MAX_CHARS: usize = 200;

/// The client's address: the socket's, or — behind `trusted_proxy_count`
/// proxies — the entry that many places from the end of the proxy header.
pub fn client_ip(rqctx: &RequestContext<ServerContext>, config: &Config) -> IpAddr {
    let peer = rqctx.request.remote_addr().ip();
    let count = config.server.trusted_proxy_count;
    if count == 0 {
        return peer;
    }
    let chain: Vec<IpAddr> = rqctx
        .request
        .headers()
        .get_all(config.server.client_ip_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    chain
        .len()
        .checked_sub(count)
        .and_then(|i| chain.get(i))
        .copied()
        .unwrap_or(peer)
}
