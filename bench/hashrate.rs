//! The hashing pool's own throughput, for `bench/run.sh`: as many password
//! verifications (what a login costs) as the pool takes, with the default
//! `[account]` settings (the server's Argon2id parameters and its permits,
//! one per core), for the given number of seconds; prints verifications
//! per second. `POST auth/login` is
//! reported as a share of this.
//!
//!     cargo run --release --example hashrate -- 10

#![allow(clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use allauth_server::app::security::passwords::Passwords;
use allauth_server::config::AccountConfig;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let passwords = Arc::new(Passwords::new(&AccountConfig::default()));
    let done = Arc::new(AtomicU64::new(0));
    let stored = passwords.hash("correct horse battery").await.expect("hash");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    // More callers than permits, as under load: the pool is never idle.
    let callers = 4 * std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (passwords, done, stored) = (passwords.clone(), done.clone(), stored.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                passwords
                    .verify("correct horse battery", &stored)
                    .await
                    .expect("verify");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("caller");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("verifications/s: {rate:.1}");
}
