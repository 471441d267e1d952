//! allauth's pages under `/accounts/` that a provider login passes
//! through (outside the API document; see `docs/social.md`):
//!
//! * `/accounts/<provider>/login/callback/` and
//!   `/accounts/oidc/<provider_id>/login/callback/`: where providers send
//!   the browser back, the paths a team moving from allauth has registered;
//!   they end with a redirect to the frontend;
//! * `/accounts/dummy/authenticate/`: the dummy provider's form.
//!
//! They act for the browser client, in its session (cookie).

use allauth_api::api::OperationId;
use allauth_api::runtime::{AccountsPathParam, ApiError, ClientParam, Redirect};
use dropshot::{Body, HttpResponse, RequestContext};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Map, Value};

use crate::app::social::redirect::{self, DummyPage};
use crate::app::Error;
use crate::http::{error_reply, Call, Early, ServerContext};

/// Which page a path names.
enum Page {
    Callback(String),
    Dummy,
}

fn page(rest: &[String]) -> Option<Page> {
    let parts: Vec<&str> = rest
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        ["oidc", provider_id, "login", "callback"] => {
            Some(Page::Callback((*provider_id).to_string()))
        }
        ["dummy", "authenticate"] => Some(Page::Dummy),
        [provider, "login", "callback"] if *provider != "oidc" => {
            Some(Page::Callback((*provider).to_string()))
        }
        _ => None,
    }
}

fn query_of(rqctx: &RequestContext<ServerContext>) -> Map<String, Value> {
    let query = rqctx.request.uri().query().unwrap_or("");
    let mut map = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        map.entry(k.into_owned())
            .or_insert(Value::String(v.into_owned()));
    }
    map
}

fn into_response(redirect: Redirect) -> Result<Response<Body>, ApiError> {
    redirect.to_result().map_err(ApiError::from)
}

pub async fn accounts_page(
    rqctx: RequestContext<ServerContext>,
    path: dropshot::Path<AccountsPathParam>,
) -> Result<Response<Body>, ApiError> {
    let Some(page) = page(&path.into_inner().rest) else {
        let headers = crate::http::response_headers(rqctx.context(), rqctx.request.headers());
        return Ok(error_reply::<Early>(Error::NotFound, headers).into_response());
    };
    let client = ClientParam::<String>::named("browser");
    let mut call = match Call::start_as::<String, Early>(
        &rqctx,
        &client,
        Some(OperationId::ProviderRedirectStart),
    )
    .await
    {
        Ok(call) => call,
        Err(early) => return Ok(early.into_response()),
    };
    let query = query_of(&rqctx);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    match page {
        Page::Callback(provider_id) => {
            let origin = call.own_origin();
            let location =
                redirect::callback(&deps, &mut call.session, &origin, &provider_id, &query).await;
            into_response(call.finish_redirect(location).await)
        }
        Page::Dummy => match redirect::dummy_authenticate(&deps, &mut call.session, &query).await {
            Ok(DummyPage::Form { state, error }) => Ok(dummy_form(&state, error.as_deref())),
            Ok(DummyPage::Redirect(location)) => {
                into_response(call.finish_redirect(Ok(location)).await)
            }
            Err(error) => into_response(call.finish_redirect(Err(error)).await),
        },
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// The dummy provider's form: the identity to log in as.
fn dummy_form(state: &str, error: Option<&str>) -> Response<Body> {
    let state = escape(state);
    let error = error
        .map(|e| format!("<p role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Dummy provider</title></head>
<body>
<h1>Dummy provider</h1>
<p>A provider for development: enter the identity to log in as.</p>
{error}
<form method="get" action="/accounts/dummy/authenticate/">
<input type="hidden" name="state" value="{state}">
<p><label>Account ID <input name="id" inputmode="numeric" required></label></p>
<p><label>Email <input name="email" type="email"></label></p>
<p><label><input name="email_verified" type="checkbox" value="true"> Email verified</label></p>
<p><label>Username <input name="username"></label></p>
<p><label>First name <input name="first_name"></label></p>
<p><label>Last name <input name="last_name"></label></p>
<p><button type="submit">Log in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button></p>
</form>
</body>
</html>
"#
    );
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self'"),
    );
    response
}
