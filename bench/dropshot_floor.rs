//! A second reference of `bench/run.sh`: a dropshot server with one
//! endpoint that answers the ceiling's fixed JSON body, with the server's
//! settings (`HandlerTaskMode::Detached`, logging at `warn`). What it
//! loses against the bare hyper ceiling is dropshot's own per-request
//! work (a request id, a logger, the route lookup, a task per request);
//! what `GET config` loses against it is ours.
//!
//!     cargo run --release --example dropshot_floor -- 127.0.0.1:8791

#![allow(clippy::expect_used)]

use dropshot::{
    endpoint, ApiDescription, Body, ConfigDropshot, ConfigLogging, ConfigLoggingLevel,
    HandlerTaskMode, HttpError, RequestContext, ServerBuilder,
};
use http::{header, HeaderValue, Response};

/// The fixed answer, shared with the other reference (`bench/fixed_body.json`).
const BODY: &str = include_str!("fixed_body.json");

#[endpoint { method = GET, path = "/_allauth/app/v1/config" }]
async fn fixed(_rqctx: RequestContext<()>) -> Result<Response<Body>, HttpError> {
    let mut response = Response::new(Body::from(BODY));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8791".to_string())
        .parse()
        .map_err(|e| format!("an address such as 127.0.0.1:8791: {e}"))?;
    let mut api = ApiDescription::new();
    api.register(fixed).map_err(|e| e.to_string())?;
    let log = ConfigLogging::StderrTerminal {
        level: ConfigLoggingLevel::Warn,
    }
    .to_logger("dropshot_floor")
    .map_err(|e| e.to_string())?;
    let config = ConfigDropshot {
        bind_address: bind,
        default_handler_task_mode: HandlerTaskMode::Detached,
        ..Default::default()
    };
    println!("dropshot floor listening on http://{bind}");
    ServerBuilder::new(api, (), log)
        .config(config)
        .start()
        .map_err(|e| e.to_string())?
        .await
}
