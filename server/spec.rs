//! The served OpenAPI document: the canonical `openapi/allauth.yaml`, pruned to
//! the running configuration the way allauth prunes its own (disabled clients
//! and features are absent), rendered as JSON, YAML and HTML once, when first
//! asked for. Serving it is off by default, and parsing and rendering the
//! document is the largest piece of start-up work that needs no database
//! (about 2 ms, and the YAML emitter's code and the renderings resident in
//! every process), so a server that never serves it never makes it.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::app::routes;
use crate::config::Config;

/// The canonical document, as written.
pub const CANONICAL_YAML: &str = include_str!("../openapi/allauth.yaml");

/// Default renderer for the HTML page (as allauth: Redoc from a CDN).
const REDOC_CDN: &str = "https://cdn.jsdelivr.net/npm/redoc@2.5.2/bundles/redoc.standalone.js";
/// The file the HTML page loads from `specification_assets_dir` when set.
pub const REDOC_LOCAL_FILE: &str = "redoc.standalone.js";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("openapi/allauth.yaml does not parse: {0}")]
    Parse(String),
    #[error("rendering the served document failed: {0}")]
    Render(String),
}

/// The three renderings.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub json: String,
    pub yaml: String,
    pub html: String,
}

impl Rendered {
    pub fn of(config: &Config) -> Result<Rendered, SpecError> {
        let mut doc: Value =
            serde_yaml::from_str(CANONICAL_YAML).map_err(|e| SpecError::Parse(e.to_string()))?;
        prune(&mut doc, config);
        let json = serde_json::to_string(&doc).map_err(|e| SpecError::Render(e.to_string()))?;
        let yaml = serde_yaml::to_string(&doc).map_err(|e| SpecError::Render(e.to_string()))?;
        let script = if config.headless.specification_assets_dir.is_some() {
            REDOC_LOCAL_FILE
        } else {
            REDOC_CDN
        };
        Ok(Rendered {
            json,
            yaml,
            html: html_page(script),
        })
    }
}

/// The served document of one configuration, rendered on first use.
#[derive(Debug)]
pub struct ServedSpec {
    config: Arc<Config>,
    rendered: OnceLock<Result<Rendered, String>>,
}

impl ServedSpec {
    pub fn new(config: Arc<Config>) -> ServedSpec {
        ServedSpec {
            config,
            rendered: OnceLock::new(),
        }
    }

    /// The renderings, made by the first call (an error is kept too: the
    /// canonical document is built in, so it cannot change).
    pub fn rendered(&self) -> Result<&Rendered, &str> {
        self.rendered
            .get_or_init(|| Rendered::of(&self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// A static asset for the HTML page, from the configured directory. Only
    /// plain file names are served: no separators, no dot files.
    pub fn asset(&self, name: &str) -> Option<(Vec<u8>, &'static str)> {
        let dir = self.config.headless.specification_assets_dir.as_ref()?;
        let safe = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !safe {
            return None;
        }
        let bytes = std::fs::read(dir.join(name)).ok()?;
        let content_type = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("map") | Some("json") => "application/json",
            Some("woff2") => "font/woff2",
            Some("png") => "image/png",
            Some("svg") => "image/svg+xml",
            _ => "application/octet-stream",
        };
        Some((bytes, content_type))
    }
}

fn html_page(script: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>allauth-server headless API</title>\n</head>\n<body>\n\
         <redoc spec-url=\"openapi.json\"></redoc>\n<script src=\"{script}\"></script>\n</body>\n</html>\n"
    )
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const CLIENT_PARAMS: [&str; 3] = ["Client", "AppClient", "BrowserClient"];

/// Removes what the configuration does not route, then pins the client when
/// only one is enabled (as allauth does), then drops tags nothing uses.
pub fn prune(doc: &mut Value, config: &Config) {
    let clients = routes::enabled_clients(config);
    let mut used_tags = BTreeSet::new();
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        paths.retain(|_, item| {
            if let Value::Object(item) = item {
                item.retain(|method, op| {
                    !METHODS.contains(&method.as_str())
                        || op
                            .get("operationId")
                            .and_then(Value::as_str)
                            .and_then(allauth_api::api::OperationId::parse)
                            .is_some_and(|id| {
                                clients.iter().any(|c| routes::is_routed(id, *c, config))
                            })
                });
                for (method, op) in item.iter() {
                    if METHODS.contains(&method.as_str()) {
                        if let Some(Value::Array(tags)) = op.get("tags") {
                            used_tags
                                .extend(tags.iter().filter_map(Value::as_str).map(str::to_string));
                        }
                    }
                }
                item.keys().any(|k| METHODS.contains(&k.as_str()))
            } else {
                false
            }
        });
    }
    if let [only] = clients.as_slice() {
        pin_client(doc, only.as_str());
    }
    if let Some(Value::Array(tags)) = doc.get_mut("tags") {
        tags.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| used_tags.contains(n))
        });
    }
    if let Some(Value::Array(groups)) = doc.get_mut("x-tagGroups") {
        groups.retain(|g| {
            g.get("tags").and_then(Value::as_array).is_some_and(|ts| {
                ts.iter()
                    .filter_map(Value::as_str)
                    .any(|t| used_tags.contains(t))
            })
        });
    }
}

fn pin_client(doc: &mut Value, client: &str) {
    let is_client_ref = |p: &Value| {
        p.get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/parameters/"))
            .is_some_and(|name| CLIENT_PARAMS.contains(&name))
    };
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        let old = std::mem::take(paths);
        for (path, mut item) in old {
            if let Value::Object(item) = &mut item {
                for (_, op) in item.iter_mut() {
                    if let Some(Value::Array(params)) = op.get_mut("parameters") {
                        params.retain(|p| !is_client_ref(p));
                    }
                }
                if let Some(Value::Array(params)) = item.get_mut("parameters") {
                    params.retain(|p| !is_client_ref(p));
                }
            }
            paths.insert(path.replace("{client}", client), item);
        }
    }
    if let Some(Value::Object(params)) = doc.pointer_mut("/components/parameters") {
        for name in CLIENT_PARAMS {
            params.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_on_first_use_and_kept() {
        let spec = ServedSpec::new(Arc::new(Config::default()));
        assert!(
            spec.rendered.get().is_none(),
            "rendered before it was asked for"
        );
        let first = spec.rendered().expect("the canonical document renders");
        assert!(first.json.starts_with('{') && first.json.contains("\"openapi\":\"3.0.3\""));
        assert!(first.yaml.contains("openapi: 3.0.3"));
        assert!(first.html.contains(REDOC_CDN));
        let again = spec.rendered().expect("kept");
        assert!(std::ptr::eq(first, again), "rendered twice");
    }
}
