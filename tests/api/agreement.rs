//! Closing the loop: the document dropshot derives from the generated trait
//! (`stub_api_description()`) says the same as the canonical document.
//!
//! Compared for every operation: path, method, operationId, tags, parameters
//! (location, name, required), request body (media type and schema), success
//! response (status and schema); and for every component schema both
//! documents have: property names and required lists.
//!
//! Differences dropshot cannot express, and therefore not compared:
//! * Per-status error bodies. The canonical document gives each error status
//!   its own schema (400 `ErrorResponse`, 401 flows, 409, 410, 429); dropshot
//!   lists one error schema under `4XX`/`5XX`.
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
    let derived_schemas: BTreeMap<String, &Value> = derived["components"]["schemas"]
        .as_object()
        .expect("derived components")
        .iter()
        .map(|(name, schema)| (norm(name), schema))
        .collect();
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
}
