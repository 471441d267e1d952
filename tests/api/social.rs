//! Social login (`Authentication: Providers`, `Account: Providers`) on both
//! databases: the dummy provider through its page (redirect) and its JSON
//! ID token (token flow, both clients); a real OpenID provider
//! (`oidc-provider` on loopback) through the whole authorization-code flow
//! and with its ID tokens; a fake GitHub (plain OAuth2 with the emails
//! API); provider signup, connect, disconnect, email authentication, and
//! simultaneous first logins of one account.

use allauth_server::config::{
    AppConfig, AppSettings, Config, EmailVerification, ProviderSettings, SignupField,
    SignupFieldName,
};
use serde_json::{json, Value};

use crate::harness::{
    mails, now_secs, on_each_backend, on_each_backend_and_client, sign_id_token,
    sign_with_foreign_key, user, Agent, FakeApple, FakeGithub, OidcClient, OidcProvider,
    TestServer, APPLE_CLIENT_ID, APPLE_KEY_ID, APPLE_PRIVATE_KEY, APPLE_TEAM_ID, CSRF,
    GITHUB_CLIENT_ID, GITHUB_SECRET,
};

const PASSWORD: &str = "a sturdy passphrase 42";

fn with_dummy(config: &mut Config) {
    config
        .socialaccount
        .providers
        .insert("dummy".into(), ProviderSettings::default());
}

/// The dummy provider's "ID token": the identity as JSON.
fn dummy_token(id: i64, email: Option<&str>, verified: bool) -> Value {
    let mut identity = json!({"id": id, "email_verified": verified});
    if let Some(email) = email {
        identity["email"] = json!(email);
    }
    json!({"id_token": identity.to_string()})
}

