//! Several instances on one database (as behind a load balancer, with a
//! shared `server.secret_key`): a session or token made by one works on the
//! other, a refresh token is used once across both, logout on one ends the
//! session everywhere, and rate limits count across instances.

use allauth_server::config::{Config, JwtAlgorithm, TokenStrategy};
use serde_json::json;

use crate::harness::{on_each_backend, simultaneous_refreshes, user, Agent};

const PASSWORD: &str = "c0rrect-h0rse-battery";

fn jwt(config: &mut Config) {
    config.headless.token_strategy = TokenStrategy::Jwt;
    config.headless.jwt_algorithm = JwtAlgorithm::HS256;
}

#[tokio::test]
async fn instances_share_sessions_tokens_and_limits() {
    on_each_backend(jwt, |a| async move {
        let b = a.start_sharing(jwt).await;
        user(&a, "hal", "hal@example.com", true, Some(PASSWORD)).await;

        // Logged in on A; the session token and the access token work on B.
        let mut on_a = Agent::new(&a, "app");
        let (status, body) = on_a
            .post(
                "auth/login",
                json!({"username": "hal", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let token = on_a.token.clone().expect("session token");
        let bearer = format!(
            "Bearer {}",
            body["meta"]["access_token"].as_str().expect("access")
        );
        let refresh = body["meta"]["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string();
        let (status, _) = Agent::with_token(&b, "app", &token)
            .get("auth/session", &[])
            .await;
        assert_eq!(status, 200);
        let (status, _) = Agent::new(&b, "app")
            .get("auth/session", &[("Authorization", &bearer)])
            .await;
        assert_eq!(status, 200);

        // One refresh token, 40 simultaneous refreshes spread over both
        // instances: exactly one succeeds.
        let statuses = simultaneous_refreshes(&[&a.base, &b.base], &refresh, 40).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 400).count(),
            39,
            "{statuses:?}"
        );

        // Logout on B ends the session on A.
        let (status, _) = Agent::with_token(&b, "app", &token)
            .call("DELETE", "auth/session", None)
            .await;
        assert_eq!(status, 401);
        let (status, _) = Agent::with_token(&a, "app", &token)
            .get("auth/session", &[])
            .await;
        assert_eq!(status, 410);

        // login_failed (5 per address) counts on both instances together.
        for i in 0..5 {
            let server = if i % 2 == 0 { &a } else { &b };
            let (status, body) = Agent::new(server, "app")
                .post(
                    "auth/login",
                    json!({"username": "hal", "password": "wrong-guess"}),
                )
                .await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(
                body["errors"][0]["code"], "username_password_mismatch",
                "{body}"
            );
        }
        for server in [&a, &b] {
            let (status, body) = Agent::new(server, "app")
                .post(
                    "auth/login",
                    json!({"username": "hal", "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["errors"][0]["code"], "too_many_login_attempts");
        }
        b.stop().await;
        a
    })
    .await;
}
