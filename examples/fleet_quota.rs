//! One quota for a whole fleet: every replica (process) that runs this program shares one
//! rate limit of 20 calls a second, kept in Redis. Run it in two terminals against a local
//! `redis-server` and watch each replica get its part of the 20; stop Redis and watch each
//! fall back to its own share (20 / 2 = 10/s), then start it again.
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run --features redis --example fleet_quota                    # 10 s, redis://127.0.0.1:6379/
//! cargo run --features redis --example fleet_quota -- redis://127.0.0.1:6390/ 5
//! ```
use std::time::Duration;

use warden::messages::EventKind;
use warden::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".into());
    let seconds: u64 = args.next().map_or(Ok(10), |s| s.parse())?;

    // 20 calls/s for the fleet (of 2 replicas, expected), shared through Redis.
    let api = ServiceSupervisor::builder("partner-api")
        .rate_limit(RateLimitConfig::per_second(20.0).max_wait(Duration::from_millis(20)))
        .fleet(FleetConfig::redis(&url, 2).budget(false))
        .start()?;
    let (events, mut received) = tokio::sync::mpsc::channel(16);
    api.subscribe(events).await?;

    // This replica offers 50 calls a second; it is admitted what the fleet's quota leaves it.
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    for second in 1..=seconds {
        let (mut admitted, mut limited) = (0, 0);
        for _ in 0..50 {
            ticks.tick().await;
            match api.call(|| async { Ok::<_, std::io::Error>(()) }).await {
                Ok(()) => admitted += 1,
                Err(CallError::RateLimited { .. }) => limited += 1,
                Err(other) => return Err(other.into()),
            }
        }
        while let Ok(event) = received.try_recv() {
            match event.kind {
                EventKind::FleetFallback { .. } => println!("  redis away: on the local share"),
                EventKind::FleetRestored { .. } => println!("  redis back: sharing the quota"),
                _ => {}
            }
        }
        println!("second {second:>2}: {admitted:>2} admitted, {limited:>2} rate limited");
    }
    Ok(())
}
