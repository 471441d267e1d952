//! Implements the generated trait. Each operation goes through the one
//! wrapper [`serve`](crate::http::serve) to the handler of the same name in
//! the module of its tag (`allauth_api::tag_handlers!`, generated from the
//! document); the unpublished endpoints are forwarded here by hand.

use allauth_api::api::*;
use allauth_api::runtime::*;
use dropshot::{Body, RequestContext};
use http::Response;

use crate::http::*;

/// The server's implementation of [`AllauthApi`].
pub enum Api {}

impl AllauthApi for Api {
    type Context = ServerContext;

    allauth_api::tag_handlers!(crate::http);

    async fn openapi_document(
        rqctx: RequestContext<Self::Context>,
        document: SpecDocumentParam,
    ) -> Result<Response<Body>, ApiError> {
        document::openapi_document(rqctx, document).await
    }

    async fn health_live(
        rqctx: RequestContext<Self::Context>,
        segment: SpecDocumentParam,
    ) -> Result<Response<Body>, ApiError> {
        health::live(rqctx, segment).await
    }

    async fn health_ready(
        rqctx: RequestContext<Self::Context>,
        segment: SpecDocumentParam,
    ) -> Result<Response<Body>, ApiError> {
        health::ready(rqctx, segment).await
    }

    async fn accounts_page(
        rqctx: RequestContext<Self::Context>,
        path: dropshot::Path<AccountsPathParam>,
    ) -> Result<Response<Body>, ApiError> {
        accounts_pages::accounts_page(rqctx, path).await
    }

    async fn accounts_form(
        rqctx: RequestContext<Self::Context>,
        path: dropshot::Path<AccountsPathParam>,
        body: dropshot::UntypedBody,
    ) -> Result<Response<Body>, ApiError> {
        accounts_pages::accounts_form(rqctx, path, body).await
    }

    allauth_api::preflight_endpoints!(cors::preflight);

    allauth_api::other_method_endpoints!(other_method::other_method);
}
