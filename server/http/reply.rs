//! Domain values of the application layer turned into the generated API
//! types, so that the compiler holds every answer body to the document:
//! users, authentication records, flows, and the session answers built of
//! them (200 signed in, 401 anonymous or reauthentication, 410 gone).

use allauth_api::types;
use serde::Serialize;
use serde_json::Value;

use crate::app::sessions::session::{AuthRecord, Flow, FlowKind, UserView};
use crate::app::Error;

pub fn user(view: &UserView) -> types::User {
    types::User {
        display: view.display(),
        email: view.email.clone().map(types::Email),
        has_usable_password: view.has_usable_password,
        id: Some(view.id),
        username: view.username.clone().map(types::Username),
    }
}

pub fn method(record: &AuthRecord) -> types::AuthenticationMethod {
    match record {
        AuthRecord::Password {
            at,
            email,
            username,
            reauthenticated,
        } => types::PasswordAuthenticationMethod {
            at: types::Timestamp(*at),
            email: email.clone().map(types::Email),
            method: types::PasswordAuthenticationMethodMethod::Password,
            reauthenticated: reauthenticated.then_some(true),
            username: username.clone().map(types::Username),
        }
        .into(),
        AuthRecord::PasswordReset { at, email } => types::PasswordResetAuthenticationMethod {
            at: types::Timestamp(*at),
            email: email.clone().map(types::Email),
            method: types::PasswordResetAuthenticationMethodMethod::PasswordReset,
            phone: None,
        }
        .into(),
        AuthRecord::Code { at, email } => types::CodeAuthenticationMethod {
            at: types::Timestamp(*at),
            email: email.clone().map(types::Email),
            method: types::CodeAuthenticationMethodMethod::Code,
            phone: None,
        }
        .into(),
    }
}

pub fn methods(records: &[AuthRecord]) -> Vec<types::AuthenticationMethod> {
    records.iter().map(method).collect()
}

fn flow_id(kind: FlowKind) -> types::FlowId {
    match kind {
        FlowKind::Login => types::FlowId::Login,
        FlowKind::LoginByCode => types::FlowId::LoginByCode,
        FlowKind::Signup => types::FlowId::Signup,
        FlowKind::MfaLoginWebauthn => types::FlowId::MfaLoginWebauthn,
        FlowKind::VerifyEmail => types::FlowId::VerifyEmail,
        FlowKind::PasswordResetByCode => types::FlowId::PasswordResetByCode,
        FlowKind::Reauthenticate => types::FlowId::Reauthenticate,
        FlowKind::MfaReauthenticate => types::FlowId::MfaReauthenticate,
    }
}

pub fn flows(flows: &[Flow]) -> Vec<types::Flow> {
    flows
        .iter()
        .map(|f| types::Flow {
            id: flow_id(f.id),
            is_pending: f.is_pending,
            provider: None,
            providers: Vec::new(),
            types: Vec::new(),
        })
        .collect()
}

/// The `status` member of an envelope, as the document types it.
pub fn status<S: TryFrom<i64>>(code: u16) -> Result<S, Error> {
    S::try_from(i64::from(code))
        .map_err(|_| Error::Internal(format!("status {code} does not fit its envelope")))
}

/// A typed body as the JSON the answer carries.
pub fn to_json<T: Serialize>(body: &T) -> Result<Value, Error> {
    serde_json::to_value(body).map_err(|e| Error::Internal(format!("answer body: {e}")))
}
