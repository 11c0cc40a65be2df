//! What warden's `tracing` spans cost a call (issue 20, item 4b): the same-thread call of
//! `overhead`'s `call_overhead/warden_same_thread` (an operation that succeeds at once, 5 s
//! timeout, 3 attempts, a breaker after 5 failures) under four subscribers:
//!
//! - `no_subscriber`: none installed (the figure of section 1);
//! - `info_subscriber`: a `tracing-subscriber` registry filtered at `info`, so warden's `debug`
//!   spans are off but a subscriber is asked;
//! - `otel_sampled_out`: `tracing-opentelemetry` over an SDK tracer whose sampler drops every
//!   trace (a production set-up sampling a small share: the cost of the calls not sampled);
//! - `otel_exported`: the same layer sampling every call, spans handed to an exporter that
//!   discards them (the cost of building and ending the call and attempt spans, without I/O).
//!
//! Run: `cargo bench -p warden-comparisons --bench spans`. For instruction counts,
//! `SPANS_PROFILE=<id>:<calls>` runs `calls` calls of one id (after 1 000 warm-up calls) and
//! no criterion, for `valgrind --tool=callgrind`: `(Ir(40 000) − Ir(20 000)) / 20 000`.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use actix::System;
use criterion::{criterion_group, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use warden::prelude::*;

/// The subscribers compared, by id.
const IDS: [&str; 4] = [
    "no_subscriber",
    "info_subscriber",
    "otel_sampled_out",
    "otel_exported",
];

/// An exporter that drops what it is given.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(black_box(batch));
        std::future::ready(Ok(()))
    }
}

/// Installs the subscriber of `id` on this thread; the guard (and the tracer provider) keep
/// it.
fn install(id: &str) -> Option<(DefaultGuard, Option<SdkTracerProvider>)> {
    let otel = |sampler: Sampler| {
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(Discard)
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        Some((guard, Some(provider)))
    };
    match id {
        "no_subscriber" => None,
        "info_subscriber" => {
            let subscriber = tracing_subscriber::registry().with(LevelFilter::INFO);
            Some((tracing::subscriber::set_default(subscriber), None))
        }
        "otel_sampled_out" => otel(Sampler::AlwaysOff),
        "otel_exported" => otel(Sampler::AlwaysOn),
        other => panic!("no benchmark {other}"),
    }
}

/// `n` calls of `id`, after setting up its subscriber and a supervisor; the time they took.
fn run(id: &str, warm_up: u64, n: u64) -> Duration {
    let _installed = install(id);
    let system = System::new();
    let handle = system.block_on(async {
        ServiceSupervisor::builder("bench")
            .timeout(Duration::from_secs(5))
            .retry(RetryConfig::exponential(3, Duration::from_millis(500)))
            .breaker(BreakerConfig::consecutive(5).open_for(Duration::from_secs(30)))
            .start()
            .expect("valid configuration")
    });
    system.block_on(async {
        let once = || async {
            let answer: Result<u64, CallError<std::io::Error>> =
                handle.call(|| async { Ok(1) }).await;
            black_box(answer.expect("call succeeds"));
        };
        for _ in 0..warm_up {
            once().await;
        }
        let start = Instant::now();
        for _ in 0..n {
            once().await;
        }
        start.elapsed()
    })
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("spans");
    for id in IDS {
        group.bench_function(id, |b| b.iter_custom(|n| run(id, 1_000, n)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots();
    targets = spans
}

fn main() {
    match std::env::var("SPANS_PROFILE") {
        Ok(spec) => {
            let (id, calls) = spec.rsplit_once(':').expect("SPANS_PROFILE is id:calls");
            let calls: u64 = calls.parse().expect("calls is a number");
            let took = run(id, 1_000, calls);
            println!(
                "{id}: {calls} calls in {took:?} ({:.1} ns/call)",
                took.as_nanos() as f64 / calls as f64
            );
        }
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
