//! The server's own housekeeping: expired sessions, and the refresh tokens
//! that go with them, disappear from the database without any request and
//! without a cron job of the operator's (`server.housekeeping_interval`).

use std::time::{Duration, Instant};

use allauth_server::config::{Config, TokenStrategy};
use allauth_server::db::{now_millis, refresh_tokens, sessions};
use serde_json::{json, Value};

use crate::harness::{claims_of, on_each_backend, raw, session_id_of};

fn jwt_hs256_every_second(config: &mut Config) {
    config.server.housekeeping_interval = 1;
    config.headless.token_strategy = TokenStrategy::Jwt;
    config.headless.jwt_algorithm = allauth_server::config::JwtAlgorithm::HS256;
}

#[tokio::test]
async fn expired_sessions_and_their_refresh_tokens_are_removed() {
    on_each_backend(jwt_hs256_every_second, |server| async move {
        let db = server.server.context().db.clone();
        // Two app sessions through the API (signup logs in: verification is
        // optional by default); one of them is made to expire.
        let mut sessions_made = Vec::new();
        for name in ["old", "new"] {
            let response = raw()
                .post(server.url("/_allauth/app/v1/auth/signup"))
                .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "c0rrect-h0rse-battery"}))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.expect("json");
            let refresh = body["meta"]["refresh_token"].as_str().expect("refresh token");
            let session_id = session_id_of(refresh);
            let jti = claims_of(refresh)["jti"].as_str().expect("jti").to_string();
            sessions_made.push((session_id, jti));
        }
        let (old_id, old_jti) = sessions_made[0].clone();
        let (new_id, new_jti) = sessions_made[1].clone();
        let expired = now_millis() - 1;
        db.run(move |conn| sessions::extend(conn, old_id, expired))
            .await
            .expect("expiry moved back");

        // No request is made; the background task removes the expired row.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let gone = db
                .run(move |conn| sessions::by_id(conn, old_id))
                .await
                .expect("read")
                .is_none();
            if gone {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the expired session is still stored after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (old_token_kept, new_token_kept, new_session_kept) = db
            .run(move |conn| {
                Ok((
                    refresh_tokens::is_live(conn, &old_jti, old_id, 0)?,
                    refresh_tokens::is_live(conn, &new_jti, new_id, 0)?,
                    sessions::by_id(conn, new_id)?.is_some(),
                ))
            })
            .await
            .expect("read");
        assert!(!old_token_kept, "the expired session's refresh token went with it");
        assert!(new_token_kept, "a live session's refresh token stays");
        assert!(new_session_kept, "a live session stays");
        server
    })
    .await;
}
