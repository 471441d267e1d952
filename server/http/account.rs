//! Handlers of the `Authentication: Account` operations.

#[allow(unused_imports)]
use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::RequestContext;

use crate::http::{not_built, ServerContext};

pub async fn login_password(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<LoginPasswordHeaders>,
    _body: JsonBody<types::LoginInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn signup_create(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<SignupCreateHeaders>,
    _body: JsonBody<types::SignupInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn email_verification_view(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailVerificationViewHeaders>,
) -> Result<Reply<types::EmailVerificationInfoResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn email_verification_confirm(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailVerificationConfirmHeaders>,
    _body: JsonBody<types::VerifyEmailInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn email_verification_resend(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<EmailVerificationResendHeaders>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn phone_verification_confirm(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PhoneVerificationConfirmHeaders>,
    _body: JsonBody<types::VerifyPhoneInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn phone_verification_resend(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<PhoneVerificationResendHeaders>,
) -> Result<Reply<types::StatusOkResponse>, ApiError> {
    not_built(rqctx, client).await
}

pub async fn reauthenticate_password(
    rqctx: RequestContext<ServerContext>,
    client: ClientParam<types::Client>,
    _headers: HeaderParams<ReauthenticatePasswordHeaders>,
    _body: JsonBody<types::ReauthenticateInput>,
) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
    not_built(rqctx, client).await
}
