//! The fake GitHub the social-login tests log in through, checked on its
//! own: the web flow from authorize to the API, single-use codes, client
//! credentials, PKCE, denial and the API's token check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::harness::{FakeGithub, GITHUB_CLIENT_ID, GITHUB_SECRET};

const CALLBACK: &str = "https://app.example.com/accounts/github/login/callback/?next=%2Fhome";

fn octocat() -> Value {
    json!({
        "id": 583231,
        "login": "octocat",
        "name": "The Octocat",
        "email": null,
        "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
        "html_url": "https://github.com/octocat"
    })
}

fn octocat_emails() -> Value {
    json!([
        {"email": "octocat@github.com", "primary": true, "verified": true, "visibility": "public"}
    ])
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("allauth-server-tests")
        .build()
        .unwrap()
}

fn authorization_url(github: &FakeGithub, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/login/oauth/authorize", github.base())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", GITHUB_CLIENT_ID)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "read:user user:email")
        .append_pair("state", "st4te")
        .extend_pairs(extra);
    url.to_string()
}

/// The query of a redirect Location, as pairs in order.
fn query_of(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    query_of(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// Posts the token exchange (credentials in the form) and returns the JSON answer.
async fn exchange(github: &FakeGithub, fields: &[(&str, &str)]) -> Value {
    let response = client()
        .post(format!("{}/login/oauth/access_token", github.base()))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn api(github: &FakeGithub, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = client().get(format!("{}{path}", github.base()));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn fake_github_web_flow_reaches_the_user_and_emails() {
    let github = FakeGithub::start(octocat(), octocat_emails()).await;
    let location = github.authorize(&authorization_url(&github, &[])).await;
    assert!(location.starts_with("https://app.example.com/accounts/github/login/callback/?"));
    let query = query_of(&location);
    assert_eq!(query[0], ("next".to_string(), "/home".to_string()));
    assert_eq!(param(&location, "state").as_deref(), Some("st4te"));
    let code = param(&location, "code").unwrap();

    let token = exchange(
        &github,
        &[
            ("client_id", GITHUB_CLIENT_ID),
            ("client_secret", GITHUB_SECRET),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
    )
    .await;
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["scope"], "read:user,user:email");
    let access = token["access_token"].as_str().unwrap();
    assert!(access.starts_with("gho_"));

    let (status, user) = api(&github, "/user", Some(&format!("Bearer {access}"))).await;
    assert_eq!((status, user), (200, octocat()));
    let (status, emails) = api(&github, "/user/emails", Some(&format!("token {access}"))).await;
    assert_eq!((status, emails), (200, octocat_emails()));

    // The identity can change between logins.
    github.set_user(json!({"id": 1, "login": "other"}));
    github.set_emails(json!([]));
    let (_, user) = api(&github, "/user", Some(&format!("token {access}"))).await;
    assert_eq!(user["login"], "other");
    let (_, emails) = api(&github, "/user/emails", Some(&format!("token {access}"))).await;
    assert_eq!(emails, json!([]));

    let requests = github.requests();
    assert!(requests[0].starts_with("GET /login/oauth/authorize?client_id=github-client&"));
    assert_eq!(requests[1], "POST /login/oauth/access_token");
    assert_eq!(requests[2], "GET /user");
    assert_eq!(requests[3], "GET /user/emails");
}

#[tokio::test]
async fn fake_github_code_is_single_use() {
    let github = FakeGithub::start(octocat(), octocat_emails()).await;
    let location = github.authorize(&authorization_url(&github, &[])).await;
    let code = param(&location, "code").unwrap();
    let fields = [
        ("client_id", GITHUB_CLIENT_ID),
        ("client_secret", GITHUB_SECRET),
        ("code", code.as_str()),
    ];
    assert!(exchange(&github, &fields).await["access_token"].is_string());
    let again = exchange(&github, &fields).await;
    assert_eq!(again["error"], "bad_verification_code");
    assert!(again.get("access_token").is_none());

    let unknown = exchange(
        &github,
        &[
            ("client_id", GITHUB_CLIENT_ID),
            ("client_secret", GITHUB_SECRET),
            ("code", "0123456789abcdef0123"),
        ],
    )
    .await;
    assert_eq!(unknown["error"], "bad_verification_code");
}

#[tokio::test]
async fn fake_github_checks_client_credentials_in_form_or_basic_auth() {
    let github = FakeGithub::start(octocat(), octocat_emails()).await;
    let location = github.authorize(&authorization_url(&github, &[])).await;
    let code = param(&location, "code").unwrap();

    let wrong = exchange(
        &github,
        &[
            ("client_id", GITHUB_CLIENT_ID),
            ("client_secret", "not-the-secret"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(wrong["error"], "incorrect_client_credentials");
    assert!(wrong.get("access_token").is_none());

    // The code survives a refused client; Basic auth works too, and without
    // `Accept: application/json` the answer is form-encoded.
    let response = client()
        .post(format!("{}/login/oauth/access_token", github.base()))
        .basic_auth(GITHUB_CLIENT_ID, Some(GITHUB_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    let text = response.text().await.unwrap();
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect();
    let token = fields
        .iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(token.starts_with("gho_"));
    assert!(fields.contains(&("token_type".to_string(), "bearer".to_string())));
}

#[tokio::test]
async fn fake_github_checks_the_pkce_verifier() {
    let github = FakeGithub::start(octocat(), octocat_emails()).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    let location = github.authorize(&authorization_url(&github, &pkce)).await;
    let code = param(&location, "code").unwrap();
    let wrong = exchange(
        &github,
        &[
            ("client_id", GITHUB_CLIENT_ID),
            ("client_secret", GITHUB_SECRET),
            ("code", &code),
            (
                "code_verifier",
                "not-the-verifier-not-the-verifier-not-the-v",
            ),
        ],
    )
    .await;
    assert_eq!(wrong["error"], "bad_verification_code");

    let location = github.authorize(&authorization_url(&github, &pkce)).await;
    let code = param(&location, "code").unwrap();
    let missing = exchange(
        &github,
        &[
            ("client_id", GITHUB_CLIENT_ID),
            ("client_secret", GITHUB_SECRET),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(missing["error"], "bad_verification_code");

    let location = github.authorize(&authorization_url(&github, &pkce)).await;
    let code = param(&location, "code").unwrap();
    let right = exchange(
        &github,
        &[
            ("client_id", GITHUB_CLIENT_ID),
            ("client_secret", GITHUB_SECRET),
            ("code", &code),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert!(right["access_token"].as_str().unwrap().starts_with("gho_"));
}

#[tokio::test]
async fn fake_github_denial_and_bad_client_redirect_with_errors() {
    let github = FakeGithub::start(octocat(), octocat_emails()).await;
    let location = github.deny(&authorization_url(&github, &[])).await;
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert!(param(&location, "error_description").is_some());
    assert_eq!(param(&location, "state").as_deref(), Some("st4te"));
    assert!(param(&location, "code").is_none());

    let mut url = url::Url::parse(&authorization_url(&github, &[])).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "client_id" {
                (k, "someone-else".to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let location = github.authorize(url.as_str()).await;
    assert_eq!(param(&location, "error").as_deref(), Some("invalid_client"));
    assert!(param(&location, "code").is_none());
}

#[tokio::test]
async fn fake_github_api_wants_an_issued_token() {
    let github = FakeGithub::start(octocat(), octocat_emails()).await;
    for authorization in [None, Some("token gho_made_up"), Some("Basic Zm9vOmJhcg==")] {
        for path in ["/user", "/user/emails"] {
            let (status, body) = api(&github, path, authorization).await;
            assert_eq!(status, 401);
            assert_eq!(body["message"], "Bad credentials");
        }
    }
    // Like GitHub's, the fake's API refuses requests without a User-Agent.
    let response = reqwest::Client::new()
        .get(format!("{}/user", github.base()))
        .header("authorization", "token gho_made_up")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}
