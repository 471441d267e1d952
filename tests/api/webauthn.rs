//! WebAuthn (`Account: WebAuthn`, `Authentication: WebAuthn: Login`) for
//! both clients on both databases, with a software authenticator: adding a
//! security key or a passkey, renaming and removing it, using it as second
//! factor and to reauthenticate, and logging in with a passkey alone; the
//! options in allauth's shape; a challenge that serves once, also when the
//! same assertion arrives many times at once; refused assertions.

use allauth_api::types;
use allauth_server::config::{Config, MfaType};
use serde_json::{json, Value};

use crate::harness::{
    mails, now_secs, on_each_backend, on_each_backend_and_client, session_for, user, Agent,
    SoftAuthenticator, TestServer, CLIENTS,
};

const PASSWORD: &str = "a sturdy passphrase 42";
const ORIGIN: &str = "https://app.example.com";

fn configure(config: &mut Config) {
    config.account.email_notifications = true;
    config.mfa.supported_types = vec![MfaType::RecoveryCodes, MfaType::Totp, MfaType::Webauthn];
    config.mfa.passkey_login_enabled = true;
    config.mfa.webauthn_rp_id = Some("app.example.com".into());
    config.mfa.webauthn_origins = vec![ORIGIN.into()];
}

async fn signed_in(server: &TestServer, client: &'static str, name: &str) -> (Agent, i64) {
    let id = user(
        server,
        name,
        &format!("{name}@example.com"),
        true,
        Some(PASSWORD),
    )
    .await;
    let mut agent = Agent::new(server, client);
    let (status, body) = login(&mut agent, name).await;
    assert_eq!(status, 200, "{body}");
    (agent, id)
}

async fn login(agent: &mut Agent, name: &str) -> (u16, Value) {
    agent
        .call(
            "POST",
            "auth/login",
            Some(json!({"username": name, "password": PASSWORD})),
        )
        .await
}

async fn logout(agent: &mut Agent) {
    let (status, _) = agent.call("DELETE", "auth/session", None).await;
    assert_eq!(status, 401);
    agent.token = None;
}

