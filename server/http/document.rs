//! `/_allauth/openapi.{json,yaml,html}` and the HTML page's local assets.

use allauth_api::runtime::{ApiError, SpecDocumentParam};
use dropshot::{Body, RequestContext};
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::http::{response_headers, ServerContext};
use crate::spec::Rendered;

pub async fn openapi_document(
    rqctx: RequestContext<ServerContext>,
    document: SpecDocumentParam,
) -> Result<Response<Body>, ApiError> {
    let ctx = rqctx.context();
    let headers = response_headers(ctx, rqctx.request.headers());
    let served = ctx.config.headless.serve_specification;
    let failed = |status: StatusCode, code: &str, message: &str| {
        let body = json!({
            "status": status.as_u16(),
            "errors": [{"code": code, "message": message}],
        });
        (body.to_string().into_bytes(), "application/json", status)
    };
    let rendering = |name: &str| {
        let (kind, text): (_, fn(&Rendered) -> &String) = match name {
            "openapi.json" => ("application/vnd.oai.openapi+json", |r| &r.json),
            "openapi.yaml" => ("application/vnd.oai.openapi", |r| &r.yaml),
            "openapi.html" => ("text/html; charset=utf-8", |r| &r.html),
            _ => return None,
        };
        Some(match ctx.spec.rendered() {
            Ok(rendered) => (text(rendered).clone().into_bytes(), kind, StatusCode::OK),
            Err(error) => {
                tracing::error!(%error, "the served document cannot be rendered");
                failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "The server could not render the document.",
                )
            }
        })
    };
    let name = document.name.as_str();
    let answer = served
        .then(|| {
            rendering(name).or_else(|| {
                let (bytes, content_type) = ctx.spec.asset(name)?;
                Some((bytes, content_type, StatusCode::OK))
            })
        })
        .flatten();
    let (body, content_type, status): (Vec<u8>, &str, StatusCode) = answer
        .unwrap_or_else(|| failed(StatusCode::NOT_FOUND, "not_found", "There is nothing here."));
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
