//! The checked-in generated code equals what the build script generates now.
//! Refresh with `EXPECTORATE=overwrite cargo test --test api codegen`.

const GENERATED: [(&str, &str); 3] = [
    (
        "types.rs",
        include_str!(concat!(env!("OUT_DIR"), "/types.rs")),
    ),
    ("api.rs", include_str!(concat!(env!("OUT_DIR"), "/api.rs"))),
    (
        "client.rs",
        include_str!(concat!(env!("OUT_DIR"), "/client.rs")),
    ),
];

#[test]
fn codegen_is_up_to_date() {
    for (name, contents) in GENERATED {
        expectorate::assert_contents(format!("generated/src/{name}"), contents);
    }
}