async fn token_login(
    agent: &mut Agent,
    provider: &str,
    process: &str,
    token: Value,
) -> (u16, Value) {
    agent
        .post(
            "auth/provider/token",
            json!({"provider": provider, "process": process, "token": token}),
        )
        .await
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn count(server: &TestServer, sql_table: &'static str) -> i64 {
    let db = server.server.context().db.clone();
    db.run(move |conn| {
        use allauth_server::db::schema::{social_accounts, users};
        use diesel::dsl::count_star;
        use diesel::prelude::*;
        Ok(match sql_table {
            "users" => users::table.select(count_star()).first::<i64>(conn)?,
            _ => social_accounts::table
                .select(count_star())
                .first::<i64>(conn)?,
        })
    })
    .await
    .expect("count")
}

#[tokio::test]
async fn config_and_flows_list_the_providers_each_client_can_use() {
    on_each_backend(with_dummy, |server| async move {
        for client in ["app", "browser"] {
            let mut agent = Agent::new(&server, client);
            let (_, config) = agent.get("config", &[]).await;
            assert_eq!(
                config["data"]["socialaccount"]["providers"],
                json!([{"id": "dummy", "name": "Dummy", "flows": ["provider_redirect", "provider_token"]}]),
                "{client}"
            );
            let (status, session) = agent.get("auth/session", &[]).await;
            assert_eq!(status, 401);
            let ids: Vec<&str> = session["data"]["flows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap())
                .collect();
            let expected: Vec<&str> = if client == "browser" {
                vec!["login", "signup", "provider_redirect", "provider_token"]
            } else {
                vec!["login", "signup", "provider_token"]
            };
            assert_eq!(ids, expected, "{client}");
            let token_flow = session["data"]["flows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == "provider_token")
                .unwrap();
            assert_eq!(token_flow["providers"], json!(["dummy"]));
        }
        server
    })
    .await;
}

#[tokio::test]
async fn dummy_token_login_signs_up_then_logs_in_the_same_user() {
    on_each_backend_and_client(with_dummy, async |server, client| {
        let mut agent = Agent::new(server, client);
        let uid = 1000 + i64::from(client == "browser");
        let email = format!("dummy-{client}@example.com");
        let (status, body) = token_login(
            &mut agent,
            "dummy",
            "login",
            dummy_token(uid, Some(&email), true),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["email"], email);
        assert_eq!(body["data"]["user"]["has_usable_password"], false);
        let method = &body["data"]["methods"][0];
        assert_eq!(method["method"], "socialaccount");
        assert_eq!(method["provider"], "dummy");
        assert_eq!(method["uid"], uid.to_string());
        let first = body["data"]["user"]["id"].as_i64().unwrap();
        let (status, list) = agent.get("account/providers", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(list["data"][0]["uid"], uid.to_string());
        assert_eq!(list["data"][0]["display"], email);
        assert_eq!(list["data"][0]["provider"]["id"], "dummy");
        let (_, emails) = agent.get("account/email", &[]).await;
        assert_eq!(emails["data"][0]["verified"], true);

        let mut again = Agent::new(server, client);
        let (status, body) = token_login(
            &mut again,
            "dummy",
            "login",
            dummy_token(uid, Some(&email), true),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["id"], first);
    })
    .await;
}

#[tokio::test]
async fn token_input_errors_in_allauths_order() {
    on_each_backend_and_client(with_dummy, async |server, client| {
        let mut agent = Agent::new(server, client);
        let cases = [
            (json!({"provider": "dummy", "process": "login", "token": {}}), "required", "token"),
            (json!({"provider": "dummy", "process": "login", "token": "x"}), "invalid_token", "token"),
            (
                json!({"provider": "dummy", "process": "login", "token": {"client_id": "x"}}),
                "token_required",
                "token",
            ),
            (
                json!({"provider": "dummy", "process": "login", "token": {"id_token": "not json"}}),
                "invalid_token",
                "token",
            ),
            (
                json!({"provider": "dummy", "process": "login", "token": {"id_token": "{\"id\": \"x\"}"}}),
                "invalid_token",
                "token",
            ),
            (
                json!({"provider": "nowhere", "process": "login", "token": {"id_token": "x"}}),
                "client_id_required",
                "token",
            ),
            (
                json!({"provider": "nowhere", "process": "login", "token": {"client_id": "c", "id_token": "x"}}),
                "invalid_token",
                "token",
            ),
        ];
        for (input, code, param) in cases {
            let (status, body) = agent.post("auth/provider/token", input.clone()).await;
            assert_eq!(status, 400, "{input} {body}");
            assert_eq!(body["errors"][0]["code"], code, "{input} {body}");
            assert_eq!(body["errors"][0]["param"], param, "{input}");
        }
        let (status, _) = agent.get("auth/session", &[]).await;
        assert_eq!(status, 401);
    })
    .await;
}

#[tokio::test]
async fn missing_details_wait_in_provider_signup() {
    on_each_backend_and_client(
        |config| {
            with_dummy(config);
            config.socialaccount.auto_signup = false;
        },
        async |server, client| {
            let mut agent = Agent::new(server, client);
            let uid = 2000 + i64::from(client == "browser");
            let (status, body) =
                token_login(&mut agent, "dummy", "login", dummy_token(uid, None, false)).await;
            assert_eq!(status, 401, "{body}");
            let pending = body["data"]["flows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == "provider_signup")
                .cloned()
                .expect("provider_signup flow");
            assert_eq!(pending["is_pending"], true);
            assert_eq!(pending["provider"]["id"], "dummy");
            let (status, info) = agent.get("auth/provider/signup", &[]).await;
            assert_eq!(status, 200, "{info}");
            assert_eq!(info["data"]["account"]["uid"], uid.to_string());
            assert_eq!(info["data"]["user"]["has_usable_password"], false);
            assert!(info["data"]["user"].get("id").is_none());

            let taken = format!("taken-{client}@example.com");
            user(
                server,
                &format!("owner{client}"),
                &taken,
                true,
                Some(PASSWORD),
            )
            .await;
            let (status, body) = agent
                .post(
                    "auth/provider/signup",
                    json!({"email": taken, "username": format!("new{client}")}),
                )
                .await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["errors"][0]["code"], "email_taken");
            assert_eq!(body["errors"][0]["param"], "email");
            let (status, body) = agent
                .post(
                    "auth/provider/signup",
                    json!({"email": "not an address", "username": format!("new{client}")}),
                )
                .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "invalid");

            let fresh = format!("fresh-{client}@example.com");
            let (status, body) = agent
                .post(
                    "auth/provider/signup",
                    json!({"email": fresh, "username": format!("new{client}")}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["email"], fresh);
            assert_eq!(body["data"]["user"]["username"], format!("new{client}"));
            assert_eq!(body["data"]["methods"][0]["method"], "socialaccount");
            // The stage is over.
            let (status, _) = agent.get("auth/provider/signup", &[]).await;
            assert_eq!(status, 409);
        },
    )
    .await;
}

#[tokio::test]
async fn a_taken_address_asks_and_mandatory_verification_follows() {
    on_each_backend_and_client(
        |config| {
            with_dummy(config);
            config.account.signup_fields = vec![
                SignupField {
                    name: SignupFieldName::Email,
                    required: true,
                },
                SignupField {
                    name: SignupFieldName::Username,
                    required: true,
                },
                SignupField {
                    name: SignupFieldName::Password1,
                    required: true,
                },
            ];
            config.account.email_verification = EmailVerification::Mandatory;
        },
        async |server, client| {
            let taken = format!("owned-{client}@example.com");
            user(
                server,
                &format!("owned{client}"),
                &taken,
                true,
                Some(PASSWORD),
            )
            .await;
            let mut agent = Agent::new(server, client);
            let uid = 3000 + 10 * i64::from(client == "browser");
            // Verified by the provider, but email authentication is off:
            // no login into the owner's account, and enumeration prevention
            // answers as for a new account (the owner is told by mail).
            let (status, body) = token_login(
                &mut agent,
                "dummy",
                "login",
                dummy_token(uid, Some(&taken), true),
            )
            .await;
            assert_eq!(status, 401, "{body}");
            assert!(
                body["data"]["flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["id"] == "verify_email" && f["is_pending"] == true),
                "{body}"
            );
            let sent = mails(server).await;
            assert!(sent.iter().any(|(to, _, _)| to == &taken), "{sent:?}");

            // No address from the provider, one is required: asked for.
            let mut agent = Agent::new(server, client);
            let (status, body) = token_login(
                &mut agent,
                "dummy",
                "login",
                dummy_token(uid + 1, None, false),
            )
            .await;
            assert_eq!(status, 401, "{body}");
            assert!(
                body["data"]["flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["id"] == "provider_signup" && f["is_pending"] == true),
                "{body}"
            );
            let (status, body) = agent
                .post(
                    "auth/provider/signup",
                    json!({"username": format!("u{uid}")}),
                )
                .await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["errors"][0]["code"], "required");
            assert_eq!(body["errors"][0]["param"], "email");
            let other = format!("other-{client}@example.com");
            let (status, body) = agent
                .post(
                    "auth/provider/signup",
                    json!({"email": other, "username": format!("u{uid}")}),
                )
                .await;
            // Typed, not vouched for by the provider: to be verified.
            assert_eq!(status, 401, "{body}");
            assert!(
                body["data"]["flows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["id"] == "verify_email" && f["is_pending"] == true),
                "{body}"
            );
            let sent = mails(server).await;
            assert!(sent.iter().any(|(to, _, _)| to == &other), "{sent:?}");
        },
    )
    .await;
}

#[tokio::test]
async fn email_authentication_logs_into_the_owner_only_with_a_verified_address() {
    on_each_backend_and_client(
        |config| {
            with_dummy(config);
            config.socialaccount.email_authentication = true;
        },
        async |server, client| {
            let email = format!("owner-{client}@example.com");
            let owner = user(
                server,
                &format!("owner{client}"),
                &email,
                true,
                Some(PASSWORD),
            )
            .await;
            let mut agent = Agent::new(server, client);
            let base = 4000 + 10 * i64::from(client == "browser");
            // Not vouched for by the provider: never the owner's account.
            let (status, body) = token_login(
                &mut agent,
                "dummy",
                "login",
                dummy_token(base, Some(&email), false),
            )
            .await;
            assert_ne!(status, 200, "{body}");
            let mut agent = Agent::new(server, client);
            let (status, body) = token_login(
                &mut agent,
                "dummy",
                "login",
                dummy_token(base + 1, Some(&email), true),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], owner);
            // Not connected (auto connect is off).
            let (_, list) = agent.get("account/providers", &[]).await;
            assert_eq!(list["data"], json!([]));
        },
    )
    .await;
}

#[tokio::test]
async fn connect_disconnect_and_their_refusals() {
    on_each_backend_and_client(with_dummy, async |server, client| {
        let name = format!("conn{client}");
        let email = format!("{name}@example.com");
        let me = user(server, &name, &email, true, Some(PASSWORD)).await;
        let mut agent = Agent::new(server, client);
        let (status, body) = agent
            .post(
                "auth/login",
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let uid = 5000 + i64::from(client == "browser");
        let (status, body) = token_login(
            &mut agent,
            "dummy",
            "connect",
            dummy_token(uid, None, false),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["id"], me);
        let (_, list) = agent.get("account/providers", &[]).await;
        assert_eq!(list["data"][0]["uid"], uid.to_string());

        // The same provider account for somebody else: refused.
        let other = format!("other{client}");
        user(
            server,
            &other,
            &format!("{other}@example.com"),
            true,
            Some(PASSWORD),
        )
        .await;
        let mut second = Agent::new(server, client);
        second
            .post(
                "auth/login",
                json!({"username": other, "password": PASSWORD}),
            )
            .await;
        let (status, body) = token_login(
            &mut second,
            "dummy",
            "connect",
            dummy_token(uid, None, false),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["code"], "connected_other");

        // Anonymous connect: refused.
        let mut anonymous = Agent::new(server, client);
        let (status, _) = token_login(
            &mut anonymous,
            "dummy",
            "connect",
            dummy_token(uid + 100, None, false),
        )
        .await;
        assert_eq!(status, 403);

        let (status, body) = agent
            .delete(
                "account/providers",
                Some(json!({"provider": "dummy", "account": "nope"})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["code"], "account_not_found");
        let (status, body) = agent
            .delete(
                "account/providers",
                Some(json!({"provider": "dummy", "account": uid.to_string()})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"], json!([]));

        // A provider-only account cannot drop its last way in.
        let mut social = Agent::new(server, client);
        let uid2 = uid + 200;
        let (status, body) = token_login(
            &mut social,
            "dummy",
            "login",
            dummy_token(uid2, None, false),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = social
            .delete(
                "account/providers",
                Some(json!({"provider": "dummy", "account": uid2.to_string()})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["code"], "no_password");
        assert!(body["errors"][0].get("param").is_none());
        let (status, _) = social.get("account/providers", &[]).await;
        assert_eq!(status, 200);
    })
    .await;
}

#[tokio::test]
async fn simultaneous_first_logins_make_one_account() {
    on_each_backend(with_dummy, |server| async move {
        let token = dummy_token(6000, Some("race@example.com"), true);
        let before = count(&server, "users").await;
        let requests: Vec<_> = (0..8)
            .map(|_| {
                Agent::new(&server, "app")
                    .request(
                        "POST",
                        "auth/provider/token",
                        Some(json!({"provider": "dummy", "process": "login", "token": token})),
                        &[],
                    )
                    .send()
            })
            .collect();
        let mut users = Vec::new();
        for response in futures_join(requests).await {
            let response = response.expect("request");
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, 200, "{body}");
            users.push(body["data"]["user"]["id"].as_i64().unwrap());
        }
        users.dedup();
        assert_eq!(users.len(), 1, "{users:?}");
        assert_eq!(count(&server, "users").await, before + 1);
        assert_eq!(count(&server, "social_accounts").await, 1);
        server
    })
    .await;
}

async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

/// The browser's form post to `auth/provider/redirect`.
async fn redirect_start(
    agent: &mut Agent,
    provider: &str,
    callback: &str,
    process: &str,
) -> String {
    let csrf = agent.csrf().unwrap_or_else(|| CSRF.to_string());
    let (status, location) = agent
        .form_post(
            "auth/provider/redirect",
            &[
                ("provider", provider),
                ("callback_url", callback),
                ("process", process),
                ("csrfmiddlewaretoken", &csrf),
            ],
        )
        .await;
    assert_eq!(status, 302);
    location.expect("Location")
}

#[tokio::test]
async fn dummy_redirect_through_its_page() {
    on_each_backend(with_dummy, |server| async move {
        let mut browser = Agent::new(&server, "browser");
        let page = redirect_start(&mut browser, "dummy", "/after", "login").await;
        assert!(
            page.starts_with("/accounts/dummy/authenticate/?state="),
            "{page}"
        );
        let (status, html) = browser.page(&page).await;
        assert_eq!(status, 200);
        assert!(html.contains("name=\"state\""), "{html}");
        let submit =
            format!("{page}&id=77&email=page%40example.com&email_verified=true&username=pager");
        let (status, location) = browser.visit(&submit).await;
        assert_eq!((status, location.as_deref()), (302, Some("/after")));
        let (status, session) = browser.get("auth/session", &[]).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["data"]["user"]["username"], "pager");
        // The state was used: the same page again is an error.
        let (status, location) = browser.visit(&submit).await;
        assert_eq!(status, 302);
        assert_eq!(
            query_param(location.as_deref().unwrap(), "error").as_deref(),
            Some("unknown")
        );

        // Cancel.
        let mut other = Agent::new(&server, "browser");
        let page = redirect_start(&mut other, "dummy", "/after?x=1", "login").await;
        let (_, location) = other.visit(&format!("{page}&action=cancel")).await;
        let location = location.unwrap();
        assert!(location.starts_with("/after?x=1&"), "{location}");
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("cancelled")
        );
        assert_eq!(
            query_param(&location, "error_process").as_deref(),
            Some("login")
        );

        // No open redirect, no unknown provider, no form without its CSRF token.
        let mut third = Agent::new(&server, "browser");
        for (provider, callback) in [
            ("dummy", "https://evil.example/x"),
            ("dummy", "//evil.example/x"),
            ("nope", "/after"),
        ] {
            let location = redirect_start(&mut third, provider, callback, "login").await;
            assert_eq!(
                location, "/?error=unknown&error_process=login",
                "{provider} {callback}"
            );
        }
        let (status, _) = third
            .form_post(
                "auth/provider/redirect",
                &[
                    ("provider", "dummy"),
                    ("callback_url", "/after"),
                    ("process", "login"),
                ],
            )
            .await;
        assert_eq!(status, 403);
        server
    })
    .await;
}

/// A server with the OpenID provider `idp` as `openid_connect` app "test".
pub(crate) fn with_oidc(idp_discovery: String) -> impl Fn(&mut Config) {
    move |config: &mut Config| {
        let settings = ProviderSettings {
            apps: vec![AppConfig {
                provider_id: Some("test".into()),
                name: Some("Test IdP".into()),
                client_id: "server-client".into(),
                secret: Some("server-secret".to_string().into()),
                settings: AppSettings {
                    server_url: Some(idp_discovery.clone()),
                    ..AppSettings::default()
                },
                ..AppConfig::default()
            }],
            ..ProviderSettings::default()
        };
        config
            .socialaccount
            .providers
            .insert("openid_connect".into(), settings);
    }
}

#[tokio::test]
async fn openid_connect_code_flow_with_a_real_provider() {
    let idp = OidcProvider::start(&[]).await;
    let oidc = with_oidc(idp.discovery_url());
    let configure = move |config: &mut Config| {
        oidc(config);
        config.socialaccount.store_tokens = true;
    };
    on_each_backend(&configure, |server| {
        let idp = &idp;
        async move {
            idp.add_client(&OidcClient::new(
                "server-client",
                "server-secret",
                server.url("/accounts/oidc/test/login/callback/"),
            ))
            .await;
            let mut browser = Agent::new(&server, "browser");
            let (_, config) = browser.get("config", &[]).await;
            assert_eq!(
                config["data"]["socialaccount"]["providers"][0]["openid_configuration_url"],
                idp.discovery_url()
            );
            let authorize = redirect_start(&mut browser, "test", "/done", "login").await;
            assert!(authorize.starts_with(idp.issuer()), "{authorize}");
            assert!(query_param(&authorize, "nonce").is_some());
            assert_eq!(
                query_param(&authorize, "code_challenge_method").as_deref(),
                Some("S256")
            );
            let callback = idp.authorize(&authorize, "alice@example.test").await;
            assert!(
                callback.starts_with(&server.url("/accounts/oidc/test/login/callback/")),
                "{callback}"
            );
            let (status, location) = browser.visit(&callback).await;
            assert_eq!((status, location.as_deref()), (302, Some("/done")));
            let (status, session) = browser.get("auth/session", &[]).await;
            assert_eq!(status, 200, "{session}");
            assert_eq!(session["data"]["user"]["email"], "alice@example.test");
            assert_eq!(session["data"]["methods"][0]["uid"], "alice@example.test");
            let (_, list) = browser.get("account/providers", &[]).await;
            assert_eq!(list["data"][0]["provider"]["name"], "Test IdP");
            // store_tokens: the access token is kept, sealed.
            let db = server.server.context().db.clone();
            let stored = db
                .run(|conn| {
                    use allauth_server::db::schema::social_tokens;
                    use diesel::prelude::*;
                    Ok(social_tokens::table
                        .select((social_tokens::client_id, social_tokens::token))
                        .load::<(String, String)>(conn)?)
                })
                .await
                .expect("tokens");
            assert_eq!(stored.len(), 1, "{stored:?}");
            assert_eq!(stored[0].0, "server-client");
            assert!(stored[0].1.starts_with("sealed:v1:"), "{stored:?}");
            // The callback replayed: its state is gone.
            let (_, location) = browser.visit(&callback).await;
            assert_eq!(
                query_param(location.as_deref().unwrap(), "error").as_deref(),
                Some("unknown")
            );

            // Denied consent.
            let mut second = Agent::new(&server, "browser");
            let authorize = redirect_start(&mut second, "test", "/done", "login").await;
            let denied = idp.deny(&authorize, "bob@example.test").await;
            let (_, location) = second.visit(&denied).await;
            assert_eq!(
                query_param(location.as_deref().unwrap(), "error").as_deref(),
                Some("cancelled")
            );
            // A state this browser never got.
            let mut third = Agent::new(&server, "browser");
            let forged = server.url("/accounts/oidc/test/login/callback/?state=forged&code=x");
            let (_, location) = third.visit(&forged).await;
            assert_eq!(
                location.as_deref(),
                Some("/?error=unknown&error_process=login")
            );
            let (status, _) = third.get("auth/session", &[]).await;
            assert_eq!(status, 401);
            server
        }
    })
    .await;
}

#[tokio::test]
async fn openid_connect_id_tokens_are_verified() {
    let idp = OidcProvider::start(&[]).await;
    let configure = with_oidc(idp.discovery_url());
    on_each_backend_and_client(&configure, async |server, client| {
        let registered = OidcClient::new("server-client", "server-secret", server.url("/cb"));
        idp.add_client(&registered).await;
        let login = format!("carol-{client}@example.test");
        let tokens = idp.tokens(&registered, &login, None).await;
        let id_token = tokens["id_token"].as_str().unwrap();
        let mut agent = Agent::new(server, client);
        let (status, body) = token_login(
            &mut agent,
            "test",
            "login",
            json!({"client_id": "server-client", "id_token": id_token}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["email"], login);

        let now = now_secs() as i64;
        let claims = |aud: &str, exp: i64| {
            json!({"iss": idp.issuer(), "sub": "mallory", "aud": aud, "exp": exp, "iat": now - 10, "email": "m@example.test", "email_verified": true})
        };
        let refused = [
            ("wrong audience", sign_id_token(&claims("someone-else", now + 300))),
            ("expired", sign_id_token(&claims("server-client", now - 3600))),
            ("foreign key", sign_with_foreign_key(&claims("server-client", now + 300))),
        ];
        for (what, token) in refused {
            let mut agent = Agent::new(server, client);
            let (status, body) = token_login(
                &mut agent,
                "test",
                "login",
                json!({"client_id": "server-client", "id_token": token}),
            )
            .await;
            assert_eq!(status, 400, "{what}: {body}");
            assert_eq!(body["errors"][0]["code"], "invalid_token", "{what}");
        }
        let good = sign_id_token(&claims("server-client", now + 300));
        let mut agent = Agent::new(server, client);
        let (status, body) = token_login(&mut agent, "test", "login", json!({"id_token": good})).await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["code"], "client_id_required");
        let (status, body) = token_login(
            &mut agent,
            "test",
            "login",
            json!({"client_id": "other-client", "id_token": good}),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["code"], "invalid_token");
        let (status, body) = token_login(
            &mut agent,
            "test",
            "login",
            json!({"client_id": "server-client", "id_token": good}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    })
    .await;
}

#[tokio::test]
async fn github_style_oauth2_with_the_emails_api() {
    let github = FakeGithub::start(
        json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": null}),
        json!([
            {"email": "octo-secondary@example.com", "primary": false, "verified": false, "visibility": null},
            {"email": "octocat@example.com", "primary": true, "verified": true, "visibility": "public"}
        ]),
    )
    .await;
    let base = github.base();
    let configure = move |config: &mut Config| {
        config.socialaccount.query_email = Some(true);
        config.socialaccount.providers.insert(
            "github".into(),
            ProviderSettings {
                authorize_url: Some(format!("{base}/login/oauth/authorize")),
                access_token_url: Some(format!("{base}/login/oauth/access_token")),
                profile_url: Some(format!("{base}/user")),
                emails_url: Some(format!("{base}/user/emails")),
                app: Some(AppConfig {
                    client_id: GITHUB_CLIENT_ID.into(),
                    secret: Some(GITHUB_SECRET.to_string().into()),
                    ..AppConfig::default()
                }),
                ..ProviderSettings::default()
            },
        );
    };
    on_each_backend(&configure, |server| {
        let github = &github;
        async move {
            let mut browser = Agent::new(&server, "browser");
            let (_, config) = browser.get("config", &[]).await;
            assert_eq!(
                config["data"]["socialaccount"]["providers"][0],
                json!({"id": "github", "name": "GitHub", "flows": ["provider_redirect"], "client_id": GITHUB_CLIENT_ID})
            );
            let authorize = redirect_start(&mut browser, "github", "/gh", "login").await;
            assert_eq!(query_param(&authorize, "scope").as_deref(), Some("user:email"));
            let callback = github.authorize(&authorize).await;
            let (status, location) = browser.visit(&callback).await;
            assert_eq!((status, location.as_deref()), (302, Some("/gh")));
            let (status, session) = browser.get("auth/session", &[]).await;
            assert_eq!(status, 200, "{session}");
            assert_eq!(session["data"]["user"]["username"], "octocat");
            assert_eq!(session["data"]["user"]["email"], "octocat@example.com");
            let (_, emails) = browser.get("account/email", &[]).await;
            let listed: Vec<(String, bool, bool)> = emails["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["email"].as_str().unwrap().to_string(), e["primary"].as_bool().unwrap(), e["verified"].as_bool().unwrap()))
                .collect();
            assert!(listed.contains(&("octocat@example.com".into(), true, true)), "{listed:?}");
            assert!(listed.contains(&("octo-secondary@example.com".into(), false, false)), "{listed:?}");
            let (_, list) = browser.get("account/providers", &[]).await;
            assert_eq!(list["data"][0]["uid"], "583231");
            assert_eq!(list["data"][0]["display"], "octocat");
            // Denied at GitHub.
            let mut other = Agent::new(&server, "browser");
            let authorize = redirect_start(&mut other, "github", "/gh", "login").await;
            let denied = github.deny(&authorize).await;
            let (_, location) = other.visit(&denied).await;
            assert_eq!(query_param(location.as_deref().unwrap(), "error").as_deref(), Some("cancelled"));
            // The app client cannot use it: no token flow.
            let mut app = Agent::new(&server, "app");
            let (status, body) = token_login(
                &mut app,
                "github",
                "login",
                json!({"client_id": GITHUB_CLIENT_ID, "access_token": "x"}),
            )
            .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "token_authentication_not_supported");
            assert_eq!(body["errors"][0]["param"], "provider");
            server
        }
    })
    .await;
}

/// The operations through the generated client (the document's types):
/// the app's token login waiting in `provider_signup`, its signup, the
/// listing and a refused disconnect; the browser's redirect.
#[tokio::test]
async fn every_operation_through_the_generated_client() {
    use allauth_api::client::Error as ClientError;
    use allauth_api::types;
    on_each_backend(
        |config| {
            with_dummy(config);
            config.socialaccount.auto_signup = false;
        },
        |server| async move {
            let client = server.client();
            let input = types::ProviderTokenInput {
                provider: types::ProviderId("dummy".into()),
                process: types::Process::Login,
                token: types::ProviderTokenCredentials {
                    access_token: None,
                    client_id: None,
                    id_token: Some(json!({"id": 9001, "username": "generated"}).to_string()),
                },
            };
            let pending = match client
                .provider_token_authenticate(types::Client::App, None, &input)
                .await
            {
                Err(ClientError::ErrorResponse(r)) => r.into_inner(),
                other => panic!("expected the provider_signup 401: {other:?}"),
            };
            assert_eq!(pending["status"], 401);
            let token = pending["meta"]["session_token"]
                .as_str()
                .expect("token")
                .to_string();
            let info = client
                .provider_signup_view(types::Client::App, Some(&token))
                .await
                .expect("pending signup")
                .into_inner();
            assert_eq!(info.data.account.uid.0, "9001");
            assert_eq!(
                info.data.user.username.as_ref().map(|u| u.0.as_str()),
                Some("generated")
            );
            let done = client
                .provider_signup_complete(
                    types::Client::App,
                    Some(&token),
                    &types::ProviderSignupInput {
                        email: Some(types::Email("generated@example.com".into())),
                        phone: None,
                        username: Some(types::Username("generated".into())),
                    },
                )
                .await
                .expect("signed up")
                .into_inner();
            assert_eq!(
                done.data.user.username.as_ref().map(|u| u.0.as_str()),
                Some("generated")
            );
            let token = done.meta.session_token.map(|t| t.0).unwrap_or(token);
            let listed = client
                .provider_account_list(types::Client::App, Some(&token))
                .await
                .expect("listed")
                .into_inner();
            assert_eq!(listed.data.len(), 1);
            let refused = client
                .provider_account_disconnect(
                    types::Client::App,
                    Some(&token),
                    &types::DisconnectProviderAccountInput {
                        account: types::ProviderAccountUid("9001".into()),
                        provider: types::ProviderId("dummy".into()),
                    },
                )
                .await;
            match refused {
                Err(ClientError::ErrorResponse(r)) => {
                    assert_eq!(r.status(), 400);
                    assert_eq!(r.into_inner()["errors"][0]["code"], "no_password");
                }
                other => panic!("expected no_password: {other:?}"),
            }

            // The browser's form post, with its CSRF cookie and header.
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("Cookie", format!("csrftoken={CSRF}").parse().unwrap());
            headers.insert("X-CSRFToken", CSRF.parse().unwrap());
            let http = reqwest::Client::builder()
                .default_headers(headers)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let browser = allauth_api::client::Client::new_with_client(&server.url(""), http);
            let answer = browser
                .provider_redirect_start(
                    types::BrowserClient::Browser,
                    None,
                    &types::ProviderRedirectInput {
                        callback_url: "/back".into(),
                        process: types::Process::Login,
                        provider: types::ProviderId("dummy".into()),
                    },
                )
                .await;
            let status = match answer {
                Ok(r) => r.status().as_u16(),
                Err(ClientError::UnexpectedResponse(r)) => r.status().as_u16(),
                Err(e) => e.status().map_or(0, |s| s.as_u16()),
            };
            assert_eq!(status, 302);
            server
        },
    )
    .await;
}

#[tokio::test]
async fn socialaccount_only_leaves_no_local_way_in() {
    on_each_backend(
        |config| {
            with_dummy(config);
            config.socialaccount.only = true;
        },
        |server| async move {
            let mut agent = Agent::new(&server, "app");
            let (status, body) = agent.get("auth/session", &[]).await;
            assert_eq!(status, 401);
            let ids: Vec<&str> = body["data"]["flows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, vec!["provider_token"]);
            let (status, _) = agent
                .post("auth/login", json!({"username": "x", "password": PASSWORD}))
                .await;
            assert_eq!(status, 404);
            let (status, _) =
                token_login(&mut agent, "dummy", "login", dummy_token(9100, None, false)).await;
            assert_eq!(status, 200);
            let (status, body) = agent
                .delete(
                    "account/providers",
                    Some(json!({"provider": "dummy", "account": "9100"})),
                )
                .await;
            assert_eq!(status, 400);
            assert_eq!(body["errors"][0]["code"], "disconnect_last");
            server
        },
    )
    .await;
}

#[tokio::test]
async fn connect_through_the_redirect_with_notices_and_reauthentication() {
    on_each_backend(
        |config| {
            with_dummy(config);
            config.account.email_notifications = true;
            config.account.reauthentication_required = true;
        },
        |server| async move {
            let email = "linker@example.com";
            user(&server, "linker", email, true, Some(PASSWORD)).await;
            let mut browser = Agent::new(&server, "browser");
            let (status, _) = browser
                .post(
                    "auth/login",
                    json!({"username": "linker", "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, 200);
            let page = redirect_start(&mut browser, "dummy", "/linked", "connect").await;
            let (status, location) = browser.visit(&format!("{page}&id=8100")).await;
            assert_eq!((status, location.as_deref()), (302, Some("/linked")));
            let (_, list) = browser.get("account/providers", &[]).await;
            assert_eq!(list["data"][0]["uid"], "8100");
            let sent = mails(&server).await;
            assert!(
                sent.iter()
                    .any(|(to, subject, _)| to == email && subject.contains("connected")),
                "{sent:?}"
            );
            let (status, body) = browser
                .delete(
                    "account/providers",
                    Some(json!({"provider": "dummy", "account": "8100"})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let sent = mails(&server).await;
            assert!(
                sent.iter()
                    .any(|(to, subject, _)| to == email && subject.contains("disconnected")),
                "{sent:?}"
            );

            // An anonymous browser cannot connect.
            let mut anonymous = Agent::new(&server, "browser");
            let page = redirect_start(&mut anonymous, "dummy", "/linked", "connect").await;
            let (_, location) = anonymous.visit(&format!("{page}&id=8101")).await;
            let location = location.unwrap();
            assert_eq!(
                query_param(&location, "error").as_deref(),
                Some("permission_denied")
            );
            assert_eq!(
                query_param(&location, "error_process").as_deref(),
                Some("connect")
            );
            server
        },
    )
    .await;
    // Too long since the last authentication: reauthenticate first.
    on_each_backend(
        |config| {
            with_dummy(config);
            config.account.reauthentication_required = true;
            config.account.reauthentication_timeout = 1;
        },
        |server| async move {
            user(&server, "stale", "stale@example.com", true, Some(PASSWORD)).await;
            let mut browser = Agent::new(&server, "browser");
            browser
                .post(
                    "auth/login",
                    json!({"username": "stale", "password": PASSWORD}),
                )
                .await;
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let page = redirect_start(&mut browser, "dummy", "/linked", "connect").await;
            let (_, location) = browser.visit(&format!("{page}&id=8200")).await;
            let location = location.unwrap();
            assert_eq!(
                query_param(&location, "error").as_deref(),
                Some("reauthentication_required"),
                "{location}"
            );
            let mut app = Agent::new(&server, "app");
            app.post(
                "auth/login",
                json!({"username": "stale", "password": PASSWORD}),
            )
            .await;
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let (status, body) =
                token_login(&mut app, "dummy", "connect", dummy_token(8201, None, false)).await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["meta"]["is_authenticated"], true);
            assert_eq!(body["data"]["flows"][0]["id"], "reauthenticate");
            server
        },
    )
    .await;
}

#[tokio::test]
async fn apple_form_post_callback_and_signed_client_secret() {
    let apple = FakeApple::start().await;
    let issuer = apple.base();
    let configure = move |config: &mut Config| {
        config.socialaccount.providers.insert(
            "apple".into(),
            ProviderSettings {
                app: Some(AppConfig {
                    client_id: APPLE_CLIENT_ID.into(),
                    secret: Some(APPLE_KEY_ID.to_string().into()),
                    key: APPLE_TEAM_ID.into(),
                    settings: AppSettings {
                        server_url: Some(issuer.clone()),
                        certificate_key: Some(APPLE_PRIVATE_KEY.to_string().into()),
                        ..AppSettings::default()
                    },
                    ..AppConfig::default()
                }),
                ..ProviderSettings::default()
            },
        );
    };
    on_each_backend(&configure, |server| {
        let apple = &apple;
        async move {
            let mut browser = Agent::new(&server, "browser");
            let authorize = redirect_start(&mut browser, "apple", "/apple-done", "login").await;
            assert!(authorize.starts_with(&format!("{}/auth/authorize?", apple.base())), "{authorize}");
            assert_eq!(query_param(&authorize, "response_mode").as_deref(), Some("form_post"));
            assert_eq!(query_param(&authorize, "response_type").as_deref(), Some("code id_token"));
            assert_eq!(query_param(&authorize, "client_id").as_deref(), Some(APPLE_CLIENT_ID));
            let redirect_uri = query_param(&authorize, "redirect_uri").unwrap();
            assert_eq!(redirect_uri, server.url("/accounts/apple/login/callback/"));
            let state = query_param(&authorize, "state").unwrap();
            // Apple posts back from its own site, with the name only this once.
            let code = apple.issue_code("001234.apple.sub", "ada@privaterelay.appleid.com");
            let user = json!({"name": {"firstName": "Ada", "lastName": "Lovelace"}, "email": "ada@privaterelay.appleid.com"}).to_string();
            let (status, finish) = browser
                .cross_site_post(&redirect_uri, &[("code", &code), ("state", &state), ("user", &user)])
                .await;
            assert_eq!(status, 302);
            let finish = finish.unwrap();
            assert!(finish.starts_with("/accounts/apple/login/callback/finish/?"), "{finish}");
            assert!(!finish.contains("Lovelace"), "the user's data stays out of the URL: {finish}");
            let (status, location) = browser.visit(&finish).await;
            assert_eq!((status, location.as_deref()), (302, Some("/apple-done")), "{:?}", apple.refused());
            let (status, session) = browser.get("auth/session", &[]).await;
            assert_eq!(status, 200, "{session}");
            assert_eq!(session["data"]["user"]["email"], "ada@privaterelay.appleid.com");
            assert_eq!(session["data"]["methods"][0]["uid"], "001234.apple.sub");
            let (_, list) = browser.get("account/providers", &[]).await;
            // A relay address is no name to show; the posted name is.
            assert_eq!(list["data"][0]["display"], "Ada Lovelace");
            assert!(apple.refused().is_empty(), "{:?}", apple.refused());

            // The app's token flow with an ID token Apple issued.
            let now = now_secs() as i64;
            let id_token = sign_id_token(&json!({
                "iss": apple.base(), "aud": APPLE_CLIENT_ID, "sub": "001234.apple.sub",
                "exp": now + 300, "iat": now, "email": "ada@privaterelay.appleid.com", "email_verified": "true"
            }));
            let mut app = Agent::new(&server, "app");
            let (status, body) = token_login(
                &mut app,
                "apple",
                "login",
                json!({"client_id": APPLE_CLIENT_ID, "id_token": id_token}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["methods"][0]["provider"], "apple");
            // Only Apple's callback takes a form post.
            let (status, _) = browser
                .cross_site_post(&server.url("/accounts/github/login/callback/"), &[("code", "x")])
                .await;
            assert_eq!(status, 404);
            server
        }
    })
    .await;
}

#[tokio::test]
async fn openid_connect_provider_signup_and_connect_by_redirect() {
    let idp = OidcProvider::start(&[]).await;
    let oidc = with_oidc(idp.discovery_url());
    let configure = move |config: &mut Config| {
        oidc(config);
        // An address is required: an identity without one must ask.
        config.socialaccount.email_required = Some(true);
    };
    on_each_backend(&configure, |server| {
        let idp = &idp;
        async move {
            idp.add_client(&OidcClient::new(
                "server-client",
                "server-secret",
                server.url("/accounts/oidc/test/login/callback/"),
            ))
            .await;
            let tag = format!("{:?}", server.backend).to_lowercase();
            // No email claim: the provider signup asks for one.
            let mut browser = Agent::new(&server, "browser");
            let authorize = redirect_start(&mut browser, "test", "/done", "login").await;
            let callback = idp.authorize(&authorize, &format!("nomail{tag}")).await;
            let (_, location) = browser.visit(&callback).await;
            assert_eq!(location.as_deref(), Some("/done"));
            let (status, session) = browser.get("auth/session", &[]).await;
            assert_eq!(status, 401);
            let pending = session["data"]["flows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == "provider_signup")
                .cloned()
                .expect("provider_signup");
            assert_eq!(pending["provider"]["id"], "test");
            let (_, info) = browser.get("auth/provider/signup", &[]).await;
            assert_eq!(info["data"]["account"]["uid"], format!("nomail{tag}"));
            assert_eq!(info["data"]["user"]["username"], format!("nomail{tag}"));
            let (status, body) = browser
                .post("auth/provider/signup", json!({"email": format!("typed-{tag}@example.com")}))
                .await;
            // A form like allauth's: the username field is required as in
            // the signup fields (the provider's only fills it in).
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["errors"][0]["param"], "username");
            let (status, body) = browser
                .post(
                    "auth/provider/signup",
                    json!({"email": format!("typed-{tag}@example.com"), "username": format!("nomail{tag}")}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["methods"][0]["provider"], "test");

            // A local user connects an identity of the provider.
            let name = format!("local{tag}");
            user(&server, &name, &format!("{name}@example.com"), true, Some(PASSWORD)).await;
            let mut local = Agent::new(&server, "browser");
            let (status, _) = local
                .post("auth/login", json!({"username": name, "password": PASSWORD}))
                .await;
            assert_eq!(status, 200);
            let authorize = redirect_start(&mut local, "test", "/linked", "connect").await;
            let callback = idp.authorize(&authorize, &format!("linked-{tag}@example.test")).await;
            let (_, location) = local.visit(&callback).await;
            assert_eq!(location.as_deref(), Some("/linked"));
            let (_, list) = local.get("account/providers", &[]).await;
            assert_eq!(list["data"][0]["uid"], format!("linked-{tag}@example.test"));
            // The same identity now logs that user in.
            let mut again = Agent::new(&server, "browser");
            let authorize = redirect_start(&mut again, "test", "/done", "login").await;
            let callback = idp.authorize(&authorize, &format!("linked-{tag}@example.test")).await;
            again.visit(&callback).await;
            let (status, session) = again.get("auth/session", &[]).await;
            assert_eq!(status, 200, "{session}");
            assert_eq!(session["data"]["user"]["username"], name);
            server
        }
    })
    .await;
}

#[tokio::test]
async fn auto_connect_and_the_social_verification_rule() {
    on_each_backend_and_client(
        |config| {
            with_dummy(config);
            config.socialaccount.email_authentication = true;
            config.socialaccount.email_authentication_auto_connect = true;
            // Local signups verify; provider logins need not.
            config.account.signup_fields = vec![
                SignupField {
                    name: SignupFieldName::Email,
                    required: true,
                },
                SignupField {
                    name: SignupFieldName::Username,
                    required: true,
                },
                SignupField {
                    name: SignupFieldName::Password1,
                    required: true,
                },
            ];
            config.account.email_verification = EmailVerification::Mandatory;
            config.socialaccount.email_verification = Some(EmailVerification::None);
        },
        async |server, client| {
            let email = format!("auto-{client}@example.com");
            // The local account's address is unverified: its password is
            // wiped when the provider's verified address logs into it.
            let owner = user(
                server,
                &format!("auto{client}"),
                &email,
                false,
                Some(PASSWORD),
            )
            .await;
            let uid = 9300 + i64::from(client == "browser");
            let mut agent = Agent::new(server, client);
            let (status, body) = token_login(
                &mut agent,
                "dummy",
                "login",
                dummy_token(uid, Some(&email), true),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["user"]["id"], owner);
            assert_eq!(body["data"]["user"]["has_usable_password"], false);
            let (_, list) = agent.get("account/providers", &[]).await;
            assert_eq!(list["data"][0]["uid"], uid.to_string(), "auto-connected");
            // A new account by provider: no verification stage although
            // local signups must verify.
            let mut fresh = Agent::new(server, client);
            let (status, body) = token_login(
                &mut fresh,
                "dummy",
                "login",
                dummy_token(
                    uid + 10,
                    Some(&format!("fresh-{client}@example.com")),
                    false,
                ),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        },
    )
    .await;
}
