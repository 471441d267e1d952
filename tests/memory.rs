//! The memory bound under login load (the performance issue): the server
//! binary, on SQLite with rate limits off, takes 400 password logins (half
//! of them wrong, which pay the same hash) from 64 concurrent clients; its
//! memory stays bounded while they run and goes back down once the hashing
//! buffers are released after `IDLE_RELEASE` without a hash.
//!
//! Measured is the anonymous resident memory (`RssAnon`: heap and stacks),
//! where Argon2's 19 MiB blocks live. The rest of the resident set is the
//! executable's own file pages, several times larger in this debug build
//! than in a release one (`bench/memory.py` measures the whole resident set
//! of a release build).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allauth_server::app::security::passwords::IDLE_RELEASE;

const LOGINS: usize = 400;
const CLIENTS: usize = 64;

/// Kilobytes of `RssAnon` of process `pid`.
fn anonymous_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_keep_memory_bounded_and_idle_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\ndata_dir = \"{data}\"\nlog_level = \"warn\"\n\
             [database]\nurl = \"sqlite://{data}/m.sqlite3\"\n\
             [account]\nlogin_methods = [\"email\"]\nsignup_fields = [\"email*\", \"password1*\"]\n\
             email_verification = \"none\"\nrate_limits = false\n\
             [email]\nbackend = \"file\"\nfile_path = \"{data}/mail\"\n",
            data = dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_allauth-server"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let server = Server(child);
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}/_allauth/app/v1");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/config")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server answers");
    let signup = http
        .post(format!("{base}/auth/signup"))
        .json(&serde_json::json!({"email": "m@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    let before = anonymous_kb(pid);

    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let kb = anonymous_kb(pid) as usize;
                peak.fetch_max(kb, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, next, statuses) =
            (http.clone(), base.clone(), next.clone(), statuses.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= LOGINS {
                    break;
                }
                let password = if n % 2 == 0 {
                    "correct horse battery"
                } else {
                    "wrong horse battery"
                };
                let answer = http
                    .post(format!("{base}/auth/login"))
                    .json(&serde_json::json!({"email": "m@example.com", "password": password}))
                    .send()
                    .await
                    .unwrap();
                statuses.lock().unwrap().push(answer.status().as_u16());
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    sampling.abort();
    let statuses = statuses.lock().unwrap().clone();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), LOGINS / 2);
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), LOGINS / 2);
    let peak_mb = peak.load(Ordering::Relaxed) / 1024;
    println!(
        "anonymous memory: {} MB before, {peak_mb} MB at the peak",
        before / 1024
    );
    assert!(peak_mb < 150, "peak {peak_mb} MB under login load");

    // Within a minute of idling the hashing buffers are gone.
    tokio::time::sleep(IDLE_RELEASE + Duration::from_secs(5)).await;
    let idle_mb = anonymous_kb(pid) / 1024;
    println!("anonymous memory after {IDLE_RELEASE:?} + 5 s idle: {idle_mb} MB");
    assert!(idle_mb < 60, "{idle_mb} MB after idling");
    // And it is the buffers that went: at least one Argon2 block's worth.
    assert!(
        idle_mb + 19 <= peak_mb as u64,
        "{idle_mb} MB after idling, {peak_mb} MB at the peak"
    );
    drop(server);
}
