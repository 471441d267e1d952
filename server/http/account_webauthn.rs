//! Handlers of the `Account: WebAuthn` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn webauthn_authenticator_options(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnAuthenticatorOptionsHeaders>,
    _query: QueryParams<WebauthnAuthenticatorOptionsQuery>,
) -> Result<Reply<types::WebAuthnCreationOptionsResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_authenticator_rename(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnAuthenticatorRenameHeaders>,
    _body: JsonBody<types::RenameWebAuthnAuthenticatorInput>,
) -> Result<Reply<types::WebAuthnAuthenticatorResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_authenticator_add(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnAuthenticatorAddHeaders>,
    _body: JsonBody<types::AddWebAuthnAuthenticatorInput>,
) -> Result<Reply<types::AddWebAuthnAuthenticatorResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn webauthn_authenticator_delete(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<WebauthnAuthenticatorDeleteHeaders>,
    _body: JsonBody<types::DeleteWebAuthnAuthenticatorsInput>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}
