//! Every response the tests receive over raw HTTP is checked against the
//! canonical document: the response the document gives for that path,
//! method and status must exist, and the body must match its schema.
//!
//! The document's schemas are OpenAPI 3.0; they are turned into JSON Schema
//! (2020-12) once and compiled with `jsonschema`:
//! * `$ref`s to `#/components/{schemas,responses}` resolve inside one root
//!   that carries the converted components;
//! * `nullable: true` becomes a `null` alternative (in `type`, in `enum`,
//!   or as an `anyOf` around a `$ref`/`oneOf`);
//! * `discriminator`, `example` and `x-*` annotations are dropped (`oneOf`
//!   alone decides);
//! * an object schema with `properties` and no `additionalProperties`
//!   accepts no other property: OpenAPI allows extra ones, but a property
//!   the server sends and the document does not name is drift all the same.
//!
//! A response whose status the document does not list for the operation
//! fails, body or not. The raw client (`harness::raw`) checks as it
//! receives; the generated client talks to the server through a checking
//! proxy ([`checking_proxy`]) whose findings fail the test when its server
//! stops. Requests to paths the document has no template for
//! (the served document itself, deliberately wrong URLs) are not checked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// One documented response: its body's validator, or none for a body-less
/// answer (302).
#[derive(Clone)]
struct Documented {
    validator: Option<Arc<jsonschema::Validator>>,
}

struct Operation {
    method: String,
    template: Vec<String>,
    /// Path parameter → the values its schema's `enum` allows (`client`).
    path_values: HashMap<String, Vec<String>>,
    template_text: String,
    /// Status (`"200"`, `"4XX"`, `"default"`) → response.
    responses: HashMap<String, Documented>,
}

struct Document {
    operations: Vec<Operation>,
}

fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let canonical: Value = serde_yaml::from_str(allauth_server::spec::CANONICAL_YAML)
            .expect("canonical document parses");
        Document::compile(&canonical)
    })
}

impl Document {
    fn compile(canonical: &Value) -> Document {
        let components = canonical["components"]["schemas"]
            .as_object()
            .expect("component schemas")
            .iter()
            .map(|(name, schema)| (name.clone(), to_json_schema(schema)))
            .collect::<Map<String, Value>>();
        let mut compiled: HashMap<String, Arc<jsonschema::Validator>> = HashMap::new();
        let mut compile = |schema: &Value| -> Arc<jsonschema::Validator> {
            let converted = to_json_schema(schema);
            let key = converted.to_string();
            compiled
                .entry(key)
                .or_insert_with(|| {
                    let root = json!({
                        "$schema": "https://json-schema.org/draft/2020-12/schema",
                        "allOf": [converted],
                        "components": { "schemas": components.clone() },
                    });
                    let validator = jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft202012)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"));
                    Arc::new(validator)
                })
                .clone()
        };

        let mut operations = Vec::new();
        for (path, item) in canonical["paths"].as_object().expect("paths") {
            for method in METHODS {
                let Some(op) = item.get(method) else {
                    continue;
                };
                let mut responses = HashMap::new();
                for (status, response) in op["responses"].as_object().expect("responses") {
                    let response = resolve(canonical, response);
                    let validator = response
                        .pointer("/content/application~1json/schema")
                        .map(&mut compile);
                    responses.insert(status.clone(), Documented { validator });
                }
                let mut path_values = HashMap::new();
                for param in op["parameters"].as_array().into_iter().flatten() {
                    let param = resolve(canonical, param);
                    if param["in"] != "path" {
                        continue;
                    }
                    let allowed =
                        resolve(canonical, &param["schema"])["enum"]
                            .as_array()
                            .map(|values| {
                                values
                                    .iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            });
                    if let (Some(name), Some(allowed)) = (param["name"].as_str(), allowed) {
                        path_values.insert(name.to_string(), allowed);
                    }
                }
                operations.push(Operation {
                    method: method.to_uppercase(),
                    path_values,
                    template: path.split('/').map(str::to_string).collect(),
                    template_text: path.clone(),
                    responses,
                });
            }
        }
        Document { operations }
    }

    /// The operation for a concrete path: of the templates that match (a
    /// path parameter with an `enum` only by one of its values), the one
    /// with the most literal segments.
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .filter(|op| {
                op.template.len() == segments.len()
                    && op.template.iter().zip(&segments).all(|(t, s)| {
                        let param = t.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
                        match param {
                            None => t == s,
                            Some(name) => {
                                !s.is_empty()
                                    && op
                                        .path_values
                                        .get(name)
                                        .is_none_or(|allowed| allowed.iter().any(|a| a == s))
                            }
                        }
                    })
            })
            .max_by_key(|op| op.template.iter().filter(|t| !t.starts_with('{')).count())
    }
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(
            doc,
            doc.pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("unresolved {reference}")),
        ),
        None => value,
    }
}

