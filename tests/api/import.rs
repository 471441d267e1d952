//! `allauth-server import django`, run as the real binary on a database made
//! by the real django-allauth 65.21.1 (`tests/fixtures/django/`, built by
//! `make_fixture.py` through allauth's own APIs), into SQLite and
//! PostgreSQL; then every user logs in through the HTTP API as they did on
//! the Django site: passwords of five hashers (upgraded to Argon2id at that
//! login), TOTP from the same secret, the unused recovery codes and not the
//! used one, a passkey login and a security key as second factor signed by
//! the same keys, an OpenID Connect login landing on the same user. Also: a
//! dry run writes nothing, a second run updates without duplicating (and
//! keeps what happened here since), refused rows are reported.

use std::path::{Path, PathBuf};
use std::process::Command;

use allauth_server::config::{Config, MfaType};
use serde_json::{json, Value};
use totp_rs::{Builder, Secret};

use crate::harness::{
    now_secs, on_each_backend, sign_id_token, Agent, OidcProvider, SoftAuthenticator, TestServer,
};

const SECRET_KEY: &str = "import-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django")
}

/// The source database and what is known of it: the committed fixture,
/// or one that `make_fixture.py` has just made, named by
/// `IMPORT_DJANGO_FROM` (a URL) and `IMPORT_DJANGO_FACTS` (its JSON file),
/// as the external check does with PostgreSQL (`.ci/external-checks`).
fn fresh_source() -> Option<(String, PathBuf)> {
    let url = std::env::var("IMPORT_DJANGO_FROM")
        .ok()
        .filter(|v| !v.is_empty())?;
    let facts =
        std::env::var("IMPORT_DJANGO_FACTS").expect("IMPORT_DJANGO_FACTS with IMPORT_DJANGO_FROM");
    Some((url, PathBuf::from(facts)))
}

fn expected() -> Value {
    let path = fresh_source().map_or_else(|| fixture_dir().join("expected.json"), |(_, p)| p);
    let text = std::fs::read_to_string(&path).expect("the fixture's facts");
    serde_json::from_str(&text).expect("JSON")
}

/// The settings that must match the Django site: secret key (for sealing),
/// WebAuthn relying party, the OpenID Connect app's provider id.
fn with_site(idp_discovery: String) -> impl Fn(&mut Config) {
    move |config: &mut Config| {
        config.server.secret_key = Some(SECRET_KEY.to_string().into());
        // Many logins from one address in a minute, wrong ones among them.
        let limits =
            Config::from_sources("[account]\nrate_limits = false\n", &[]).expect("rate limits off");
        config.account.rate_limits = limits.account.rate_limits;
        config.mfa.supported_types = vec![MfaType::RecoveryCodes, MfaType::Totp, MfaType::Webauthn];
        config.mfa.passkey_login_enabled = true;
        config.mfa.webauthn_rp_id = Some("app.example.com".into());
        config.mfa.webauthn_origins = vec!["https://app.example.com".into()];
        // The Django site's OpenID Connect app, provider id "test".
        crate::social::with_oidc(idp_discovery.clone())(config);
    }
}