/// Registers `key` for the signed-in `agent` (a passkey when
/// `passwordless`); the new authenticator's answer.
async fn add_key(agent: &mut Agent, key: &mut SoftAuthenticator, passwordless: bool) -> Value {
    let path = if passwordless {
        "account/authenticators/webauthn?passwordless"
    } else {
        "account/authenticators/webauthn"
    };
    let (status, body) = agent.call("GET", path, None).await;
    assert_eq!(status, 200, "{body}");
    let credential = key.create(&body["data"]["creation_options"], passwordless);
    let (status, body) = agent
        .call(
            "POST",
            "account/authenticators/webauthn",
            Some(json!({"credential": credential})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn incorrect() -> Value {
    json!({"status": 400, "errors": [{"code": "incorrect_code", "param": "credential", "message": "Incorrect code."}]})
}

#[tokio::test]
async fn a_security_key_as_second_factor_renamed_and_removed() {
    on_each_backend_and_client(configure, async |server, client| {
        let name = format!("key{client}");
        let (mut agent, user_id) = signed_in(server, client, &name).await;

        let (status, body) = agent
            .call("GET", "account/authenticators/webauthn", None)
            .await;
        assert_eq!(status, 200, "{body}");
        let options = &body["data"]["creation_options"]["publicKey"];
        assert_eq!(options["rp"]["id"], "app.example.com");
        assert_eq!(options["user"]["name"], format!("{name}@example.com"));
        assert_eq!(options["user"]["displayName"], name);
        assert_eq!(
            options["user"]["id"],
            base64_url(user_id.to_string().as_bytes()),
            "the user handle is the user's id, as allauth's"
        );
        let selection = &options["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "discouraged");
        assert_eq!(selection["userVerification"], "preferred");
        assert_eq!(options["extensions"]["credProps"], true);

        let mut key = SoftAuthenticator::new(ORIGIN, false);
        let credential = key.create(&body["data"]["creation_options"], false);
        let (status, added) = agent
            .call(
                "POST",
                "account/authenticators/webauthn",
                Some(json!({"credential": credential})),
            )
            .await;
        assert_eq!(status, 200, "{added}");
        assert_eq!(added["data"]["type"], "webauthn");
        assert_eq!(added["data"]["name"], "Master key");
        assert_eq!(added["data"]["is_passwordless"], false);
        assert_eq!(added["meta"]["recovery_codes_generated"], true);
        let id = added["data"]["id"].as_i64().expect("id");
        // The challenge served once.
        let (status, body) = agent
            .call(
                "POST",
                "account/authenticators/webauthn",
                Some(json!({"credential": credential})),
            )
            .await;
        assert_eq!((status, body), (400, incorrect()));
        let (_, list) = agent.call("GET", "account/authenticators", None).await;
        let kinds: Vec<&str> = list["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|a| a["type"].as_str().expect("type"))
            .collect();
        assert_eq!(kinds, ["webauthn", "recovery_codes"]);

        // The next login asks for it.
        logout(&mut agent).await;
        let (status, body) = login(&mut agent, &name).await;
        assert_eq!(status, 401);
        assert!(body["data"]["flows"].as_array().expect("flows").contains(
            &json!({"id": "mfa_authenticate", "is_pending": true, "types": ["recovery_codes", "webauthn"]})
        ), "{body}");
        let (status, body) = agent.call("GET", "auth/webauthn/authenticate", None).await;
        assert_eq!(status, 200, "{body}");
        let request = &body["data"]["request_options"];
        assert_eq!(request["publicKey"]["userVerification"], "preferred");
        assert_eq!(
            request["publicKey"]["allowCredentials"][0]["id"],
            base64_url(&key.credential_id)
        );
        let assertion = key.get(request);
        let (status, body) = agent
            .call(
                "POST",
                "auth/webauthn/authenticate",
                Some(json!({"credential": assertion})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let record = &body["data"]["methods"][1];
        assert_eq!(record["method"], "mfa");
        assert_eq!(record["type"], "webauthn");
        assert_eq!(record["id"], id);

        // Renamed.
        let (status, body) = agent
            .call(
                "PUT",
                "account/authenticators/webauthn",
                Some(json!({"id": id, "name": "Blue key"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["name"], "Blue key");
        let (status, body) = agent
            .call(
                "PUT",
                "account/authenticators/webauthn",
                Some(json!({"id": id + 1000, "name": "x"})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["code"], "invalid_choice");
        assert_eq!(body["errors"][0]["param"], "id");

        // An old session must reauthenticate, which the key does.
        let token = session_for(server, client, user_id, now_secs() - 3600.0).await;
        let mut old = Agent::with_token(server, client, &token);
        let (status, body) = old
            .call(
                "DELETE",
                "account/authenticators/webauthn",
                Some(json!({"authenticators": [id]})),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            body["data"]["flows"],
            json!([{"id": "reauthenticate"}, {"id": "mfa_reauthenticate", "types": ["recovery_codes", "webauthn"]}])
        );
        let (status, body) = old.call("GET", "auth/webauthn/reauthenticate", None).await;
        assert_eq!(status, 200);
        let assertion = key.get(&body["data"]["request_options"]);
        let (status, body) = old
            .call(
                "POST",
                "auth/webauthn/reauthenticate",
                Some(json!({"credential": assertion})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let last = body["data"]["methods"]
            .as_array()
            .expect("methods")
            .last()
            .cloned()
            .expect("record");
        assert_eq!(last["reauthenticated"], true);
        assert_eq!(last["type"], "webauthn");
        let (status, body) = old
            .call(
                "DELETE",
                "account/authenticators/webauthn",
                Some(json!({"authenticators": [id + 1000]})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["code"], "invalid_choice");
        assert_eq!(body["errors"][0]["param"], "authenticators");
        let (status, body) = old
            .call(
                "DELETE",
                "account/authenticators/webauthn",
                Some(json!({"authenticators": [id]})),
            )
            .await;
        assert_eq!((status, body), (200, json!({"status": 200})));
        let (_, list) = old.call("GET", "account/authenticators", None).await;
        assert_eq!(list["data"], json!([]), "the recovery codes went too");
        let subjects: Vec<String> = mails(server).await.into_iter().map(|m| m.1).collect();
        assert!(subjects.iter().any(|s| s == "Security key added"));
        assert!(subjects.iter().any(|s| s == "Security key removed"));
    })
    .await;
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_passkey_logs_in_alone_and_forgeries_do_not() {
    on_each_backend_and_client(configure, async |server, client| {
        let name = format!("pk{client}");
        let (mut agent, user_id) = signed_in(server, client, &name).await;
        let (status, body) = agent
            .call("GET", "account/authenticators/webauthn?passwordless", None)
            .await;
        assert_eq!(status, 200);
        let selection = &body["data"]["creation_options"]["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["userVerification"], "required");
        // A key that cannot verify its user is refused for a passkey.
        let mut weak = SoftAuthenticator::new(ORIGIN, false);
        let credential = weak.create(&body["data"]["creation_options"], true);
        let (status, answer) = agent
            .call(
                "POST",
                "account/authenticators/webauthn",
                Some(json!({"credential": credential})),
            )
            .await;
        assert_eq!((status, answer), (400, incorrect()));

        let mut key = SoftAuthenticator::new(ORIGIN, true);
        let added = add_key(&mut agent, &mut key, true).await;
        assert_eq!(added["data"]["is_passwordless"], true);
        logout(&mut agent).await;

        let (status, body) = agent.call("GET", "auth/webauthn/login", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["meta"].get("session_token").is_some(),
            client == "app",
            "{body}"
        );
        let request = body["data"]["request_options"].clone();
        assert_eq!(request["publicKey"]["userVerification"], "required");
        assert!(request.get("mediation").is_none());

        // A forged signature, then an unknown user.
        let mut forged = key.get(&request);
        forged["response"]["signature"] = json!(base64_url(b"not a signature"));
        let (status, body) = agent
            .call(
                "POST",
                "auth/webauthn/login",
                Some(json!({"credential": forged})),
            )
            .await;
        assert_eq!((status, body), (400, incorrect()));
        let (status, body) = agent.call("GET", "auth/webauthn/login", None).await;
        assert_eq!(status, 200);
        let request = body["data"]["request_options"].clone();
        let mut stranger = key.get(&request);
        stranger["response"]["userHandle"] = json!(base64_url(b"999999"));
        let (status, body) = agent
            .call(
                "POST",
                "auth/webauthn/login",
                Some(json!({"credential": stranger})),
            )
            .await;
        assert_eq!((status, body), (400, incorrect()));

        let (_, body) = agent.call("GET", "auth/webauthn/login", None).await;
        let assertion = key.get(&body["data"]["request_options"]);
        let (status, body) = agent
            .call(
                "POST",
                "auth/webauthn/login",
                Some(json!({"credential": assertion})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["id"], user_id);
        let methods = body["data"]["methods"].as_array().expect("methods");
        assert_eq!(methods.len(), 1, "no second factor after a passkey: {body}");
        assert_eq!(methods[0]["passwordless"], true);
        assert_eq!(methods[0]["type"], "webauthn");
        // Replayed: the challenge is gone.
        logout(&mut agent).await;
        let (status, body) = agent
            .call(
                "POST",
                "auth/webauthn/login",
                Some(json!({"credential": assertion})),
            )
            .await;
        assert_eq!((status, body), (400, incorrect()));
    })
    .await;
}

#[tokio::test]
async fn one_assertion_sent_many_times_at_once_logs_in_once() {
    on_each_backend(
        |c| {
            configure(c);
            let off = Config::from_sources(
                "[account]\nrate_limits = false\n[mfa]\nrate_limits = false\n",
                &[],
            )
            .expect("config");
            c.account.rate_limits = off.account.rate_limits;
            c.mfa.rate_limits = off.mfa.rate_limits;
        },
        |server| async move {
            for client in CLIENTS {
                let (mut agent, _) = signed_in(&server, client, &format!("many{client}")).await;
                let mut key = SoftAuthenticator::new(ORIGIN, true);
                add_key(&mut agent, &mut key, true).await;
                logout(&mut agent).await;
                let (_, body) = agent.call("GET", "auth/webauthn/login", None).await;
                let assertion = key.get(&body["data"]["request_options"]);
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let request = agent.request(
                            "POST",
                            "auth/webauthn/login",
                            Some(json!({"credential": assertion})),
                            &[],
                        );
                        tokio::spawn(async move {
                            request.send().await.expect("request").status().as_u16()
                        })
                    })
                    .collect();
                let mut statuses = Vec::new();
                for task in tasks {
                    statuses.push(task.await.expect("task"));
                }
                let wins = statuses.iter().filter(|s| **s == 200).count();
                assert_eq!(wins, 1, "{client}: {statuses:?}");
                // The losers: the challenge was gone (400), the session
                // changed under them (409), or, for the app, its token was
                // replaced by the winner's login (410).
                assert!(
                    statuses
                        .iter()
                        .all(|s| [200, 400, 409].contains(s) || (*s == 410 && client == "app")),
                    "{statuses:?}"
                );
            }
            server
        },
    )
    .await;
}

#[tokio::test]
async fn without_a_user_or_a_stage_the_answer_is_the_401() {
    on_each_backend_and_client(configure, async |server, client| {
        let mut agent = Agent::new(server, client);
        for (method, path, body) in [
            ("GET", "account/authenticators/webauthn", None),
            (
                "POST",
                "account/authenticators/webauthn",
                Some(json!({"credential": {}})),
            ),
            (
                "PUT",
                "account/authenticators/webauthn",
                Some(json!({"id": 1, "name": "x"})),
            ),
            (
                "DELETE",
                "account/authenticators/webauthn",
                Some(json!({"authenticators": [1]})),
            ),
            ("GET", "auth/webauthn/reauthenticate", None),
            (
                "POST",
                "auth/webauthn/reauthenticate",
                Some(json!({"credential": {}})),
            ),
        ] {
            let (status, answer) = agent.call(method, path, body).await;
            assert_eq!(status, 401, "{method} {path}: {answer}");
            assert_eq!(answer["meta"]["is_authenticated"], false);
        }
        for (method, body) in [("GET", None), ("POST", Some(json!({"credential": {}})))] {
            let (status, answer) = agent.call(method, "auth/webauthn/authenticate", body).await;
            assert_eq!(status, 401, "{answer}");
            assert_eq!(answer["meta"]["is_authenticated"], Value::Null);
        }
    })
    .await;
}

#[tokio::test]
async fn the_generated_client_speaks_webauthn() {
    on_each_backend(configure, |server| async move {
        let app = types::Client::App;
        let (mut agent, _) = signed_in(&server, "app", "genkey").await;
        let token = agent.token.clone().expect("token");
        let client = server.client();
        let options = client
            .webauthn_authenticator_options(app, Some(true), Some(&token))
            .await
            .expect("200")
            .into_inner();
        let options = serde_json::to_value(&options.data.creation_options).expect("json");
        let mut key = SoftAuthenticator::new(ORIGIN, true);
        let credential = key.create(&options, true);
        let added = client
            .webauthn_authenticator_add(
                app,
                Some(&token),
                &types::AddWebAuthnAuthenticatorInput {
                    credential: serde_json::from_value(credential).expect("credential"),
                    name: Some("Phone".into()),
                    passwordless: None,
                },
            )
            .await
            .expect("200")
            .into_inner();
        assert_eq!(added.data.name, "Phone");
        let renamed = client
            .webauthn_authenticator_rename(
                app,
                Some(&token),
                &types::RenameWebAuthnAuthenticatorInput {
                    id: added.data.id.clone(),
                    name: "Old phone".into(),
                },
            )
            .await
            .expect("200")
            .into_inner();
        assert_eq!(renamed.data.name, "Old phone");
        let options = client
            .webauthn_reauthenticate_options(app, Some(&token))
            .await
            .expect("200")
            .into_inner();
        let assertion =
            key.get(&serde_json::to_value(&options.data.request_options).expect("json"));
        let again = client
            .webauthn_reauthenticate(
                app,
                Some(&token),
                &types::WebAuthnAssertionInput {
                    credential: serde_json::from_value(assertion).expect("assertion"),
                },
            )
            .await
            .expect("200")
            .into_inner();
        assert_eq!(again.data.methods.len(), 2);

        logout(&mut agent).await;
        let (status, _) = login(&mut agent, "genkey").await;
        assert_eq!(status, 401);
        let pending = agent.token.clone().expect("pending");
        let options = client
            .webauthn_authenticate_options(app, Some(&pending))
            .await
            .expect("200")
            .into_inner();
        let assertion =
            key.get(&serde_json::to_value(&options.data.request_options).expect("json"));
        let done = client
            .webauthn_authenticate(
                app,
                Some(&pending),
                &types::WebAuthnAssertionInput {
                    credential: serde_json::from_value(assertion).expect("assertion"),
                },
            )
            .await
            .expect("200")
            .into_inner();
        let token = done.meta.session_token.expect("token");

        let options = client
            .webauthn_login_options(app, None)
            .await
            .expect("200")
            .into_inner();
        let fresh = options
            .meta
            .and_then(|m| m.session_token)
            .expect("a session for the ceremony");
        let assertion =
            key.get(&serde_json::to_value(&options.data.request_options).expect("json"));
        let passkey = client
            .webauthn_login(
                app,
                Some(&fresh),
                &types::WebAuthnAssertionInput {
                    credential: serde_json::from_value(assertion).expect("assertion"),
                },
            )
            .await
            .expect("200")
            .into_inner();
        match &passkey.data.methods[..] {
            [types::AuthenticationMethod::MfaAuthenticationMethod(record)] => {
                assert_eq!(record.passwordless, Some(true));
                assert_eq!(record.type_, types::AuthenticatorType::Webauthn);
            }
            other => panic!("one passwordless record, got {other:?}"),
        }

        let gone = client
            .webauthn_authenticator_delete(
                app,
                Some(&token),
                &types::DeleteWebAuthnAuthenticatorsInput {
                    authenticators: vec![added.data.id],
                },
            )
            .await
            .expect("200")
            .into_inner();
        assert_eq!(gone.status, types::StatusOk::try_from(200).expect("200"));
        server
    })
    .await;
}

/// allauth's requirements for passkey signup (`mfa/checks.py`).
fn passkey_signup(config: &mut Config) {
    configure(config);
    config.mfa.passkey_signup_enabled = true;
    config.account.email_verification = allauth_server::config::EmailVerification::Mandatory;
    config.account.email_verification_by_code_enabled = true;
    config.account.login_methods = vec![allauth_server::config::LoginMethod::Email];
    config.account.signup_fields = Config::from_sources(
        "[account]\nlogin_methods = [\"email\"]\nsignup_fields = [\"email*\"]\n",
        &[],
    )
    .expect("config")
    .account
    .signup_fields;
}

fn pending(body: &Value, id: &str) -> bool {
    body["data"]["flows"]
        .as_array()
        .is_some_and(|flows| flows.contains(&json!({"id": id, "is_pending": true})))
}

#[tokio::test]
async fn a_passkey_signup_verifies_the_address_then_takes_the_passkey() {
    on_each_backend_and_client(passkey_signup, async |server, client| {
        let email = format!("new{client}@example.com");
        let mut agent = Agent::new(server, client);
        let (status, body) = agent
            .call(
                "POST",
                "auth/webauthn/signup",
                Some(json!({"email": email})),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert!(pending(&body, "verify_email"), "{body}");
        // The passkey comes after the address.
        let (status, body) = agent.call("GET", "auth/webauthn/signup", None).await;
        assert_eq!((status, body), (409, json!({"status": 409})));

        let code = crate::harness::last_code_to(server, &email).await;
        let (status, body) = agent
            .call("POST", "auth/email/verify", Some(json!({"key": code})))
            .await;
        assert_eq!(status, 401, "{body}");
        assert!(pending(&body, "mfa_signup_webauthn"), "{body}");

        let (status, body) = agent.call("GET", "auth/webauthn/signup", None).await;
        assert_eq!(status, 200, "{body}");
        let options = &body["data"]["creation_options"];
        assert_eq!(
            options["publicKey"]["authenticatorSelection"]["residentKey"],
            "required"
        );
        assert_eq!(options["publicKey"]["user"]["name"], email);
        let mut key = SoftAuthenticator::new(ORIGIN, true);
        let credential = key.create(options, true);
        let (status, body) = agent
            .call(
                "PUT",
                "auth/webauthn/signup",
                Some(json!({"credential": credential, "name": "Laptop"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["email"], email);
        assert_eq!(body["data"]["user"]["has_usable_password"], false);
        let (status, body) = agent
            .call(
                "PUT",
                "auth/webauthn/signup",
                Some(json!({"credential": credential})),
            )
            .await;
        assert_eq!((status, body), (409, json!({"status": 409})));
        let (_, list) = agent.call("GET", "account/authenticators", None).await;
        assert_eq!(list["data"][0]["name"], "Laptop");
        assert_eq!(list["data"][0]["is_passwordless"], true);
        assert_eq!(
            list["data"].as_array().map(Vec::len),
            Some(1),
            "no recovery codes: {list}"
        );

        // The passkey signs in.
        logout(&mut agent).await;
        let (_, body) = agent.call("GET", "auth/webauthn/login", None).await;
        let assertion = key.get(&body["data"]["request_options"]);
        let (status, body) = agent
            .call(
                "POST",
                "auth/webauthn/login",
                Some(json!({"credential": assertion})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["email"], email);
    })
    .await;
}

#[tokio::test]
async fn the_generated_client_signs_up_with_a_passkey() {
    on_each_backend(passkey_signup, |server| async move {
        let app = types::Client::App;
        let client = server.client();
        let started = client
            .webauthn_signup_start(
                app,
                None,
                &types::PasskeySignupInput {
                    email: Some(types::Email("gen@example.com".into())),
                    phone: None,
                    username: None,
                },
            )
            .await;
        let token = match started {
            Err(allauth_api::client::Error::ErrorResponse(r)) if r.status() == 401 => r
                .into_inner()["meta"]["session_token"]
                .as_str()
                .map(str::to_owned),
            other => panic!(
                "a 401 with the verification stage, got {:?}",
                other.map(|r| r.status())
            ),
        }
        .expect("a session token");
        let code = crate::harness::last_code_to(&server, "gen@example.com").await;
        let mut agent = Agent::with_token(&server, "app", &token);
        let (status, _) = agent
            .call("POST", "auth/email/verify", Some(json!({"key": code})))
            .await;
        assert_eq!(status, 401);
        let token = agent.token.clone().expect("token");
        let options = client
            .webauthn_signup_options(app, Some(&token))
            .await
            .expect("200")
            .into_inner();
        let mut key = SoftAuthenticator::new(ORIGIN, true);
        let credential = key.create(
            &serde_json::to_value(&options.data.creation_options).expect("json"),
            true,
        );
        let done = client
            .webauthn_signup_complete(
                app,
                Some(&token),
                &types::CompletePasskeySignupInput {
                    credential: serde_json::from_value(credential).expect("credential"),
                    name: None,
                },
            )
            .await
            .expect("200")
            .into_inner();
        assert_eq!(
            done.data.user.email.map(|e| e.0).as_deref(),
            Some("gen@example.com")
        );
        server
    })
    .await;
}
