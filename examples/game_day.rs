//! A game day on a real service: a loopback HTTP server that is perfectly healthy, called with
//! `reqwest` through a supervisor, into which we inject faults on purpose — errors and latency —
//! to watch the breaker, the health and the metrics react, then clear them and watch it recover.
//!
//! Fault injection is behind the cargo feature `fault-injection` (off by default, so it cannot
//! be turned on by accident):
//!
//! ```sh
//! cargo run --example game_day --features fault-injection
//! ```
//!
//! Injected faults take the real path: an injected error is a failed attempt (retried, counted
//! by the breaker), injected latency counts against the timeout; the server never sees them.

#[path = "http_dependency/app.rs"]
mod app;

use std::time::Duration;

use warden::chaos::FaultConfig;
use warden::prelude::*;

/// Sends `n` GETs through the supervisor, 5 ms apart; returns how many got a body, and how
/// many reached the server.
async fn traffic(
    api: &ServiceHandle,
    http: &reqwest::Client,
    server: &app::FaultyServer,
    n: u32,
) -> (u32, u32) {
    let before = server.requests();
    let mut ok = 0;
    for i in 0..n {
        let request = http.get(server.url(&format!("/items/{i}")));
        let answer = api
            .call(move || {
                let request = request.try_clone().expect("a GET clones");
                async move { request.send().await?.error_for_status()?.text().await }
            })
            .await;
        ok += u32::from(answer.is_ok());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (ok, server.requests() - before)
}

async fn report(api: &ServiceHandle, phase: &str, (ok, reached): (u32, u32), n: u32) {
    let health = api.health().await.expect("running");
    let counts = api.counts().await.expect("running");
    println!(
        "{phase:<28} {ok:>3}/{n} ok · {reached:>3} requests reached the server · breaker {} · \
         health {} · so far: {} retries, {} refused while open",
        health.breaker, health.status, counts.retries, counts.rejected_open
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = app::FaultyServer::start().await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let api = ServiceSupervisor::builder("items-api")
        .timeout(Duration::from_millis(100))
        .retry(RetryConfig::exponential(2, Duration::from_millis(5)))
        .breaker(BreakerConfig::consecutive(5).open_for(Duration::from_millis(300)))
        .start()?;

    let baseline = traffic(&api, &http, &server, 50).await;
    report(&api, "baseline", baseline, 50).await;

    // The game day: 40 % of attempts fail, 20 % take 150 ms (past the 100 ms timeout).
    let faults = FaultConfig::new()
        .errors(0.4)
        .latency(0.2, Duration::from_millis(150))
        .seed(7);
    api.inject_faults(faults).await?;
    let during = traffic(&api, &http, &server, 100).await;
    report(&api, "faults injected", during, 100).await;

    // Faults off; the breaker's open period passes; traffic flows again.
    api.clear_faults().await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = traffic(&api, &http, &server, 50).await;
    report(&api, "faults cleared", after, 50).await;

    let counts = api.counts().await?;
    let recovered = after.0 == 50 && baseline.0 == 50;
    let hurt = during.0 < 100;
    println!(
        "\n{} calls in all: {} ok, {} failed, {} timed out, {} refused while open",
        counts.total(),
        counts.success,
        counts.failure,
        counts.timeout,
        counts.rejected_open
    );
    if !(recovered && hurt) {
        eprintln!("the game day did not go as described (recovered: {recovered}, hurt: {hurt})");
        std::process::exit(1);
    }
    println!("✓ the faults hurt, the breaker protected the server, and it recovered once cleared");
    Ok(())
}
