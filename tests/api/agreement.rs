//! Closing the loop: the document dropshot derives from the generated trait
//! (`stub_api_description()`) says the same as the canonical document.
//!
//! Compared for every operation: path, method, operationId, tags, parameters
//! (location, name, required), request body (media type and schema), success
//! response (status and schema), error bodies (below); and for every
//! component schema both documents have: property names and required lists,
//! and the types and enums of the schema and of each property (type, enum,
//! `$ref`, array items, map values, `oneOf` members; nullability of required
//! properties).
//!
//! Differences dropshot cannot express, and therefore not compared:
//! * Per-status error bodies. The canonical document gives each error status
//!   its own schema (400 `ErrorResponse`, 401 flows, 409, 410, 429); dropshot
//!   lists one error schema under `4XX`/`5XX`. What is compared instead: that
//!   schema is `ErrorResponse` and has its canonical shape, every canonical
//!   error status falls under those ranges, and every canonical envelope's
//!   `status` enum says its HTTP status (so a body cannot be filed under the
//!   wrong status).
//! * A `$ref` to an alias (`Email` is a string) is inlined by the generator,
//!   and an inline enum becomes a named type; such references are compared
//!   by what they name. References to objects and `oneOf`s by name.
//! * Integer and number `format`s: the Rust type typify picks decides the
//!   derived one.
//! * Nullability of optional properties: an optional property is an
//!   `Option<T>`, which schemars marks `nullable` whether or not the
//!   canonical document allows `null`.
//! * Header names are compared case-insensitively, as HTTP treats them.
//! * Schema names are compared after typify's PascalCase (`MFAAuthenticate`
//!   is the Rust type `MfaAuthenticate`).
//! * Descriptions, examples and summaries (prose is not part of the wire).
//! * A property that is required but `nullable` (present, possibly `null`)
//!   is an `Option<T>` in Rust, which schemars reports as not required; the
//!   server still always sends it. Such properties are left out of the
//!   required comparison, and nothing else is.
//! * Operations whose documented outcome is not a 2xx (`session_logout`
//!   answers 401, `provider_redirect_start` 302): dropshot lists that status
//!   as the success response, which is what is compared.

use std::collections::{BTreeMap, BTreeSet};

use heck::ToPascalCase;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn canonical() -> Value {
    serde_yaml::from_str(allauth_server::spec::CANONICAL_YAML).expect("canonical document parses")
}

fn derived() -> Value {
    let api =
        allauth_api::api::allauth_api_mod::stub_api_description().expect("stub description builds");
    api.openapi("allauth-server", semver::Version::new(1, 0, 0))
        .json()
        .expect("derived document renders")
}

fn norm(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .to_pascal_case()
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("unresolved {reference}")),
            )
        }
        None => value,
    }
}

/// The derived document's component schemas by normalised name.
fn schemas_by_name(doc: &Value) -> BTreeMap<String, &Value> {
    doc["components"]["schemas"]
        .as_object()
        .expect("derived components")
        .iter()
        .map(|(name, schema)| (norm(name), schema))
        .collect()
}

fn schema_ref(schema: Option<&Value>) -> Option<String> {
    let reference = schema?.get("$ref")?.as_str()?;
    Some(norm(reference.rsplit('/').next()?))
}

fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.insert((path.clone(), method.to_string()), op);
            }
        }
    }
    ops
}

