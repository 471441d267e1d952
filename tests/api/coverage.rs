//! Every operation of the document is exercised by some test: a built one by
//! a call through the generated client in these tests, an unbuilt one by the
//! `not_implemented` sweep in `errors.rs`.

use allauth_api::OPERATIONS;
use allauth_server::app::features::is_implemented;

const TEST_SOURCES: &[&str] = &[
    include_str!("account.rs"),
    include_str!("account_email.rs"),
    include_str!("account_password.rs"),
    include_str!("password_reset.rs"),
    include_str!("login_by_code.rs"),
    include_str!("mfa.rs"),
    include_str!("webauthn.rs"),
    include_str!("configuration.rs"),
    include_str!("cors.rs"),
    include_str!("current_session.rs"),
    include_str!("document.rs"),
    include_str!("errors.rs"),
    include_str!("sessions.rs"),
    include_str!("tokens.rs"),
    include_str!("social.rs"),
    include_str!("phone.rs"),
];

#[test]
fn every_operation_has_a_test() {
    let mut untested = Vec::new();
    for op in OPERATIONS.iter() {
        if is_implemented(op.id) {
            let call = format!(".{}(", op.operation_id);
            if !TEST_SOURCES.iter().any(|source| source.contains(&call)) {
                untested.push(op.operation_id);
            }
        }
    }
    assert!(
        untested.is_empty(),
        "built operations without a client test: {untested:?}"
    );
    assert!(
        include_str!("errors.rs").contains("fn unbuilt_operations_answer_not_implemented"),
        "the sweep covering unbuilt operations is gone"
    );
}

#[test]
fn readme_lists_exactly_the_unbuilt_operations() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("<!-- unbuilt-operations:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- unbuilt-operations:end -->").next())
        .expect("README has the unbuilt operations list");
    for op in OPERATIONS.iter() {
        let listed = section.contains(&format!("`{}`", op.operation_id));
        assert_eq!(
            listed,
            !is_implemented(op.id),
            "README listing of {}",
            op.operation_id
        );
    }
}
