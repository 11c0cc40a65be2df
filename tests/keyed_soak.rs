//! Keyed soak: 1 000 000 distinct keys through one keyed handle (paused clock, keys idle after
//! 1 ms), with a Prometheus recorder installed. Checks that what a flood of keys can grow stays
//! under its caps:
//! - live keys never exceed `max_keys`, and the shared overflow takes the rest;
//! - the exported series (the recorder's and the per-key ones warden renders) stay under a
//!   fixed bound: `labeled_keys` keys and `_other`, whatever the number of keys seen;
//! - resident memory plateaus (RSS from `/proc/self/status`, printed every 100 000 keys).
//!
//! Left out of a plain `cargo test`; CI runs it in release:
//! `cargo test --release --test keyed_soak -- --ignored --nocapture`
//! (`WARDEN_KEYED_KEYS` sets the number of keys, default 1 000 000).

mod common;

use std::time::Duration;

use common::*;
use warden::actors::render_key_series;
use warden::prelude::*;

const MAX_KEYS: u32 = 1_000;
const LABELED: u32 = 32;
/// Keys between two RSS readings.
const CHUNK: u64 = 100_000;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Series lines (not comments) in Prometheus text.
fn series(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("warden_") && !l.is_empty())
        .count()
}

#[actix::test]
#[ignore = "soak: run in release with --ignored"]
async fn a_million_distinct_keys_stay_under_their_caps() {
    let metrics = warden::observe::install_recorder().expect("recorder");
    pause_aligned().await;
    let keys: u64 = std::env::var("WARDEN_KEYED_KEYS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let registry = RegistryHandle::start().unwrap();
    let mut config = plain_config();
    config.keyed = Some(
        KeyedConfig::default()
            .max_keys(MAX_KEYS)
            .labeled_keys(LABELED)
            .idle_after(Duration::from_millis(1)),
    );
    let hosts = registry.spawn_keyed("flood", config).await.unwrap();
    let mut readings = Vec::new();
    let mut max_series = 0;
    let mut max_live = 0;
    for i in 0..keys {
        let key = format!("2001:db8::{i:x}");
        hosts
            .call(&key, || async { Ok::<(), DepError>(()) })
            .await
            .unwrap();
        max_live = max_live.max(hosts.key_count());
        if i % 50 == 49 {
            // The arbiter gets to run the supervisors stopped meanwhile (as a busy program's
            // callers, which wait on I/O, let it).
            settle().await;
        }
        if i % 1_500 == 1_499 {
            // Time moves on: 1 500 keys a millisecond, so the table fills (the last 500 run
            // under the overflow), then its keys are idle and make room.
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        if (i + 1) % CHUNK == 0 {
            // Let the stopped supervisors finish, and the recorder's upkeep run.
            for _ in 0..100 {
                settle().await;
            }
            tokio::time::advance(Duration::from_millis(10)).await;
            settle().await;
            metrics.run_upkeep();
            let text = metrics.render() + &render_key_series(std::slice::from_ref(&hosts));
            max_series = max_series.max(series(&text));
            let rss = rss_kib().unwrap_or(0);
            println!(
                "{:>9} keys: {:>4} live, {:>4} series, RSS {:>7.1} MiB",
                i + 1,
                hosts.key_count(),
                series(&text),
                rss as f64 / 1024.0
            );
            readings.push(rss);
        }
    }
    assert_eq!(max_live, MAX_KEYS as usize, "the table filled");
    let overflow = hosts.overflow().counts().await.unwrap().success;
    assert!(
        overflow >= keys / 4,
        "the overflow took the rest: {overflow}"
    );
    println!("overflow calls: {overflow}; max series: {max_series}");
    // The recorder's series of one service (a fixed set) plus the keyed ones: 32 labeled keys
    // and `_other` (3 outcomes each, and an open gauge per labeled key). Never per key seen.
    let bound = 300 + (LABELED as usize + 1) * 3 + LABELED as usize;
    assert!(max_series <= bound, "{max_series} series (bound {bound})");
    let text = render_key_series(std::slice::from_ref(&hosts));
    assert!(
        text.lines()
            .filter(|l| l.starts_with("warden_key_calls_total"))
            .count()
            <= (LABELED as usize + 1) * 3
    );
    // Memory plateaus: the last reading within 15 % (and 16 MiB) of the one at 20 % of the run.
    if readings.len() >= 5 {
        let early = readings[readings.len() / 5] as f64;
        let last = *readings.last().unwrap() as f64;
        assert!(
            last <= early * 1.15 + 16.0 * 1024.0,
            "RSS grew from {early} KiB to {last} KiB: {readings:?}"
        );
    }
}
