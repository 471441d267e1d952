//! Small pieces the account tests share: signup fields and rate limits as
//! the configuration file writes them, and what an answer's errors and
//! flows say.

use allauth_server::config::{Config, SignupField, SignupFieldName};
use serde_json::Value;

pub fn field(name: SignupFieldName, required: bool) -> SignupField {
    SignupField { name, required }
}

/// Overrides of `account.rate_limits`, as in the configuration file.
pub fn rate_limits(config: &mut Config, toml: &str) {
    let parsed = Config::from_sources(&format!("[account]\nrate_limits = {toml}\n"), &[])
        .expect("rate limits parse");
    config.account.rate_limits = parsed.account.rate_limits;
    config.finalize();
}

/// The `(code, param)` of each error of an answer.
pub fn codes_of(answer: &Value) -> Vec<(String, Option<String>)> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["code"].as_str().unwrap_or("").to_string(),
                        e["param"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One error, as [`codes_of`] lists it.
pub fn error(code: &str, param: Option<&str>) -> Vec<(String, Option<String>)> {
    vec![(code.to_string(), param.map(str::to_string))]
}

/// The id of the answer's pending flow, if any.
pub fn pending_flow(answer: &Value) -> Option<String> {
    answer["data"]["flows"]
        .as_array()?
        .iter()
        .find(|f| f["is_pending"] == true)
        .and_then(|f| f["id"].as_str())
        .map(str::to_string)
}