/// An OpenAPI 3.0 schema as JSON Schema 2020-12 (see the module comment).
fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, value) in object {
                match key.as_str() {
                    "nullable" | "discriminator" | "example" | "xml" | "externalDocs" => {}
                    k if k.starts_with("x-") => {}
                    // Maps whose keys are names, not schemas.
                    "properties" => {
                        let props = value
                            .as_object()
                            .map(|p| {
                                p.iter()
                                    .map(|(name, s)| (name.clone(), to_json_schema(s)))
                                    .collect::<Map<_, _>>()
                            })
                            .unwrap_or_default();
                        out.insert(key.clone(), Value::Object(props));
                    }
                    "enum" | "required" | "default" => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => {
                        out.insert(key.clone(), to_json_schema(value));
                    }
                }
            }
            if out.contains_key("properties") && !out.contains_key("additionalProperties") {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            if object.get("nullable") == Some(&Value::Bool(true)) {
                return nullable(out);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Answers the server gives for any operation, before the operation is
/// reached, that the document leaves out on purpose; `Some(why)` for one.
/// Their envelope must still be the standard one, with one error item of
/// the expected code.
fn outside_the_document(status: u16, body: &Value) -> Option<&'static str> {
    let codes: Vec<&str> = body["errors"]
        .as_array()?
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    let envelope = body.as_object()?.len() == 2 && body["status"] == status && codes.len() == 1;
    match (status, codes.first().copied()) {
        // The operation is not mounted in this configuration, for this
        // client, or by this build: allauth does not mount its URL then
        // (Django answers its own 404), so no operation describes it.
        (404, Some("not_found" | "not_implemented")) if envelope => {
            Some("operation not mounted here")
        }
        // A browser's unsafe request without the CSRF pair (or from an
        // untrusted origin) is refused before any operation runs; Django's
        // CSRF middleware answers it in allauth (with an HTML page).
        (403, Some("csrf_failed")) if envelope => Some("CSRF refusal"),
        _ => None,
    }
}

fn nullable(mut schema: Map<String, Value>) -> Value {
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    match schema.get("type").cloned() {
        Some(Value::String(t)) => {
            schema.insert("type".into(), json!([t, "null"]));
            Value::Object(schema)
        }
        _ => json!({ "anyOf": [Value::Object(schema), { "type": "null" }] }),
    }
}

/// Fails the test unless `body` (`None`: empty) is what the document gives
/// for `method` on `url` (absolute, or a path) answering `status`.
pub fn check(method: &str, url: &str, status: u16, body: Option<&Value>) {
    if let Some(problem) = mismatch(method, url, status, body) {
        panic!("{problem}");
    }
}

/// How the answer differs from the document, if it does ([`check`]).
pub fn mismatch(method: &str, url: &str, status: u16, body: Option<&Value>) -> Option<String> {
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]))
        .unwrap_or(url);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let op = document().operation(method, path)?;
    if body
        .and_then(|body| outside_the_document(status, body))
        .is_some()
    {
        return None;
    }
    let code = status.to_string();
    let range = format!("{}XX", status / 100);
    let documented = op
        .responses
        .get(&code)
        .or_else(|| op.responses.get(&range))
        .or_else(|| op.responses.get("default"));
    let body_text = body.map_or_else(|| "(empty)".to_string(), Value::to_string);
    let template = &op.template_text;
    let Some(documented) = documented else {
        return Some(format!(
            "{method} {path} ({template}) answered {status}, which the document does not list; body: {body_text}"
        ));
    };
    match (&documented.validator, body) {
        (None, None) => None,
        (None, Some(_)) => Some(format!(
            "{method} {path} ({template}) {status}: the document gives no body, the server sent {body_text}"
        )),
        (Some(_), None) => Some(format!(
            "{method} {path} ({template}) {status}: the document gives a JSON body, the server sent none"
        )),
        (Some(validator), Some(body)) => {
            let errors: Vec<String> = validator
                .iter_errors(body)
                .map(|e| format!("  at {}: {e}", e.instance_path()))
                .collect();
            (!errors.is_empty()).then(|| {
                format!(
                    "{method} {path} ({template}) {status}: the body does not match the document:\n{}\nbody: {body_text}",
                    errors.join("\n")
                )
            })
        }
    }
}

