//! Scale: memory per idle supervisor, time to start many, and the cost of a call when many
//! supervisors are alive.
//!
//! Not a criterion benchmark (memory and start-up are one-shot measurements): a plain program
//! run by `cargo bench -p warden-comparisons --bench scale`, printing a table (and `--json PATH`
//! for the figures).
//!
//! - **memory**: RSS (`VmRSS` of /proc/self/status) before and after starting `--supervisors`
//!   (default 100 000) supervisors with the default configuration, divided by their number; the
//!   handles are kept (a program needs them). Then once more after one call to each (windows
//!   allocated on first use).
//! - **start**: time to build and start them (`start()` returns at once), and until every one
//!   has run its `started` (awaited through a query to the last one: actors start in order on
//!   one arbiter).
//! - **per call**: a successful call (default configuration) to one supervisor, against calls
//!   spread round-robin over `--live` (default 10 000) live supervisors, on the same arbiter.
//!
//! Options: `--supervisors N`, `--live N`, `--calls N` (per measurement, default 200 000),
//! `--json PATH`.

use std::time::{Duration, Instant};

use actix::System;
use warden::prelude::*;

#[derive(Debug)]
struct Options {
    supervisors: usize,
    live: usize,
    calls: usize,
    json: Option<String>,
}

fn options() -> Options {
    let mut options = Options {
        supervisors: 100_000,
        live: 10_000,
        calls: 200_000,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--supervisors" => options.supervisors = value().parse().expect("a number"),
            "--live" => options.live = value().parse().expect("a number"),
            "--calls" => options.calls = value().parse().expect("a number"),
            "--json" => options.json = Some(value()),
            // `cargo bench` passes `--bench`; criterion-style filters are ignored.
            _ => {}
        }
    }
    options
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

fn start_many(count: usize, prefix: &str) -> Vec<ServiceHandle> {
    (0..count)
        .map(|i| {
            ServiceSupervisor::builder(format!("{prefix}-{i}"))
                .start()
                .expect("valid configuration")
        })
        .collect()
}

async fn call(handle: &ServiceHandle) {
    let value: Result<u64, CallError<()>> = handle.call(|| async { Ok(1) }).await;
    std::hint::black_box(value.expect("call succeeds"));
}

/// Nanoseconds per call over `calls` calls spread round-robin over `handles`.
async fn per_call(handles: &[ServiceHandle], calls: usize) -> f64 {
    // Warm up every supervisor once (windows allocated), then measure.
    for handle in handles {
        call(handle).await;
    }
    let start = Instant::now();
    for i in 0..calls {
        call(&handles[i % handles.len()]).await;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let options = options();
    let system = System::new();
    let figures = system.block_on(async {
        // Memory and start-up.
        let before = rss_bytes();
        let started = Instant::now();
        let handles = start_many(options.supervisors, "idle");
        let built = started.elapsed();
        let last = handles.last().expect("at least one supervisor");
        last.counts().await.expect("supervisor alive");
        let running = started.elapsed();
        let after_start = rss_bytes();
        for handle in &handles {
            call(handle).await;
        }
        let after_one_call = rss_bytes();
        let per_idle = after_start.saturating_sub(before) as f64 / options.supervisors as f64;
        let per_used = after_one_call.saturating_sub(before) as f64 / options.supervisors as f64;
        drop(handles);
        // Let the supervisors notice their handles are gone and stop.
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Per-call cost: one supervisor, then many.
        let one = start_many(1, "one");
        let live = start_many(options.live, "live");
        let mut one_ns = Vec::new();
        let mut live_ns = Vec::new();
        for _ in 0..3 {
            one_ns.push(per_call(&one, options.calls).await);
            live_ns.push(per_call(&live, options.calls).await);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Figures {
            supervisors: options.supervisors,
            rss_before_bytes: before,
            bytes_per_idle_supervisor: per_idle,
            bytes_per_supervisor_after_one_call: per_used,
            start_calls_ms: built.as_secs_f64() * 1e3,
            start_until_running_ms: running.as_secs_f64() * 1e3,
            live: options.live,
            call_one_ns: median(&mut one_ns),
            call_live_ns: median(&mut live_ns),
        }
    });
    println!("{}", figures.table());
    if let Some(path) = options.json {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&figures).expect("figures serialize"),
        )
        .expect("write the JSON file");
        println!("wrote {path}");
    }
}

/// What the program measured.
#[derive(Debug, serde::Serialize)]
struct Figures {
    supervisors: usize,
    rss_before_bytes: u64,
    bytes_per_idle_supervisor: f64,
    bytes_per_supervisor_after_one_call: f64,
    start_calls_ms: f64,
    start_until_running_ms: f64,
    live: usize,
    call_one_ns: f64,
    call_live_ns: f64,
}

impl Figures {
    fn table(&self) -> String {
        let n = self.supervisors;
        [
            "| measure | value |".to_string(),
            "|---|---|".to_string(),
            format!(
                "| memory per idle supervisor (RSS delta / {n}) | {:.0} B ({:.2} KiB) |",
                self.bytes_per_idle_supervisor,
                self.bytes_per_idle_supervisor / 1024.0
            ),
            format!(
                "| memory per supervisor after one call each | {:.0} B ({:.2} KiB) |",
                self.bytes_per_supervisor_after_one_call,
                self.bytes_per_supervisor_after_one_call / 1024.0
            ),
            format!(
                "| start {n}: `start()` calls | {:.0} ms |",
                self.start_calls_ms
            ),
            format!(
                "| start {n}: until all running | {:.0} ms |",
                self.start_until_running_ms
            ),
            format!("| call, 1 live supervisor | {:.0} ns |", self.call_one_ns),
            format!(
                "| call, round-robin over {} live supervisors | {:.0} ns |",
                self.live, self.call_live_ns
            ),
        ]
        .join("\n")
    }
}
