//! Implements the generated trait by delegating each operation to the
//! handler of the same name in the module of its tag.

use allauth_api::api::*;
use allauth_api::runtime::*;
use allauth_api::types;
use dropshot::{Body, RequestContext};
use http::Response;

use crate::http::*;

/// The server's implementation of [`AllauthApi`].
pub enum Api {}

impl AllauthApi for Api {
    type Context = ServerContext;

    async fn config_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
    ) -> Result<Reply<types::ConfigurationResponse>, ApiError> {
        configuration::config_view(rqctx, client).await
    }

    async fn login_password(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<LoginPasswordHeaders>,
        body: JsonBody<types::LoginInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        account::login_password(rqctx, client, headers, body).await
    }

    async fn signup_create(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<SignupCreateHeaders>,
        body: JsonBody<types::SignupInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        account::signup_create(rqctx, client, headers, body).await
    }

    async fn email_verification_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailVerificationViewHeaders>,
    ) -> Result<Reply<types::EmailVerificationInfoResponse>, ApiError> {
        account::email_verification_view(rqctx, client, headers).await
    }

    async fn email_verification_confirm(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailVerificationConfirmHeaders>,
        body: JsonBody<types::VerifyEmailInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        account::email_verification_confirm(rqctx, client, headers, body).await
    }

    async fn email_verification_resend(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailVerificationResendHeaders>,
    ) -> Result<Reply<types::StatusOkResponse>, ApiError> {
        account::email_verification_resend(rqctx, client, headers).await
    }

    async fn phone_verification_confirm(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PhoneVerificationConfirmHeaders>,
        body: JsonBody<types::VerifyPhoneInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        account::phone_verification_confirm(rqctx, client, headers, body).await
    }

    async fn phone_verification_resend(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PhoneVerificationResendHeaders>,
    ) -> Result<Reply<types::StatusOkResponse>, ApiError> {
        account::phone_verification_resend(rqctx, client, headers).await
    }

    async fn reauthenticate_password(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<ReauthenticatePasswordHeaders>,
        body: JsonBody<types::ReauthenticateInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        account::reauthenticate_password(rqctx, client, headers, body).await
    }

    async fn password_reset_request(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PasswordResetRequestHeaders>,
        body: JsonBody<types::RequestPasswordResetInput>,
    ) -> Result<Reply<types::StatusOkResponse>, ApiError> {
        password_reset::password_reset_request(rqctx, client, headers, body).await
    }

    async fn password_reset_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PasswordResetViewHeaders>,
    ) -> Result<Reply<types::PasswordResetInfoResponse>, ApiError> {
        password_reset::password_reset_view(rqctx, client, headers).await
    }

    async fn password_reset_confirm(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PasswordResetConfirmHeaders>,
        body: JsonBody<types::ResetPasswordInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        password_reset::password_reset_confirm(rqctx, client, headers, body).await
    }

    async fn provider_redirect_start(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::BrowserClient>,
        headers: HeaderParams<ProviderRedirectStartHeaders>,
        body: FormBody<types::ProviderRedirectInput>,
    ) -> Result<Redirect, ApiError> {
        providers::provider_redirect_start(rqctx, client, headers, body).await
    }

    async fn provider_token_authenticate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<ProviderTokenAuthenticateHeaders>,
        body: JsonBody<types::ProviderTokenInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        providers::provider_token_authenticate(rqctx, client, headers, body).await
    }

    async fn provider_signup_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<ProviderSignupViewHeaders>,
    ) -> Result<Reply<types::ProviderSignupInfoResponse>, ApiError> {
        providers::provider_signup_view(rqctx, client, headers).await
    }

    async fn provider_signup_complete(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<ProviderSignupCompleteHeaders>,
        body: JsonBody<types::ProviderSignupInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        providers::provider_signup_complete(rqctx, client, headers, body).await
    }

    async fn mfa_authenticate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<MfaAuthenticateHeaders>,
        body: JsonBody<types::MfaAuthenticateInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        two_factor::mfa_authenticate(rqctx, client, headers, body).await
    }

    async fn mfa_reauthenticate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<MfaReauthenticateHeaders>,
        body: JsonBody<types::MfaAuthenticateInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        two_factor::mfa_reauthenticate(rqctx, client, headers, body).await
    }

    async fn mfa_trust(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::BrowserClient>,
        headers: HeaderParams<MfaTrustHeaders>,
        body: JsonBody<types::MfaTrustInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        two_factor::mfa_trust(rqctx, client, headers, body).await
    }

    async fn webauthn_authenticate_options(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnAuthenticateOptionsHeaders>,
    ) -> Result<Reply<types::WebAuthnRequestOptionsResponse>, ApiError> {
        webauthn_login::webauthn_authenticate_options(rqctx, client, headers).await
    }

    async fn webauthn_authenticate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnAuthenticateHeaders>,
        body: JsonBody<types::WebAuthnAssertionInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        webauthn_login::webauthn_authenticate(rqctx, client, headers, body).await
    }

    async fn webauthn_reauthenticate_options(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnReauthenticateOptionsHeaders>,
    ) -> Result<Reply<types::WebAuthnRequestOptionsResponse>, ApiError> {
        webauthn_login::webauthn_reauthenticate_options(rqctx, client, headers).await
    }

    async fn webauthn_reauthenticate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnReauthenticateHeaders>,
        body: JsonBody<types::WebAuthnAssertionInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        webauthn_login::webauthn_reauthenticate(rqctx, client, headers, body).await
    }

    async fn webauthn_login_options(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnLoginOptionsHeaders>,
    ) -> Result<Reply<types::WebAuthnRequestOptionsResponse>, ApiError> {
        webauthn_login::webauthn_login_options(rqctx, client, headers).await
    }

    async fn webauthn_login(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnLoginHeaders>,
        body: JsonBody<types::WebAuthnAssertionInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        webauthn_login::webauthn_login(rqctx, client, headers, body).await
    }

    async fn webauthn_signup_options(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnSignupOptionsHeaders>,
    ) -> Result<Reply<types::WebAuthnCreationOptionsResponse>, ApiError> {
        webauthn_signup::webauthn_signup_options(rqctx, client, headers).await
    }

    async fn webauthn_signup_complete(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnSignupCompleteHeaders>,
        body: JsonBody<types::CompletePasskeySignupInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        webauthn_signup::webauthn_signup_complete(rqctx, client, headers, body).await
    }

    async fn webauthn_signup_start(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnSignupStartHeaders>,
        body: JsonBody<types::PasskeySignupInput>,
    ) -> Result<Reply<types::AuthenticationResponse, 401u16>, ApiError> {
        webauthn_signup::webauthn_signup_start(rqctx, client, headers, body).await
    }

    async fn login_code_request(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<LoginCodeRequestHeaders>,
        body: JsonBody<types::RequestLoginCodeInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        login_by_code::login_code_request(rqctx, client, headers, body).await
    }

    async fn login_code_confirm(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<LoginCodeConfirmHeaders>,
        body: JsonBody<types::ConfirmLoginCodeInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        login_by_code::login_code_confirm(rqctx, client, headers, body).await
    }

    async fn login_code_resend(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<LoginCodeResendHeaders>,
    ) -> Result<Reply<types::StatusOkResponse>, ApiError> {
        login_by_code::login_code_resend(rqctx, client, headers).await
    }

    async fn provider_account_list(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<ProviderAccountListHeaders>,
    ) -> Result<Reply<types::ProviderAccountsResponse>, ApiError> {
        account_providers::provider_account_list(rqctx, client, headers).await
    }

    async fn provider_account_disconnect(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<ProviderAccountDisconnectHeaders>,
        body: JsonBody<types::DisconnectProviderAccountInput>,
    ) -> Result<Reply<types::ProviderAccountsResponse>, ApiError> {
        account_providers::provider_account_disconnect(rqctx, client, headers, body).await
    }

    async fn email_list(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailListHeaders>,
    ) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
        account_email::email_list(rqctx, client, headers).await
    }

    async fn email_verification_request(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailVerificationRequestHeaders>,
        body: JsonBody<types::EmailAddressInput>,
    ) -> Result<Reply<types::StatusOkResponse>, ApiError> {
        account_email::email_verification_request(rqctx, client, headers, body).await
    }

    async fn email_add(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailAddHeaders>,
        body: JsonBody<types::EmailAddressInput>,
    ) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
        account_email::email_add(rqctx, client, headers, body).await
    }

    async fn email_remove(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailRemoveHeaders>,
        body: JsonBody<types::EmailAddressInput>,
    ) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
        account_email::email_remove(rqctx, client, headers, body).await
    }

    async fn email_mark_primary(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<EmailMarkPrimaryHeaders>,
        body: JsonBody<types::MarkPrimaryEmailInput>,
    ) -> Result<Reply<types::EmailAddressesResponse>, ApiError> {
        account_email::email_mark_primary(rqctx, client, headers, body).await
    }

    async fn phone_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PhoneViewHeaders>,
    ) -> Result<Reply<types::PhoneNumbersResponse>, ApiError> {
        account_phone::phone_view(rqctx, client, headers).await
    }

    async fn phone_change(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PhoneChangeHeaders>,
        body: JsonBody<types::ChangePhoneInput>,
    ) -> Result<Reply<types::PhoneNumberChangeResponse, 202u16>, ApiError> {
        account_phone::phone_change(rqctx, client, headers, body).await
    }

    async fn authenticator_list(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<AuthenticatorListHeaders>,
    ) -> Result<Reply<types::AuthenticatorsResponse>, ApiError> {
        account_two_factor::authenticator_list(rqctx, client, headers).await
    }

    async fn totp_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<TotpViewHeaders>,
    ) -> Result<Reply<types::TotpAuthenticatorResponse>, ApiError> {
        account_two_factor::totp_view(rqctx, client, headers).await
    }

    async fn totp_activate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<TotpActivateHeaders>,
        body: JsonBody<types::ActivateTotpInput>,
    ) -> Result<Reply<types::TotpAuthenticatorResponse>, ApiError> {
        account_two_factor::totp_activate(rqctx, client, headers, body).await
    }

    async fn totp_deactivate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<TotpDeactivateHeaders>,
    ) -> Result<Reply<types::StatusOkResponse>, ApiError> {
        account_two_factor::totp_deactivate(rqctx, client, headers).await
    }

    async fn recovery_codes_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<RecoveryCodesViewHeaders>,
    ) -> Result<Reply<types::RecoveryCodesResponse>, ApiError> {
        account_two_factor::recovery_codes_view(rqctx, client, headers).await
    }

    async fn recovery_codes_regenerate(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<RecoveryCodesRegenerateHeaders>,
    ) -> Result<Reply<types::RecoveryCodesResponse>, ApiError> {
        account_two_factor::recovery_codes_regenerate(rqctx, client, headers).await
    }

    async fn webauthn_authenticator_options(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnAuthenticatorOptionsHeaders>,
        query: QueryParams<WebauthnAuthenticatorOptionsQuery>,
    ) -> Result<Reply<types::WebAuthnCreationOptionsResponse>, ApiError> {
        account_webauthn::webauthn_authenticator_options(rqctx, client, headers, query).await
    }

    async fn webauthn_authenticator_rename(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnAuthenticatorRenameHeaders>,
        body: JsonBody<types::RenameWebAuthnAuthenticatorInput>,
    ) -> Result<Reply<types::WebAuthnAuthenticatorResponse>, ApiError> {
        account_webauthn::webauthn_authenticator_rename(rqctx, client, headers, body).await
    }

    async fn webauthn_authenticator_add(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnAuthenticatorAddHeaders>,
        body: JsonBody<types::AddWebAuthnAuthenticatorInput>,
    ) -> Result<Reply<types::AddWebAuthnAuthenticatorResponse>, ApiError> {
        account_webauthn::webauthn_authenticator_add(rqctx, client, headers, body).await
    }

    async fn webauthn_authenticator_delete(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<WebauthnAuthenticatorDeleteHeaders>,
        body: JsonBody<types::DeleteWebAuthnAuthenticatorsInput>,
    ) -> Result<Reply<types::StatusOkResponse>, ApiError> {
        account_webauthn::webauthn_authenticator_delete(rqctx, client, headers, body).await
    }

    async fn session_view(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<SessionViewHeaders>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        current_session::session_view(rqctx, client, headers).await
    }

    async fn session_logout(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<SessionLogoutHeaders>,
    ) -> Result<Reply<types::AuthenticationResponse, 401u16>, ApiError> {
        current_session::session_logout(rqctx, client, headers).await
    }

    async fn token_refresh(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::AppClient>,
        body: JsonBody<types::RefreshTokenInput>,
    ) -> Result<Reply<types::RefreshTokenResponse>, ApiError> {
        tokens::token_refresh(rqctx, client, body).await
    }

    async fn password_change(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<PasswordChangeHeaders>,
        body: JsonBody<types::ChangePasswordInput>,
    ) -> Result<Reply<types::AuthenticatedResponse>, ApiError> {
        account_password::password_change(rqctx, client, headers, body).await
    }

    async fn user_session_list(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<UserSessionListHeaders>,
    ) -> Result<Reply<types::SessionsResponse>, ApiError> {
        sessions::user_session_list(rqctx, client, headers).await
    }

    async fn user_session_delete(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::Client>,
        headers: HeaderParams<UserSessionDeleteHeaders>,
        body: JsonBody<types::EndSessionsInput>,
    ) -> Result<Reply<types::SessionsResponse>, ApiError> {
        sessions::user_session_delete(rqctx, client, headers, body).await
    }

    async fn token_jwks(
        rqctx: RequestContext<Self::Context>,
        client: ClientParam<types::AppClient>,
    ) -> Result<Reply<types::JwksResponse>, ApiError> {
        tokens::token_jwks(rqctx, client).await
    }

    async fn openapi_document(
        rqctx: RequestContext<Self::Context>,
        document: SpecDocumentParam,
    ) -> Result<Response<Body>, ApiError> {
        document::openapi_document(rqctx, document).await
    }

    allauth_api::preflight_endpoints!(cors::preflight);
}