/// An answer's body as [`check`] takes it: none when empty, the JSON value
/// of a JSON body, and any other body (or JSON that does not parse) as a
/// string, which no documented JSON schema accepts.
pub fn answer_body(headers: &reqwest::header::HeaderMap, bytes: &[u8]) -> Option<Value> {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    match serde_json::from_slice::<Value>(bytes) {
        _ if bytes.is_empty() => None,
        Ok(value) if json => Some(value),
        _ => Some(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

/// What a checking proxy found: one line per answer that differs.
pub type Problems = Arc<Mutex<Vec<String>>>;

/// Starts a proxy in front of `upstream` (a base URL) for the generated
/// client, which cannot be hooked: every answer passing through is checked
/// with [`mismatch`] and what differs is collected in the returned
/// [`Problems`] (the test server asserts it empty when it stops). The
/// proxy's base URL and its problems.
pub async fn checking_proxy(upstream: String) -> (String, Problems) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("proxy port");
    let base = format!("http://{}", listener.local_addr().expect("proxy address"));
    let problems = Problems::default();
    let found = problems.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (client, upstream, found) = (client.clone(), upstream.clone(), found.clone());
            let service = hyper::service::service_fn(move |request| {
                forward(client.clone(), upstream.clone(), found.clone(), request)
            });
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (base, problems)
}

async fn forward(
    client: reqwest::Client,
    upstream: String,
    problems: Problems,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, reqwest::Error> {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    for hop in ["host", "connection", "content-length", "transfer-encoding"] {
        headers.remove(hop);
    }
    let response = client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let mut headers = response.headers().clone();
    let bytes = response.bytes().await?;
    let value = answer_body(&headers, &bytes);
    if let Some(problem) = mismatch(parts.method.as_str(), path, status.as_u16(), value.as_ref()) {
        problems.lock().expect("problems").push(problem);
    }
    for hop in ["connection", "content-length", "transfer-encoding"] {
        headers.remove(hop);
    }
    let mut answer = hyper::Response::new(http_body_util::Full::new(bytes));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

#[test]
fn every_documented_schema_compiles_and_templates_match() {
    let doc = document();
    assert_eq!(doc.operations.len(), allauth_api::OPERATIONS.len());
    let op = doc
        .operation("GET", "/_allauth/app/v1/auth/session")
        .expect("auth/session");
    assert_eq!(op.template_text, "/_allauth/{client}/v1/auth/session");
    assert!(doc.operation("GET", "/_allauth/app/v1/nowhere").is_none());
}

#[test]
fn undocumented_status_and_drifted_body_fail() {
    let url = "http://127.0.0.1:1/_allauth/app/v1/auth/session";
    let drift = std::panic::catch_unwind(|| {
        check("GET", url, 200, Some(&json!({"status": 200, "data": {}})))
    });
    assert!(drift.is_err(), "a 200 without the user passed");
    let undocumented =
        std::panic::catch_unwind(|| check("GET", url, 418, Some(&json!({"status": 418}))));
    assert!(undocumented.is_err(), "an undocumented status passed");
    let extra = std::panic::catch_unwind(|| {
        check(
            "DELETE",
            url,
            401,
            Some(
                &json!({"status": 401, "data": {"flows": []}, "meta": {"is_authenticated": false}, "surprise": 1}),
            ),
        )
    });
    assert!(extra.is_err(), "an undocumented property passed");
    check(
        "DELETE",
        url,
        401,
        Some(&json!({"status": 401, "data": {"flows": []}, "meta": {"is_authenticated": false}})),
    );
}
