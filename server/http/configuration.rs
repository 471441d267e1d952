//! Handlers of the `Configuration` operations.

use allauth_api::runtime::{ApiError, ClientParam, Reply};
use allauth_api::types;
use dropshot::RequestContext;
use serde_json::json;

use crate::app::{self, configuration, features::Built};
use crate::http::ServerContext;

pub async fn config_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
) -> Result<Reply<types::ConfigurationResponse>, ApiError> {
    let call = start_call!(rqctx, client);
    let data = configuration::config_data(&call.ctx.config, Built::CURRENT);
    let result = serde_json::from_value(json!({ "status": 200, "data": data }))
        .map_err(|e| app::Error::Internal(format!("config response does not fit its schema: {e}")));
    Ok(call.finish(result).await)
}