/// Runs `allauth-server import django` into `server`'s database with a
/// configuration holding the same secret key and relying party; exit
/// status, stdout, stderr.
fn import(server: &TestServer, extra: &[&str]) -> (i32, String, String) {
    if let Some((url, _)) = fresh_source() {
        return import_from(server, &url, extra);
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    // A copy, so that the committed file is never opened for writing.
    let source = dir.path().join("django.sqlite3");
    std::fs::copy(fixture_dir().join("allauth-65.21.1.sqlite3"), &source).expect("copy");
    import_from(server, &format!("sqlite://{}", source.display()), extra)
}

/// [`import`] from the database at `url`.
fn import_from(server: &TestServer, url: &str, extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nsecret_key = \"{SECRET_KEY}\"\ndata_dir = \"{}\"\n\
             [mfa]\nwebauthn_rp_id = \"app.example.com\"\n\
             webauthn_origins = [\"https://app.example.com\"]\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let out = Command::new(binary())
        .args(["import", "django", "--from", url])
        .arg("--database-url")
        .arg(&server.server.context().config.database.url)
        .arg("--config")
        .arg(&config)
        .args(extra)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The binary under test; `TEST_SERVER_BINARY` names a copy of it when
/// the target directory is shared with builds of another checkout.
fn binary() -> String {
    std::env::var("TEST_SERVER_BINARY")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_allauth-server").to_owned())
}

/// Rows per table, for "nothing written" and "nothing duplicated".
async fn counts(server: &TestServer) -> Vec<i64> {
    let db = server.server.context().db.clone();
    db.run(|conn| {
        use allauth_server::db::schema::{
            email_addresses, mfa_authenticators, social_accounts, social_tokens, users,
        };
        use diesel::dsl::count_star;
        use diesel::prelude::*;
        Ok(vec![
            users::table.select(count_star()).first::<i64>(conn)?,
            email_addresses::table.select(count_star()).first(conn)?,
            mfa_authenticators::table.select(count_star()).first(conn)?,
            social_accounts::table.select(count_star()).first(conn)?,
            social_tokens::table.select(count_star()).first(conn)?,
        ])
    })
    .await
    .expect("counts")
}

async fn stored_hash(server: &TestServer, id: i64) -> Option<String> {
    let db = server.server.context().db.clone();
    db.run(move |conn| allauth_server::db::users::by_id(conn, id))
        .await
        .expect("user")
        .expect("exists")
        .password_hash
}

fn totp_now(secret: &str) -> String {
    let bytes = Secret::try_from_base32(secret).expect("base32 secret");
    Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .build_noncompliant()
        .generate(now_secs() as u64)
        .to_string()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

async fn login(agent: &mut Agent, username: &str, password: &str) -> (u16, Value) {
    agent
        .post(
            "auth/login",
            json!({"username": username, "password": password}),
        )
        .await
}

fn pending_mfa_types(body: &Value) -> Vec<String> {
    body["data"]["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["id"] == "mfa_authenticate")
        .flat_map(|f| f["types"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_django_allauth_database_keeps_logging_in_here() {
    let facts = expected();
    let idp = OidcProvider::start(&[]).await;
    let user = |name: &str| facts["users"][name].clone();
    let id_of = |name: &str| user(name)["id"].as_i64().expect("id");
    let password_of = |name: &str| user(name)["password"].as_str().expect("pw").to_owned();

    on_each_backend(with_site(idp.discovery_url()), async |server| {
        // A dry run reports and writes nothing.
        let (code, out, err) = import(&server, &["--dry-run"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("dry run: nothing was written\n"), "{out}");
        assert!(
            out.contains("auth_user: 8 imported (8 new, 0 updated), 1 refused"),
            "{out}"
        );
        assert_eq!(counts(&server).await, [0, 0, 0, 0, 0]);

        let (code, out, err) = import(&server, &[]);
        assert_eq!(code, 0, "{err}");
        for line in [
            "auth_user: 8 imported (8 new, 0 updated), 1 refused",
            "account_emailaddress: 9 imported (9 new, 0 updated), 1 refused",
            "auth_user.email: 1 imported (1 new, 0 updated), 0 refused",
            "mfa_authenticator: 4 imported (4 new, 0 updated), 0 refused",
            "socialaccount_socialaccount: 1 imported (1 new, 0 updated), 0 refused",
            "socialaccount_socialtoken: 1 imported (1 new, 0 updated), 0 refused",
            "not imported: django_session (1 sessions)",
            "refused: auth_user id=8: username \"ALICE\" is taken here by user 1",
            "refused: account_emailaddress id=10: bob@example.com is verified by user 2 too",
        ] {
            assert!(out.contains(line), "{line:?} missing from:\n{out}");
        }
        assert_eq!(counts(&server).await, [8, 10, 4, 1, 1]);

        // Passwords of every hasher; Argon2id once logged in. Users keep
        // their ids, addresses and names.
        for name in ["alice", "bob", "carol", "dave", "erin", "mallory"] {
            let id = id_of(name);
            let before = stored_hash(&server, id).await.expect("a hash");
            assert!(!before.starts_with("$argon2id$"), "{name}: {before}");
            let mut agent = Agent::new(&server, "app");
            let (status, body) = login(&mut agent, name, "wrong password").await;
            assert_eq!(status, 400, "{name}: {body}");
            let (status, body) = login(&mut agent, name, &password_of(name)).await;
            match name {
                "alice" => assert_eq!(pending_mfa_types(&body), ["recovery_codes", "totp"]),
                "bob" | "carol" => assert_eq!(pending_mfa_types(&body), ["webauthn"], "{body}"),
                _ => {
                    assert_eq!(status, 200, "{name}: {body}");
                    assert_eq!(body["data"]["user"]["id"], id);
                    assert_eq!(body["data"]["user"]["username"], name);
                }
            }
            let after = stored_hash(&server, id).await.expect("a hash");
            assert!(after.starts_with("$argon2id$v=19$"), "{name}: {after}");
        }
        // dave had only auth_user.email: his address, unverified.
        let mut agent = Agent::new(&server, "app");
        login(&mut agent, "dave", &password_of("dave")).await;
        let (_, body) = agent.get("account/email", &[]).await;
        assert_eq!(
            body["data"],
            json!([{"email": "dave@example.com", "primary": true, "verified": false}])
        );
        let mut agent = Agent::new(&server, "app");
        login(&mut agent, "erin", &password_of("erin")).await;
        let (_, body) = agent.get("account/email", &[]).await;
        assert_eq!(body["data"].as_array().map(Vec::len), Some(2), "{body}");
        // Inactive stays inactive; unusable stays unusable.
        let (status, body) = login(
            &mut Agent::new(&server, "app"),
            "grace",
            &password_of("grace"),
        )
        .await;
        assert_ne!(status, 200, "{body}");
        let (status, _) = login(
            &mut Agent::new(&server, "app"),
            "frank",
            "frank passphrase 42",
        )
        .await;
        assert_eq!(status, 400);
        // The refused user is not here.
        let (status, _) = login(
            &mut Agent::new(&server, "app"),
            "ALICE",
            "ALICE passphrase 42",
        )
        .await;
        assert_eq!(status, 400);

        // TOTP from the same secret; the recovery codes as allauth derived them.
        let totp = facts["totp"]["secret"].as_str().expect("secret");
        let mut agent = Agent::new(&server, "app");
        login(&mut agent, "alice", &password_of("alice")).await;
        let (status, body) = agent
            .post("auth/2fa/authenticate", json!({"code": totp_now(totp)}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["id"], id_of("alice"));
        let used = facts["recovery_codes"]["used"].as_str().expect("used");
        let unused: Vec<String> =
            serde_json::from_value(facts["recovery_codes"]["unused"].clone()).expect("codes");
        let (status, body) = agent
            .get("account/authenticators/recovery-codes", &[])
            .await;
        if status == 200 {
            assert_eq!(body["data"]["unused_codes"], json!(unused), "{body}");
        }
        let mut agent = Agent::new(&server, "app");
        login(&mut agent, "alice", &password_of("alice")).await;
        let (status, _) = agent
            .post("auth/2fa/authenticate", json!({"code": used}))
            .await;
        assert_eq!(status, 400, "the code used in Django stays used");
        let (status, body) = agent
            .post("auth/2fa/authenticate", json!({"code": unused[0]}))
            .await;
        assert_eq!(status, 200, "{body}");

        // The passkey logs bob in alone, with the key allauth registered.
        let passkey = &facts["passkey"];
        let mut key = SoftAuthenticator::with_key(
            "https://app.example.com",
            true,
            &unhex(passkey["scalar"].as_str().expect("scalar")),
            &unhex(passkey["credential_id"].as_str().expect("id")),
            id_of("bob").to_string().as_bytes(),
        );
        let mut agent = Agent::new(&server, "app");
        let (status, body) = agent.get("auth/webauthn/login", &[]).await;
        assert_eq!(status, 200, "{body}");
        let assertion = key.get(&body["data"]["request_options"]);
        let (status, body) = agent
            .post("auth/webauthn/login", json!({"credential": assertion}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["id"], id_of("bob"));

        // carol's security key is her second factor.
        let security_key = &facts["security_key"];
        let mut key = SoftAuthenticator::with_key(
            "https://app.example.com",
            false,
            &unhex(security_key["scalar"].as_str().expect("scalar")),
            &unhex(security_key["credential_id"].as_str().expect("id")),
            id_of("carol").to_string().as_bytes(),
        );
        let mut agent = Agent::new(&server, "app");
        login(&mut agent, "carol", &password_of("carol")).await;
        let (status, body) = agent.get("auth/webauthn/authenticate", &[]).await;
        assert_eq!(status, 200, "{body}");
        let assertion = key.get(&body["data"]["request_options"]);
        let (status, body) = agent
            .post(
                "auth/webauthn/authenticate",
                json!({"credential": assertion}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["id"], id_of("carol"));

        // frank's provider account: an ID token for the same subject.
        let now = now_secs() as i64;
        let token = sign_id_token(&json!({
            "iss": idp.issuer(), "sub": facts["social"]["uid"], "aud": "server-client",
            "exp": now + 300, "iat": now - 10,
            "email": "frank@example.com", "email_verified": true,
        }));
        let mut agent = Agent::new(&server, "app");
        let (status, body) = agent
            .post(
                "auth/provider/token",
                json!({"provider": "test", "process": "login",
                       "token": {"client_id": "server-client", "id_token": token}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user"]["id"], id_of("frank"));

        // A second run updates, duplicates nothing, and keeps what
        // happened here: Argon2id hashes, the recovery code used here.
        let (code, out, err) = import(&server, &[]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("auth_user: 8 imported (0 new, 8 updated), 1 refused"),
            "{out}"
        );
        assert!(
            out.contains("mfa_authenticator: 4 imported (0 new, 4 updated)"),
            "{out}"
        );
        assert_eq!(counts(&server).await, [8, 10, 4, 1, 1]);
        let hash = stored_hash(&server, id_of("alice")).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let mut agent = Agent::new(&server, "app");
        login(&mut agent, "alice", &password_of("alice")).await;
        let (status, _) = agent
            .post("auth/2fa/authenticate", json!({"code": unused[0]}))
            .await;
        assert_eq!(status, 400, "the code used here stays used");
        let (status, body) = agent
            .post("auth/2fa/authenticate", json!({"code": unused[1]}))
            .await;
        assert_eq!(status, 200, "{body}");

        // A signup after the import gets an id past the imported ones.
        let mut agent = Agent::new(&server, "app");
        let (status, body) = agent
            .post(
                "auth/signup",
                json!({"username": "newcomer", "email": "new@example.com",
                       "password": "a sturdy passphrase 42"}),
            )
            .await;
        assert!(status == 200 || status == 401, "{body}");
        let db = server.server.context().db.clone();
        let newcomer = db
            .run(|conn| allauth_server::db::users::by_username_lower(conn, "newcomer"))
            .await
            .expect("query")
            .expect("signed up");
        assert_eq!(newcomer.id, 10);
        server
    })
    .await;
}

#[tokio::test]
async fn refuses_a_source_it_cannot_read() {
    on_each_backend(
        |_| {},
        async |server| {
            let (code, _, err) = import_from(&server, "sqlite:///nonexistent/django.sqlite3", &[]);
            assert_eq!(code, 1);
            assert!(err.starts_with("error: no SQLite database at"), "{err}");
            let (code, _, err) = import_from(&server, "mysql://localhost/django", &[]);
            assert_eq!(code, 1);
            assert!(err.contains("unsupported URL"), "{err}");
            let (code, _, err) = import(&server, &["--user-table", "accounts_user"]);
            assert_eq!(code, 1);
            assert!(err.contains("no user table \"accounts_user\""), "{err}");
            let (code, _, err) = import(&server, &["--user-column", "shoe_size=x"]);
            assert_eq!(code, 1);
            assert!(err.contains("unknown field \"shoe_size\""), "{err}");
            assert_eq!(counts(&server).await, [0, 0, 0, 0, 0]);
            server
        },
    )
    .await;
}

#[tokio::test]
async fn a_custom_user_model_is_read_by_its_names() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    on_each_backend(
        |_| {},
        async |server| {
            // The fixture's user table as a custom model would name it.
            let dir = tempfile::tempdir().expect("temporary directory");
            let source = dir.path().join("custom.sqlite3");
            std::fs::copy(fixture_dir().join("allauth-65.21.1.sqlite3"), &source).expect("copy");
            let mut conn =
                diesel::sqlite::SqliteConnection::establish(&source.display().to_string())
                    .expect("open");
            conn.batch_execute(
                "ALTER TABLE auth_user RENAME TO accounts_member;
             ALTER TABLE accounts_member RENAME COLUMN email TO email_address;
             ALTER TABLE accounts_member RENAME COLUMN id TO member_id;
             ALTER TABLE accounts_member DROP COLUMN first_name;",
            )
            .expect("renamed");
            drop(conn);
            let url = format!("sqlite://{}", source.display());
            let (code, out, err) = import_from(
                &server,
                &url,
                &[
                    "--user-table=accounts_member",
                    "--user-column=email=email_address",
                    "--user-column=id=member_id",
                    "--user-column=first_name=",
                ],
            );
            assert_eq!(code, 0, "{err}");
            assert!(
                out.contains("accounts_member: 8 imported (8 new, 0 updated), 1 refused"),
                "{out}"
            );
            assert!(out.contains("accounts_member.email: 1 imported"), "{out}");
            let db = server.server.context().db.clone();
            let alice = db
                .run(|conn| allauth_server::db::users::by_username_lower(conn, "alice"))
                .await
                .expect("query")
                .expect("imported");
            assert_eq!(alice.id, 1);
            server
        },
    )
    .await;
}
