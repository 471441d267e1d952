//! CORS: exact allowed origins, credentials, the allauth request headers, and
//! the preflight answer for every API path. A disallowed origin gets no CORS
//! header at all (the browser then refuses the response).

use allauth_api::OPERATIONS;
use dropshot::{Body, RequestContext};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::config::CorsConfig;
use crate::http::ServerContext;

/// Request headers a frontend may send.
pub const ALLOWED_HEADERS: &str =
    "x-session-token, x-email-verification-key, x-password-reset-key, x-csrftoken, authorization, content-type";

#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<String>,
    any_origin: bool,
    credentials: bool,
    max_age: u64,
}

impl CorsPolicy {
    /// `"*"` with credentials is refused by config validation before this.
    pub fn new(config: &CorsConfig) -> Self {
        let any_origin = config.allowed_origins.iter().any(|o| o == "*");
        let origins = config
            .allowed_origins
            .iter()
            .filter(|o| o.as_str() != "*")
            .map(|o| o.trim_end_matches('/').to_string())
            .collect();
        Self {
            origins,
            any_origin,
            credentials: config.allow_credentials && !any_origin,
            max_age: config.max_age,
        }
    }

    /// The origin to echo, if the request's `Origin` is allowed.
    fn allowed_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let origin = request.get(http::header::ORIGIN)?;
        if self.any_origin {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o == text)
            .then(|| origin.clone())
    }

    /// Adds the CORS headers of an ordinary answer.
    pub fn apply(&self, request: &HeaderMap, headers: &mut HeaderMap) {
        headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = self.allowed_origin(request) else {
            return;
        };
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// The answer to a preflight for a path allowing `methods`.
    pub fn preflight(&self, request: &HeaderMap, methods: &str) -> Response<Body> {
        let mut headers = HeaderMap::new();
        self.apply(request, &mut headers);
        if headers.contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            if let Ok(methods) = HeaderValue::from_str(methods) {
                headers.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, methods);
            }
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            if let Ok(age) = HeaderValue::from_str(&self.max_age.to_string()) {
                headers.insert(http::header::ACCESS_CONTROL_MAX_AGE, age);
            }
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().extend(headers);
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        response
    }
}

/// Every generated preflight endpoint lands here.
pub async fn preflight(
    rqctx: RequestContext<ServerContext>,
) -> Result<Response<Body>, allauth_api::runtime::ApiError> {
    let template = path_template(rqctx.request.uri().path());
    Ok(rqctx
        .context()
        .cors
        .preflight(rqctx.request.headers(), &allowed_methods(&template)))
}

/// The methods of the path `template` (`/_allauth/{client}/v1/…`), as an
/// `Allow` or `Access-Control-Allow-Methods` value: the document's, then
/// `OPTIONS`.
pub fn allowed_methods(template: &str) -> String {
    let mut methods: Vec<&str> = OPERATIONS
        .iter()
        .filter(|op| op.path == template)
        .map(|op| op.method)
        .collect();
    methods.push("OPTIONS");
    methods.join(", ")
}

/// `/_allauth/browser/v1/auth/login` → `/_allauth/{client}/v1/auth/login`.
fn path_template(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    if let Some(segment) = parts.get_mut(2) {
        *segment = "{client}";
    }
    parts.join("/")
}
