//! `/_allauth/openapi.{json,yaml,html}` and the HTML page's local assets.

use allauth_api::runtime::{ApiError, SpecDocumentParam};
use dropshot::{Body, RequestContext};
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::http::{response_headers, ServerContext};

pub async fn openapi_document(
    rqctx: RequestContext<ServerContext>,
    document: SpecDocumentParam,
) -> Result<Response<Body>, ApiError> {
    let ctx = rqctx.context();
    let headers = response_headers(ctx, rqctx.request.headers());
    let served = ctx.config.headless.serve_specification;
    let (body, content_type, status): (Vec<u8>, &str, StatusCode) = match document.name.as_str() {
        "openapi.json" if served => (
            ctx.spec.json.clone().into_bytes(),
            "application/vnd.oai.openapi+json",
            StatusCode::OK,
        ),
        "openapi.yaml" if served => (
            ctx.spec.yaml.clone().into_bytes(),
            "application/vnd.oai.openapi",
            StatusCode::OK,
        ),
        "openapi.html" if served => (
            ctx.spec.html.clone().into_bytes(),
            "text/html; charset=utf-8",
            StatusCode::OK,
        ),
        name => match ctx.spec.asset(name).filter(|_| served) {
            Some((bytes, content_type)) => (bytes, content_type, StatusCode::OK),
            None => {
                let body = json!({
                    "status": 404,
                    "errors": [{"code": "not_found", "message": "There is nothing here."}],
                });
                (
                    body.to_string().into_bytes(),
                    "application/json",
                    StatusCode::NOT_FOUND,
                )
            }
        },
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    Ok(response)
}
