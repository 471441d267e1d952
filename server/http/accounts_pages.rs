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

use crate::app::security::sealed;
use crate::app::social::redirect::{self, DummyPage};
use crate::app::Error;
use crate::http::{cookies, error_reply, Call, Early, ServerContext};

/// Which page a path names.
enum Page {
    Callback(String),
    /// Apple's callback after its form post (`…/callback/finish/`).
    AppleFinish,
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
        ["apple", "login", "callback", "finish"] => Some(Page::AppleFinish),
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
    let mut query = query_of(&rqctx);
    let deps = call.ctx.deps(call.now_ms, &call.ip, &call.user_agent);
    match page {
        Page::Callback(provider_id) => {
            let origin = call.own_origin();
            let location =
                redirect::callback(&deps, &mut call.session, &origin, &provider_id, &query).await;
            into_response(call.finish_redirect(location).await)
        }
        Page::AppleFinish => {
            // What Apple posted, from the cookie the post set (used once).
            let posted = cookies::request_cookie(rqctx.request.headers(), cookies::APPLE_COOKIE)
                .and_then(|v| sealed::open(deps.secret(), APPLE_PURPOSE, &v))
                .and_then(|json| serde_json::from_str::<Map<String, Value>>(&json).ok())
                .unwrap_or_default();
            for (key, value) in posted {
                query.entry(key).or_insert(value);
            }
            let origin = call.own_origin();
            let https = origin.starts_with("https:");
            let location =
                redirect::callback(&deps, &mut call.session, &origin, "apple", &query).await;
            let mut response = into_response(call.finish_redirect(location).await)?;
            cookies::set_apple_cookie(response.headers_mut(), None, https);
            Ok(response)
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

/// What the Apple cookie is sealed for.
const APPLE_PURPOSE: &str = "apple-callback";

/// Form posts under `/accounts/`: only Apple's callback takes one. Apple
/// posts cross-site, so the session cookie does not come with it (allauth's
/// `apple_post_callback`): `user` and `id_token` are kept in a short-lived
/// sealed cookie and the browser goes on to `…/callback/finish/` with
/// `code`, `state` and `error`, where its session cookie is sent.
pub async fn accounts_form(
    rqctx: RequestContext<ServerContext>,
    path: dropshot::Path<AccountsPathParam>,
    body: dropshot::UntypedBody,
) -> Result<Response<Body>, ApiError> {
    let ctx = rqctx.context();
    let segments = path.into_inner().rest;
    let is_apple = matches!(
        page(&segments),
        Some(Page::Callback(ref id)) if id == "apple"
    );
    let configured = ctx.config.socialaccount.enabled
        && crate::app::social::providers::list(&ctx.config)
            .iter()
            .any(|p| p.sub_id == "apple");
    if !is_apple || !configured {
        let headers = crate::http::response_headers(ctx, rqctx.request.headers());
        return Ok(error_reply::<Early>(Error::NotFound, headers).into_response());
    }
    let mut to_query = Vec::new();
    let mut kept = Map::new();
    for (key, value) in url::form_urlencoded::parse(body.as_bytes()) {
        match key.as_ref() {
            "code" | "state" | "error" if !value.is_empty() => {
                to_query.push((key.into_owned(), value.into_owned()))
            }
            "user" | "id_token" => {
                kept.insert(key.into_owned(), Value::String(value.into_owned()));
            }
            _ => {}
        }
    }
    let secret = ctx
        .config
        .server
        .secret_key
        .as_ref()
        .map_or("", |s| s.expose());
    let https = crate::http::client::is_secure(rqctx.request.headers(), &ctx.config);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&to_query)
        .finish();
    let mut response = into_response(Redirect::to(format!(
        "/accounts/apple/login/callback/finish/?{query}"
    )))?;
    let sealed_value = sealed::seal(secret, APPLE_PURPOSE, &Value::Object(kept).to_string());
    cookies::set_apple_cookie(response.headers_mut(), Some(&sealed_value), https);
    Ok(response)
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
