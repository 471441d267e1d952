//! The HTTP layer: implements the generated `AllauthApi` trait. Handlers
//! extract, call the application layer and convert; the conversion of
//! `app::Error` into the allauth envelope happens in [`Call::finish`] only.

pub mod api;
pub mod cors;
pub mod document;

mod account;
mod account_email;
mod account_password;
mod account_phone;
mod account_providers;
mod account_two_factor;
mod account_webauthn;
mod configuration;
mod current_session;
mod login_by_code;
mod password_reset;
mod providers;
mod sessions;
mod tokens;
mod two_factor;
mod webauthn_login;
mod webauthn_signup;

use std::sync::Arc;

use allauth_api::runtime::{Answer, ClientKind, ClientParam, ErrorItem, Reply};
use dropshot::RequestContext;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use crate::app::{self, features, routes};
use crate::config::Config;
use crate::db::Db;
use crate::spec::ServedSpec;

/// Shared state of the running server.
pub struct ServerContext {
    pub config: Arc<Config>,
    pub db: Db,
    pub spec: ServedSpec,
    pub cors: cors::CorsPolicy,
}

/// One API call in progress: the client it came from and the headers every
/// answer to it carries (CORS, never-cache), whatever the outcome.
pub struct Call<'a> {
    pub ctx: &'a ServerContext,
    pub client: ClientKind,
    pub operation_id: &'a str,
    headers: HeaderMap,
}

impl<'a> Call<'a> {
    /// Admits the call: the client must be one the configuration serves and
    /// the operation routed for it (else 404, as allauth), and built (else the
    /// `not_implemented` 404).
    pub fn start<S, A: Answer>(
        rqctx: &'a RequestContext<ServerContext>,
        client: &ClientParam<S>,
    ) -> Result<Self, A> {
        let ctx = rqctx.context();
        let operation_id = rqctx.endpoint.operation_id.as_str();
        let headers = response_headers(ctx, rqctx.request.headers());
        let admitted = client
            .kind()
            .filter(|kind| routes::is_routed(operation_id, *kind, &ctx.config));
        let Some(kind) = admitted else {
            return Err(error_reply(app::Error::NotFound, headers));
        };
        if !features::is_implemented(operation_id) {
            let error = app::Error::NotImplemented {
                operation_id: operation_id.to_string(),
            };
            return Err(error_reply(error, headers));
        }
        Ok(Self {
            ctx,
            client: kind,
            operation_id,
            headers,
        })
    }

    /// The answer: the success body, or the envelope of the error.
    pub fn finish<T, const STATUS: u16>(self, result: Result<T, app::Error>) -> Reply<T, STATUS> {
        match result {
            Ok(body) => {
                let mut reply = Reply::success(body);
                reply.headers_mut().extend(self.headers);
                reply
            }
            Err(error) => error_reply(error, self.headers),
        }
    }

    /// The answer to a failure, for handlers whose success is not a [`Reply`].
    pub fn fail<A: Answer>(self, error: app::Error) -> A {
        error_reply(error, self.headers)
    }
}

/// Answers an operation that this server does not build yet (or that the
/// configuration does not route): always one of the two 404 envelopes.
pub async fn not_built<S, A: Answer>(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<S>,
) -> Result<A, allauth_api::runtime::ApiError> {
    match Call::start::<S, A>(&rqctx, &client) {
        Err(reply) => Ok(reply),
        // Reached only if an operation is marked built but still routed here.
        Ok(call) => {
            let error = app::Error::NotImplemented {
                operation_id: call.operation_id.to_string(),
            };
            Ok(error_reply(error, call.headers))
        }
    }
}

/// The one conversion of an application error into the allauth envelope.
fn error_reply<A: Answer>(error: app::Error, headers: HeaderMap) -> A {
    let (status, errors): (StatusCode, Vec<ErrorItem>) = match &error {
        app::Error::Invalid(fields) => (
            StatusCode::BAD_REQUEST,
            fields
                .iter()
                .map(|f| ErrorItem::new(f.code, f.param.as_deref(), f.message.clone()))
                .collect(),
        ),
        app::Error::NotFound => (
            StatusCode::NOT_FOUND,
            vec![ErrorItem::new(
                "not_found",
                None,
                "There is nothing here for this client.",
            )],
        ),
        app::Error::NotImplemented { operation_id } => (
            StatusCode::NOT_FOUND,
            vec![ErrorItem::new(
                "not_implemented",
                None,
                format!("The operation {operation_id} is not implemented by this server yet."),
            )],
        ),
        app::Error::Conflict => (StatusCode::CONFLICT, Vec::new()),
        app::Error::Forbidden => (StatusCode::FORBIDDEN, Vec::new()),
        app::Error::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, Vec::new()),
        app::Error::Internal(context) => {
            tracing::error!(%context, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![ErrorItem::new(
                    "internal_error",
                    None,
                    "The server could not handle the request.",
                )],
            )
        }
    };
    let body = if errors.is_empty() {
        json!({})
    } else {
        json!({ "errors": errors })
    };
    let mut answer = A::envelope(status, body);
    answer.headers_mut().extend(headers);
    answer
}

/// A 400 envelope for input the extractors could not use.
pub fn bad_request<T, const STATUS: u16>(
    call: Call<'_>,
    errors: Vec<ErrorItem>,
) -> Reply<T, STATUS> {
    let fields = errors
        .into_iter()
        .map(|e| app::FieldError {
            code: leak_code(&e.code),
            param: e.param,
            message: e.message,
        })
        .collect();
    call.finish(Err(app::Error::Invalid(fields)))
}

/// Error codes are a small closed set; map the extractor's onto ours.
fn leak_code(code: &str) -> &'static str {
    match code {
        "required" => "required",
        _ => "invalid",
    }
}

/// Headers on every API answer: CORS for allowed origins, and never-cache
/// (authentication answers must not be stored by any cache).
pub fn response_headers(ctx: &ServerContext, request: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    ctx.cors.apply(request, &mut headers);
    headers
}
