//! The one test client: an [`Agent`] speaks to `/_allauth/<client>/v1/` over
//! raw HTTP as an app or a browser would — the app keeps the session token
//! the server hands out, the browser keeps its cookies (session, CSRF and
//! any other the server sets or deletes) and sends the CSRF header.

use std::collections::BTreeMap;

use allauth_api::types;
use serde_json::Value;

use super::{raw, response_cookie_values, RawRequest, TestServer};

/// Both clients, in the order tests run them.
pub const CLIENTS: [&str; 2] = ["app", "browser"];

/// The CSRF value a browser agent starts with (cookie `csrftoken` and
/// header `X-CSRFToken`), until the server sets another.
pub const CSRF: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";

/// One client's conversation with the server.
#[derive(Clone)]
pub struct Agent {
    base: String,
    pub client: &'static str,
    /// The app's session token, or the browser's `sessionid` cookie.
    pub token: Option<String>,
    /// The browser's other cookies (`csrftoken` among them).
    cookies: BTreeMap<String, String>,
}

impl Agent {
    pub fn new(server: &TestServer, client: &'static str) -> Agent {
        assert!(CLIENTS.contains(&client), "client {client}");
        Agent {
            base: server.base.clone(),
            client,
            token: None,
            cookies: BTreeMap::from([("csrftoken".to_string(), CSRF.to_string())]),
        }
    }

    pub fn with_token(server: &TestServer, client: &'static str, token: &str) -> Agent {
        Agent {
            token: Some(token.to_string()),
            ..Agent::new(server, client)
        }
    }

    /// This browser agent with the cookie `name=value` as well.
    pub fn with_cookie(mut self, name: &str, value: &str) -> Agent {
        self.cookies.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Sends a request to `/_allauth/<client>/v1/<path>`; the status and
    /// the body, whose envelope must repeat the status.
    pub async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(method, path, body, &[]).await
    }

    /// [`Agent::call`] with extra request headers.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = self
            .request(method, path, body, headers)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let set = response_cookie_values(&response);
        let body: Value = response.json().await.expect("json body");
        assert_eq!(body["status"], status, "envelope status: {body}");
        if self.client == "app" {
            if let Some(token) = body["meta"]["session_token"].as_str() {
                self.token = Some(token.to_string());
            }
        } else {
            assert!(
                body["meta"]["session_token"].is_null(),
                "a browser is never shown a session token: {body}"
            );
            self.absorb(set);
        }
        (status, body)
    }

    /// Keeps (or forgets) the cookies a browser was sent.
    fn absorb(&mut self, set: Vec<(String, Option<String>)>) {
        for (name, value) in set {
            let value = value.filter(|v| !v.is_empty() && v != "\"\"");
            if name == "sessionid" {
                self.token = value;
            } else if let Some(value) = value {
                self.cookies.insert(name, value);
            } else {
                self.cookies.remove(&name);
            }
        }
    }

    fn cookie_header(&self) -> String {
        let mut cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(token) = &self.token {
            cookies.push(format!("sessionid={token}"));
        }
        cookies.join("; ")
    }

    /// The browser's CSRF cookie.
    pub fn csrf(&self) -> Option<String> {
        self.cookies.get("csrftoken").cloned()
    }

    /// A browser's plain HTML form post to `/_allauth/browser/v1/<path>`
    /// (no CSRF header: the form carries the token if `fields` do); the
    /// status and the `Location`.
    pub async fn form_post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, Option<String>) {
        let url = format!("{}/_allauth/{}/v1/{path}", self.base, self.client);
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = raw()
            .post(url)
            .header("Cookie", self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.follow_one(request).await
    }

    /// A form post to `url` made from another site (a provider's
    /// `form_post`): the browser's `SameSite=Lax` cookies stay home. The
    /// status and the `Location`; cookies it sets are kept.
    pub async fn cross_site_post(
        &mut self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> (u16, Option<String>) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = raw()
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.follow_one(request).await
    }

    /// A browser's GET of `url` (a page of this server, with the cookies);
    /// the status and the `Location`, not followed.
    pub async fn visit(&mut self, url: &str) -> (u16, Option<String>) {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let request = raw().get(url).header("Cookie", self.cookie_header());
        self.follow_one(request).await
    }

    /// [`Agent::visit`], with the page's text.
    pub async fn page(&mut self, url: &str) -> (u16, String) {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let response = raw()
            .get(url)
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        self.absorb(response_cookie_values(&response));
        (status, response.text().await.expect("text"))
    }

    async fn follow_one(&mut self, request: RawRequest) -> (u16, Option<String>) {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.absorb(response_cookie_values(&response));
        (status, location)
    }

    /// The request [`Agent::send`] sends, with this agent's session (token,
    /// or cookies and the CSRF header), not yet sent — for tests that fire
    /// many at once.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> RawRequest {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let url = format!("{}/_allauth/{}/v1/{path}", self.base, self.client);
        let mut request = raw().request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if self.client == "app" {
            if let Some(token) = &self.token {
                request = request.header("X-Session-Token", token);
            }
        } else {
            request = request.header("Cookie", self.cookie_header());
            if let Some(csrf) = self.cookies.get("csrftoken") {
                request = request.header("X-CSRFToken", csrf);
            }
        }
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        request
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.send("GET", path, None, headers).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(body), &[]).await
    }

    pub async fn delete(&mut self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send("DELETE", path, body, &[]).await
    }
}

/// The generated client's name for `"app"` or `"browser"`.
pub fn kind(client: &str) -> types::Client {
    if client == "app" {
        types::Client::App
    } else {
        types::Client::Browser
    }
}