fn parameters(doc: &Value, op: &Value) -> BTreeSet<(String, String, bool)> {
    op.get("parameters")
        .and_then(Value::as_array)
        .map(|params| {
            params
                .iter()
                .map(|p| resolve(doc, p))
                .map(|p| {
                    let location = p["in"].as_str().unwrap_or_default().to_string();
                    let name = p["name"].as_str().unwrap_or_default().to_lowercase();
                    (location, name, p["required"].as_bool().unwrap_or(false))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn request_body(doc: &Value, op: &Value) -> Option<(String, Option<String>)> {
    let body = resolve(doc, op.get("requestBody")?);
    let (media, content) = body["content"].as_object()?.iter().next()?;
    Some((media.clone(), schema_ref(content.get("schema"))))
}

/// The status and schema of the response that the generator treats as the
/// operation's success.
fn success(doc: &Value, op: &Value) -> (String, Option<String>) {
    let responses = op["responses"].as_object().expect("responses");
    let code = responses
        .keys()
        .find(|c| c.starts_with('2'))
        .or_else(|| responses.keys().find(|c| *c == "302"))
        .or_else(|| responses.keys().find(|c| *c == "401"))
        .expect("a success response")
        .clone();
    let response = resolve(doc, &responses[&code]);
    let schema = response
        .pointer("/content/application~1json/schema")
        .and_then(|s| schema_ref(Some(s)));
    (code, schema)
}

#[test]
fn derived_document_agrees_with_canonical() {
    let canonical = canonical();
    let derived = derived();
    let canonical_ops = operations(&canonical);
    let derived_ops = operations(&derived);
    let mut problems = Vec::new();

    let canonical_keys: BTreeSet<_> = canonical_ops.keys().collect();
    let derived_keys: BTreeSet<_> = derived_ops.keys().collect();
    for missing in canonical_keys.difference(&derived_keys) {
        problems.push(format!("{missing:?}: in the canonical document only"));
    }
    for extra in derived_keys.difference(&canonical_keys) {
        problems.push(format!("{extra:?}: in the derived document only"));
    }

    for (key, c_op) in &canonical_ops {
        let Some(d_op) = derived_ops.get(key) else {
            continue;
        };
        let mut check = |what: &str, c: String, d: String| {
            if c != d {
                problems.push(format!("{key:?} {what}: canonical {c} ≠ derived {d}"));
            }
        };
        check(
            "operationId",
            c_op["operationId"].to_string(),
            d_op["operationId"].to_string(),
        );
        check("tags", c_op["tags"].to_string(), d_op["tags"].to_string());
        check(
            "parameters",
            format!("{:?}", parameters(&canonical, c_op)),
            format!("{:?}", parameters(&derived, d_op)),
        );
        check(
            "request body",
            format!("{:?}", request_body(&canonical, c_op)),
            format!("{:?}", request_body(&derived, d_op)),
        );
        check(
            "success",
            format!("{:?}", success(&canonical, c_op)),
            format!("{:?}", success(&derived, d_op)),
        );
    }

    // Component schemas: same properties and required fields.
    let derived_schemas = schemas_by_name(&derived);
    let mut compared = 0;
    for (name, c_schema) in canonical["components"]["schemas"]
        .as_object()
        .expect("canonical components")
    {
        let Some(d_schema) = derived_schemas.get(&norm(name)) else {
            continue;
        };
        compared += 1;
        let props = |s: &Value| -> BTreeSet<String> {
            s.get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        };
        let required = |s: &Value| -> BTreeSet<String> {
            s.get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        if props(c_schema) != props(d_schema) {
            problems.push(format!(
                "schema {name}: properties {:?} ≠ {:?}",
                props(c_schema),
                props(d_schema)
            ));
        }
        let nullable: BTreeSet<String> = c_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, p)| {
                        resolve(&canonical, p).get("nullable") == Some(&Value::Bool(true))
                    })
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let c_required: BTreeSet<String> =
            required(c_schema).difference(&nullable).cloned().collect();
        let d_required: BTreeSet<String> =
            required(d_schema).difference(&nullable).cloned().collect();
        if c_required != d_required {
            problems.push(format!(
                "schema {name}: required {:?} ≠ {:?}",
                required(c_schema),
                required(d_schema)
            ));
        }
    }
    assert!(
        compared > 20,
        "only {compared} component schemas could be compared"
    );
    problems.extend(type_differences(&canonical, &derived));
    problems.extend(error_body_differences(&canonical, &derived));
    assert!(
        problems.is_empty(),
        "the documents disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_operation_has_a_unique_operation_id_and_declared_tag() {
    let canonical = canonical();
    let declared: BTreeSet<&str> = canonical["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for ((path, method), op) in operations(&canonical) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(ids.insert(id.to_string()), "{id} used twice");
        let tags = op["tags"].as_array().expect("tags");
        assert_eq!(tags.len(), 1, "{id}: exactly one tag");
        for tag in tags {
            assert!(
                declared.contains(tag.as_str().unwrap_or_default()),
                "{id}: undeclared tag {tag}"
            );
        }
    }
    assert_eq!(
        ids.len(),
        57,
        "allauth's 56 operations and our JWKS document"
    );
    assert_eq!(allauth_api::OPERATIONS.len(), 57);
    // The generated OperationId names exactly these operations.
    assert_eq!(allauth_api::OperationId::ALL.len(), ids.len());
    for id in allauth_api::OperationId::ALL {
        assert!(ids.contains(id.as_str()), "{id} is not in the document");
        assert_eq!(allauth_api::OperationId::parse(id.as_str()), Some(id));
        assert_eq!(id.info().operation_id, id.as_str());
        assert_eq!(id.info().id, id);
    }
    assert_eq!(allauth_api::OperationId::parse("openapi_document"), None);
}

/// The shape of a schema as both documents can say it: its type, enum,
/// reference, array items, map values and `oneOf` members. A `$ref` to an
/// object with properties or to a `oneOf` is compared by (normalised) name;
/// any other `$ref` by what it names, because the generator inlines some
/// aliases (`Email` is a string) and names some inline enums
/// (`AccountConfigurationAuthenticationMethod`). schemars' `allOf: [$ref]`
/// wrapper of a nullable reference is the reference.
fn shape(doc: &Value, schema: &Value) -> Value {
    if let Some(reference) = schema_ref(Some(schema)) {
        let target = resolve(doc, schema);
        let named = target.get("properties").is_some()
            || target.get("oneOf").is_some()
            || target.get("anyOf").is_some();
        if named {
            return Value::String(format!("$ref {reference}"));
        }
        return shape(doc, target);
    }
    if let Some([only]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return shape(doc, only);
    }
    let mut out = serde_json::Map::new();
    for key in ["type", "enum"] {
        if let Some(value) = schema.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(items) = schema.get("items") {
        out.insert("items".into(), shape(doc, items));
    }
    match schema.get("additionalProperties") {
        Some(Value::Object(values)) => {
            out.insert(
                "additionalProperties".into(),
                shape(doc, &Value::Object(values.clone())),
            );
        }
        Some(other) => {
            out.insert("additionalProperties".into(), other.clone());
        }
        None => {}
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(members) = schema.get(key).and_then(Value::as_array) {
            let mut members: Vec<String> =
                members.iter().map(|m| shape(doc, m).to_string()).collect();
            members.sort();
            out.insert("oneOf".into(), members.into());
        }
    }
    Value::Object(out)
}

fn is_nullable(schema: &Value) -> bool {
    schema.get("nullable") == Some(&Value::Bool(true))
}

/// Types and enums: every component schema both documents have, and each of
/// its properties, has the same [`shape`]; a required property is nullable
/// in both or in neither.
fn type_differences(canonical: &Value, derived: &Value) -> Vec<String> {
    let derived_schemas = schemas_by_name(derived);
    let mut problems = Vec::new();
    for (name, c_schema) in canonical["components"]["schemas"]
        .as_object()
        .expect("canonical components")
    {
        let Some(d_schema) = derived_schemas.get(&norm(name)) else {
            continue;
        };
        let (c, d) = (shape(canonical, c_schema), shape(derived, d_schema));
        if c != d {
            problems.push(format!("schema {name}: type {c} ≠ {d}"));
        }
        let Some(c_props) = c_schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let required: BTreeSet<&str> = c_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (prop, c_prop) in c_props {
            let Some(d_prop) = d_schema.pointer(&format!("/properties/{prop}")) else {
                continue;
            };
            let (c, d) = (shape(canonical, c_prop), shape(derived, d_prop));
            if c != d {
                problems.push(format!("schema {name}.{prop}: type {c} ≠ {d}"));
            }
            if required.contains(prop.as_str()) && is_nullable(c_prop) != is_nullable(d_prop) {
                problems.push(format!(
                    "schema {name}.{prop}: required, nullable {} ≠ {}",
                    is_nullable(c_prop),
                    is_nullable(d_prop)
                ));
            }
        }
    }
    problems
}

/// Error bodies. dropshot gives every operation one error schema under
/// `4XX` and `5XX`: it must be the canonical `ErrorResponse`, and every
/// error status the canonical document lists must fall under those ranges.
/// Every canonical response body's `status` must say its HTTP status.
fn error_body_differences(canonical: &Value, derived: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let derived_ops = operations(derived);
    for (key, c_op) in operations(canonical) {
        let Some(d_op) = derived_ops.get(&key) else {
            continue;
        };
        for range in ["4XX", "5XX"] {
            let schema = d_op["responses"]
                .get(range)
                .map(|r| resolve(derived, r))
                .and_then(|r| r.pointer("/content/application~1json/schema"))
                .and_then(|s| schema_ref(Some(s)));
            if schema.as_deref() != Some("ErrorResponse") {
                problems.push(format!("{key:?} {range}: derived error body {schema:?}"));
            }
        }
        for (code, response) in c_op["responses"].as_object().expect("responses") {
            let Ok(status) = code.parse::<u16>() else {
                problems.push(format!(
                    "{key:?}: status range {code} in the canonical document"
                ));
                continue;
            };
            let Some(schema) =
                resolve(canonical, response).pointer("/content/application~1json/schema")
            else {
                continue;
            };
            // A body without `status` is not an envelope (the JWKS).
            if let Some(said) = envelope_statuses(canonical, schema) {
                if said.iter().any(|s| s.as_u64() != Some(u64::from(status))) || said.is_empty() {
                    problems.push(format!("{key:?} {code}: body status says {said:?}"));
                }
            }
            if !(200..300).contains(&status) && status != 302 && !(400..600).contains(&status) {
                problems.push(format!("{key:?} {code}: not covered by 4XX/5XX"));
            }
        }
    }
    let derived_error = derived.pointer("/components/schemas/ErrorResponse");
    let canonical_error = canonical.pointer("/components/schemas/ErrorResponse");
    match (canonical_error, derived_error) {
        (Some(c), Some(d)) if shape(canonical, c) == shape(derived, d) => {}
        (c, d) => problems.push(format!("ErrorResponse: canonical {c:?} ≠ derived {d:?}")),
    }
    problems
}

/// The values an envelope schema allows for `status` (through `oneOf`
/// members too); `None` for a body that is not an envelope.
fn envelope_statuses(doc: &Value, schema: &Value) -> Option<Vec<Value>> {
    let schema = resolve(doc, schema);
    if let Some(members) = schema.get("oneOf").and_then(Value::as_array) {
        let mut all = Vec::new();
        for member in members {
            all.extend(envelope_statuses(doc, member)?);
        }
        return Some(all);
    }
    let status = resolve(doc, schema.pointer("/properties/status")?);
    Some(
        status
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    )
}
