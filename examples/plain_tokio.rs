//! warden from a plain `#[tokio::main]` program: no actix system, no setup, calls run in the
//! caller's tasks (spread over every worker thread).
//!
//! `cargo run --example plain_tokio`

use std::time::Duration;

use warden::prelude::*;

#[derive(Debug)]
struct DbError;

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("database unavailable")
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = ServiceSupervisor::builder("database")
        .timeout(Duration::from_millis(200))
        .retry(RetryConfig::exponential(3, Duration::from_millis(10)))
        .start()?;

    // 1 000 calls from 8 tasks: each runs in its own task, on whichever worker polls it.
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..125u64 {
                    let row: Result<u64, CallError<DbError>> =
                        db.call(move || async move { Ok(task * 1000 + i) }).await;
                    row.expect("a healthy dependency answers");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }

    // Queries see every call made before them.
    let counts = db.counts().await?;
    let health = db.health().await?;
    println!(
        "{} calls, {} ok · {} · breaker {} · p50 {:?}",
        counts.total(),
        counts.success,
        health.status,
        health.breaker,
        health.stats.p50
    );
    assert_eq!(counts.success, 1000);
    Ok(())
}
