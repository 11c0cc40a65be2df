//! Per-request cost of `warden::tower::WardenLayer` next to tower-resilience's layers and a
//! bare service, around the same trivial inner service (`tower::service_fn` answering a ready
//! `Ok`), callers on the same thread, `ready().await` then `call().await` per request.
//!
//! Group `tower_layer`:
//! - `bare`: the inner service alone (the floor);
//! - `warden_layer`: `WardenLayer` (one attempt per request, the default for a request that
//!   is not `Clone`);
//! - `warden_layer_retry`: `WardenLayer::retry_requests` (each attempt sends a clone);
//! - `tower_resilience`: tower-resilience 0.13 retry → circuit breaker → time limiter, the
//!   stack `benches/overhead.rs` measures.
//!
//! Group `tower_layer_open`: a request refused by an open breaker (`warden_layer`,
//! `tower_resilience`).
//!
//! Every stack: 5 s per-attempt timeout, 3 attempts with exponential backoff from 500 ms,
//! a breaker tripping after 5 consecutive failures (as in `benches/shared/peer_stacks.rs`).
//! Run: `cargo bench -p warden-comparisons --bench tower_layer`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use criterion::{criterion_group, Criterion};
use std::hint::black_box;
use tower::{Layer, Service, ServiceExt};
use warden::prelude::*;
use warden::tower::WardenLayer;

#[path = "shared/peer_stacks.rs"]
#[allow(dead_code)]
mod peer_stacks;

use peer_stacks::{tower_resilience_stack, DepError, ATTEMPTS, BACKOFF, TIMEOUT, TRIP_AFTER};

fn criterion_config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

type Runner = Box<dyn FnMut(u64) -> Duration>;

/// Runs `$body` (an expression that may `.await`) `n` times on `$runtime` per invocation.
macro_rules! runner_on {
    ($runtime:expr, $body:expr) => {
        Box::new(move |n: u64| {
            $runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..n {
                    $body;
                }
                start.elapsed()
            })
        })
    };
}

/// The inner service: answers `Ok(request)` at once, or `Err` while `fail` is set.
fn inner(
    fail: Arc<AtomicBool>,
) -> impl Service<
    u64,
    Response = u64,
    Error = DepError,
    Future = std::future::Ready<Result<u64, DepError>>,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |request: u64| {
        std::future::ready(if fail.load(Ordering::Relaxed) {
            Err(DepError)
        } else {
            Ok(request)
        })
    })
}

fn warden_handle(open_for: Duration, backoff: Duration) -> ServiceHandle {
    ServiceSupervisor::builder("bench")
        .timeout(TIMEOUT)
        .retry(RetryConfig::exponential(ATTEMPTS, backoff))
        .breaker(BreakerConfig::consecutive(TRIP_AFTER).open_for(open_for))
        .start()
        .expect("valid configuration")
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bare() -> Runner {
    let runtime = current_thread_runtime();
    let mut service = inner(Arc::new(AtomicBool::new(false)));
    runner_on!(runtime, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect("answered"))
    })
}

fn warden_layer() -> Runner {
    let system = System::new();
    let mut service = system.block_on(async {
        WardenLayer::new(warden_handle(Duration::from_secs(30), BACKOFF))
            .layer(inner(Arc::new(AtomicBool::new(false))))
    });
    runner_on!(system, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect("answered"))
    })
}

fn warden_layer_retry() -> Runner {
    let system = System::new();
    let mut service = system.block_on(async {
        WardenLayer::new(warden_handle(Duration::from_secs(30), BACKOFF))
            .retry_requests()
            .layer(inner(Arc::new(AtomicBool::new(false))))
    });
    runner_on!(system, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect("answered"))
    })
}

fn tower_resilience() -> Runner {
    let runtime = current_thread_runtime();
    let never = Arc::new(AtomicBool::new(false));
    let mut service = runtime.block_on(async {
        let operation = move || {
            std::future::ready(if never.load(Ordering::Relaxed) {
                Err(DepError)
            } else {
                Ok(1)
            })
        };
        tower_resilience_stack::build(operation, BACKOFF, Duration::from_secs(30))
    });
    runner_on!(runtime, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect("answered"))
    })
}

const OPEN_AN_HOUR: Duration = Duration::from_secs(3600);
const FAST_BACKOFF: Duration = Duration::from_millis(1);

fn warden_layer_open() -> Runner {
    let system = System::new();
    let fail = Arc::new(AtomicBool::new(true));
    let mut service = system.block_on(async {
        let handle = warden_handle(OPEN_AN_HOUR, FAST_BACKOFF);
        let mut service = WardenLayer::new(handle.clone()).layer(inner(fail));
        while !handle.is_open() {
            let _ = service.ready().await.expect("ready").call(1).await;
        }
        service
    });
    runner_on!(system, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect_err("refused"))
    })
}

fn tower_resilience_open() -> Runner {
    let runtime = current_thread_runtime();
    let fail = Arc::new(AtomicBool::new(true));
    let mut service = runtime.block_on(async {
        let failing = fail.clone();
        let operation = move || {
            std::future::ready(if failing.load(Ordering::Relaxed) {
                Err(DepError)
            } else {
                Ok(1)
            })
        };
        let mut service = tower_resilience_stack::build(operation, FAST_BACKOFF, OPEN_AN_HOUR);
        for _ in 0..TRIP_AFTER {
            let _ = service.ready().await.expect("ready").call(1).await;
        }
        service
    });
    runner_on!(runtime, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect_err("refused"))
    })
}

type Benchmark = (&'static str, &'static str, fn() -> Runner);

const BENCHMARKS: &[Benchmark] = &[
    ("tower_layer", "bare", bare),
    ("tower_layer", "warden_layer", warden_layer),
    ("tower_layer", "warden_layer_retry", warden_layer_retry),
    ("tower_layer", "tower_resilience", tower_resilience),
    ("tower_layer_open", "warden_layer", warden_layer_open),
    (
        "tower_layer_open",
        "tower_resilience",
        tower_resilience_open,
    ),
];

fn run_group(c: &mut Criterion, group_name: &str) {
    let mut group = c.benchmark_group(group_name);
    for (_, id, setup) in BENCHMARKS.iter().filter(|(g, _, _)| *g == group_name) {
        let mut run = setup();
        group.bench_function(*id, |b| b.iter_custom(&mut run));
    }
    group.finish();
}

fn tower_layer(c: &mut Criterion) {
    run_group(c, "tower_layer");
}

fn tower_layer_open(c: &mut Criterion) {
    run_group(c, "tower_layer_open");
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = tower_layer, tower_layer_open
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
