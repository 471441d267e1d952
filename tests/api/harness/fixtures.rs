//! Stored fixtures the tests share: users with an address, logged-in sessions.

use allauth_server::app::security::codes;
use allauth_server::db::{self, email_addresses, sessions, users};
use serde_json::json;

use super::TestServer;

/// Now, in seconds since the epoch (as session method records keep `at`).
pub fn now_secs() -> f64 {
    db::now_millis() as f64 / 1000.0
}

/// A user with a password (or none) and one address (primary); its id.
pub async fn user(
    server: &TestServer,
    username: &str,
    email: &str,
    verified: bool,
    password: Option<&str>,
) -> i64 {
    let passwords = &server.server.context().passwords;
    let hash = match password {
        Some(p) => Some(passwords.hash(p).await.expect("hash")),
        None => None,
    };
    let db = server.server.context().db.clone();
    let (username, email) = (username.to_string(), email.to_string());
    db.run(move |conn| {
        let user = users::insert(
            conn,
            &users::NewUser::new(Some(&username), hash, db::now_millis()),
        )?;
        email_addresses::insert(
            conn,
            &email_addresses::NewEmailAddress::new(user.id, &email, verified, true),
        )?;
        Ok(user.id)
    })
    .await
    .expect("user stored")
}

/// A stored logged-in session of `user_id` for `client` (`"app"` or
/// `"browser"`), by a password login `at` seconds; its token.
pub async fn session_for(server: &TestServer, client: &str, user_id: i64, at: f64) -> String {
    let token = codes::new_token();
    let key_hash = codes::token_hash(&token);
    let client = if client == "app" {
        sessions::Client::App
    } else {
        sessions::Client::Browser
    };
    let db = server.server.context().db.clone();
    db.run(move |conn| {
        let now = db::now_millis();
        let mut session = sessions::NewSession::new(key_hash, client, now, now + 3_600_000);
        session.user_id = Some(user_id);
        session.data =
            json!({"methods": [{"method": "password", "at": at, "username": "u"}]}).to_string();
        sessions::insert(conn, &session)?;
        Ok(())
    })
    .await
    .expect("session stored");
    token
}
