//! Handlers of the `Configuration` operations.

use allauth_api::runtime::Reply;
use allauth_api::types;
use serde_json::json;

use crate::app::{self, configuration, features::Built};
use crate::http::{Call, Handled};

pub async fn config_view(call: Call<'_>) -> Handled<Reply<types::ConfigurationResponse>> {
    let data = configuration::config_data(&call.ctx.config, Built::CURRENT);
    let result = serde_json::from_value(json!({ "status": 200, "data": data }))
        .map_err(|e| app::Error::Internal(format!("config response does not fit its schema: {e}")));
    Ok(call.finish(result).await)
}
