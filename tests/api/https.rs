//! Behind a TLS-terminating proxy (`server.secure_proxy_ssl_header`): a
//! request marked HTTPS gets `Secure` cookies, and an unsafe browser
//! request without `Origin` needs an HTTPS `Referer` of this site (Django's
//! CSRF check); without the setting the header means nothing.

use serde_json::json;

use crate::harness::{on_each_backend, raw, CSRF};

fn proxied(config: &mut allauth_server::config::Config) {
    config.server.secure_proxy_ssl_header =
        Some(["X-Forwarded-Proto".to_owned(), "https".to_owned()]);
}

fn set_cookies(response: &crate::harness::RawResponse) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn https_behind_the_proxy_means_secure_cookies_and_the_referer_check() {
    on_each_backend(proxied, |server| async move {
        let config_url = server.url("/_allauth/browser/v1/config");
        let over_https = raw()
            .get(&config_url)
            .header("X-Forwarded-Proto", "https")
            .send()
            .await
            .expect("request");
        let cookies = set_cookies(&over_https);
        assert!(!cookies.is_empty());
        assert!(
            cookies.iter().all(|c| c.contains("; Secure")),
            "{cookies:?}"
        );
        let plain = raw().get(&config_url).send().await.expect("request");
        let cookies = set_cookies(&plain);
        assert!(cookies.iter().all(|c| !c.contains("Secure")), "{cookies:?}");

        let host = server.base.trim_start_matches("http://").to_owned();
        let login = server.url("/_allauth/browser/v1/auth/login");
        let post = |referer: Option<String>, proto: Option<&'static str>| {
            let mut request = raw()
                .post(&login)
                .header("Cookie", format!("csrftoken={CSRF}"))
                .header("X-CSRFToken", CSRF)
                .json(&json!({"username": "nobody", "password": "wrong password"}));
            if let Some(referer) = referer {
                request = request.header("Referer", referer);
            }
            if let Some(proto) = proto {
                request = request.header("X-Forwarded-Proto", proto);
            }
            async move {
                let response = request.send().await.expect("request");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.expect("json");
                (status, body)
            }
        };
        // HTTPS without Origin or Referer: refused.
        let (status, body) = post(None, Some("https")).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["errors"][0]["code"], "csrf_failed");
        // A Referer of another site, or over http: refused.
        for referer in ["https://evil.example.com/", &format!("http://{host}/")] {
            let (status, _) = post(Some(referer.to_owned()), Some("https")).await;
            assert_eq!(status, 403, "{referer}");
        }
        // This site's page over HTTPS: the request goes through (and fails
        // on its merits).
        let (status, body) = post(Some(format!("https://{host}/login")), Some("https")).await;
        assert_eq!(status, 400, "{body}");
        // Plain HTTP needs no Referer, as in Django.
        let (status, _) = post(None, None).await;
        assert_eq!(status, 400);
        server
    })
    .await;
    // Without the setting, the header changes nothing.
    on_each_backend(
        |_| {},
        |server| async move {
            let response = raw()
                .get(server.url("/_allauth/browser/v1/config"))
                .header("X-Forwarded-Proto", "https")
                .send()
                .await
                .expect("request");
            assert!(set_cookies(&response).iter().all(|c| !c.contains("Secure")));
            server
        },
    )
    .await;
}
