//! Cost of one call through a resilience stack, side by side.
//!
//! Group `call_overhead`: timeout + retry + circuit breaker around an operation that succeeds at
//! once, in every stack:
//!
//! - `warden_same_thread`: the caller runs inside an actix system, on the supervisor's arbiter
//!   (the call runs in the caller's task: no message on success);
//! - `warden_cross_thread/1` and `/64`: callers on a 2-worker tokio multi-thread runtime, the
//!   supervisor on its own arbiter thread of a [`BackgroundRuntime`]; one caller, or 64 calls in
//!   flight (time per call, amortised). Since calls run in the caller's task, nothing crosses
//!   threads on success but the batched outcome reports (one wake-up per millisecond at most);
//! - `actix_bare_send`: an empty actix message round trip on the same thread (the floor of an
//!   actor-per-dependency design);
//! - `tower_resilience`: tower-resilience 0.13 retry → circuit breaker → time limiter layers;
//! - `failsafe_backon`: backon 1.6 retry → failsafe 1.3 breaker → tokio timeout;
//! - `tower_recloser`: tower retry with a `TpsBudget` → recloser 1.4 → tower timeout.
//!
//! Group `fast_fail_open`: the cost of a call refused by an open breaker (`warden` and the three
//! peers, callers on the same thread).
//!
//! Every stack is configured alike: 5 s per-attempt timeout, 3 attempts with exponential backoff
//! from 500 ms (×2), a breaker tripping after 5 consecutive failures. For `fast_fail_open` the
//! backoff starts at 1 ms (the breaker is tripped by real failing calls before measuring) and the
//! breaker stays open for an hour.
//!
//! Run: `cargo bench -p warden-comparisons --bench overhead`. The tokio clock is never paused
//! here, so `tokio::time::Instant::now()` takes its fast path even though this package enables
//! tokio's `test-util`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use criterion::{criterion_group, Criterion};
use std::hint::black_box;
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Service, ServiceBuilder, ServiceExt};
use warden::actors::BackgroundRuntime;
use warden::prelude::*;

#[path = "shared/peer_stacks.rs"]
mod peer_stacks;

use peer_stacks::{
    failsafe_backon_stack, tower_resilience_stack, DepError, ATTEMPTS, BACKOFF, TIMEOUT, TRIP_AFTER,
};

/// An operation that fails while `fail` is set, at once either way.
fn fails_while(
    fail: Arc<AtomicBool>,
) -> impl Fn() -> std::future::Ready<Result<u64, DepError>> + Clone + Send + Sync + 'static {
    move || {
        std::future::ready(if fail.load(Ordering::Relaxed) {
            Err(DepError)
        } else {
            Ok(1)
        })
    }
}

fn criterion_config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

/// Runs `n` calls of one stack (set up beforehand) and returns the time they took.
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

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// warden

fn warden_builder(backoff: Duration, open_for: Duration) -> SupervisorBuilder {
    ServiceSupervisor::builder("bench")
        .timeout(TIMEOUT)
        .retry(RetryConfig::exponential(ATTEMPTS, backoff))
        .breaker(BreakerConfig::consecutive(TRIP_AFTER).open_for(open_for))
}

async fn warden_ok(handle: &ServiceHandle) -> Result<u64, CallError<DepError>> {
    handle.call(|| async { Ok(1) }).await
}

fn warden_same_thread() -> Runner {
    let system = System::new();
    let handle = system.block_on(async {
        warden_builder(BACKOFF, Duration::from_secs(30))
            .start()
            .expect("valid configuration")
    });
    runner_on!(
        system,
        black_box(warden_ok(&handle).await.expect("call succeeds"))
    )
}

/// Callers on a 2-worker tokio runtime, `in_flight` of them, the supervisor on a background
/// arbiter.
fn warden_cross_thread(in_flight: u64) -> Runner {
    let background = BackgroundRuntime::start(1).expect("background runtime");
    let handle = warden_builder(BACKOFF, Duration::from_secs(30))
        .start_in_arbiter(background.arbiter(0))
        .expect("valid configuration");
    let runtime = multi_thread_runtime();
    Box::new(move |n: u64| {
        // Keeps the supervisor's threads alive as long as the runner.
        let _background = &background;
        runtime.block_on(async {
            let start = Instant::now();
            let callers: Vec<_> = (0..in_flight)
                .map(|caller| {
                    // Spread the `n` calls over the callers.
                    let calls = n / in_flight + u64::from(caller < n % in_flight);
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        for _ in 0..calls {
                            black_box(warden_ok(&handle).await.expect("call succeeds"));
                        }
                    })
                })
                .collect();
            for caller in callers {
                caller.await.expect("caller task");
            }
            start.elapsed()
        })
    })
}

// ---------------------------------------------------------------------------------------------
// actix floor

struct Echo;

impl Actor for Echo {
    type Context = actix::Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Ping;

impl Handler<Ping> for Echo {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Self::Context) {}
}

fn actix_bare_send() -> Runner {
    let system = System::new();
    let addr = system.block_on(async { Echo.start() });
    runner_on!(system, addr.send(Ping).await.expect("echo alive"))
}

// ---------------------------------------------------------------------------------------------
// tower retry (TpsBudget) + recloser + tower timeout

#[path = "shared/recloser_service.rs"]
mod recloser_service;

mod tower_recloser_stack {
    use super::*;
    use recloser::{AsyncRecloser, Recloser};

    pub(super) use super::recloser_service::{RecloserService, StackError};

    /// Retries up to `ATTEMPTS` attempts with exponential backoff, within a shared budget.
    #[derive(Clone)]
    pub(super) struct BudgetedRetry {
        budget: Arc<TpsBudget>,
        backoff: Duration,
        attempts: u32,
    }

    impl BudgetedRetry {
        pub(super) fn new(backoff: Duration) -> Self {
            BudgetedRetry {
                // warden's default budget: 20 % of calls, at least 10 retries/s, over 10 s.
                budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
                backoff,
                attempts: 1,
            }
        }
    }

    impl<Res> tower::retry::Policy<u64, Res, StackError> for BudgetedRetry {
        type Future = tokio::time::Sleep;

        fn retry(
            &mut self,
            _request: &mut u64,
            result: &mut Result<Res, StackError>,
        ) -> Option<Self::Future> {
            match result {
                Ok(_) => {
                    self.budget.deposit();
                    None
                }
                Err(recloser::Error::Rejected) => None,
                Err(recloser::Error::Inner(_)) => {
                    if self.attempts >= ATTEMPTS || !self.budget.withdraw() {
                        return None;
                    }
                    let delay = self.backoff * 2u32.pow(self.attempts - 1);
                    self.attempts += 1;
                    Some(tokio::time::sleep(delay))
                }
            }
        }

        fn clone_request(&mut self, request: &u64) -> Option<u64> {
            Some(*request)
        }
    }

    pub(super) fn build(
        fail: Arc<AtomicBool>,
        backoff: Duration,
        open_for: Duration,
    ) -> impl Service<u64, Response = u64, Error = StackError> + Clone {
        // A ring of 5 at 100 % failure rate = 5 consecutive failures.
        let breaker = Recloser::custom()
            .error_rate(1.0)
            .closed_len(TRIP_AFTER as usize)
            .half_open_len(1)
            .open_wait(open_for)
            .build();
        let inner = ServiceBuilder::new()
            .timeout(TIMEOUT)
            .service(tower::service_fn(move |request: u64| {
                let fail = fail.load(Ordering::Relaxed);
                async move {
                    if fail {
                        Err(DepError)
                    } else {
                        Ok(request)
                    }
                }
            }));
        ServiceBuilder::new()
            .retry(BudgetedRetry::new(backoff))
            .service(RecloserService::new(
                inner,
                Arc::new(AsyncRecloser::from(breaker)),
            ))
    }
}

fn tower_resilience() -> Runner {
    let runtime = current_thread_runtime();
    let never = Arc::new(AtomicBool::new(false));
    let mut service = runtime.block_on(async {
        tower_resilience_stack::build(fails_while(never), BACKOFF, Duration::from_secs(30))
    });
    runner_on!(runtime, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect("call succeeds"))
    })
}

fn failsafe_backon() -> Runner {
    let runtime = current_thread_runtime();
    let breaker = failsafe_backon_stack::breaker(Duration::from_secs(30));
    runner_on!(runtime, {
        let value = failsafe_backon_stack::call(&breaker, BACKOFF, || async { Ok(1) }).await;
        black_box(value.expect("call succeeds"))
    })
}

fn tower_recloser() -> Runner {
    let runtime = current_thread_runtime();
    let never = Arc::new(AtomicBool::new(false));
    let mut service = tower_recloser_stack::build(never, BACKOFF, Duration::from_secs(30));
    runner_on!(runtime, {
        let ready = service.ready().await.expect("ready");
        black_box(ready.call(1).await.expect("call succeeds"))
    })
}

// ---------------------------------------------------------------------------------------------
// fast fail while open

const FAST_BACKOFF: Duration = Duration::from_millis(1);
const OPEN_AN_HOUR: Duration = Duration::from_secs(3600);

/// warden tripped by failing calls; then every call is refused by the handle.
fn warden_open() -> Runner {
    let system = System::new();
    let handle = system.block_on(async {
        let handle = warden_builder(FAST_BACKOFF, OPEN_AN_HOUR)
            .start()
            .expect("valid configuration");
        while !matches!(
            handle.call(|| async { Err::<u64, _>(DepError) }).await,
            Err(CallError::Open { .. })
        ) {}
        let status = handle.breaker_status().await.expect("supervisor alive");
        assert_eq!(status.state, BreakerState::Open);
        handle
    });
    runner_on!(system, {
        let refused = warden_ok(&handle).await;
        assert!(matches!(refused, Err(CallError::Open { .. })));
    })
}

fn tower_resilience_open() -> Runner {
    let runtime = current_thread_runtime();
    let fail = Arc::new(AtomicBool::new(true));
    let mut service = runtime.block_on(async {
        let mut service =
            tower_resilience_stack::build(fails_while(fail), FAST_BACKOFF, OPEN_AN_HOUR);
        loop {
            let answer = service.ready().await.expect("ready").call(1).await;
            if matches!(answer, Err(ref e) if e.is_circuit_open()) {
                break service;
            }
        }
    });
    runner_on!(runtime, {
        let refused = service.ready().await.expect("ready").call(1).await;
        assert!(matches!(refused, Err(ref e) if e.is_circuit_open()));
    })
}

fn failsafe_backon_open() -> Runner {
    use failsafe_backon_stack::StackError;
    let runtime = current_thread_runtime();
    let breaker = failsafe_backon_stack::breaker(OPEN_AN_HOUR);
    runtime.block_on(async {
        while !matches!(
            failsafe_backon_stack::call(&breaker, FAST_BACKOFF, || async { Err(DepError) }).await,
            Err(StackError::Rejected)
        ) {}
    });
    runner_on!(runtime, {
        let refused = failsafe_backon_stack::call(&breaker, FAST_BACKOFF, || async { Ok(1) }).await;
        assert!(matches!(refused, Err(StackError::Rejected)));
    })
}

fn tower_recloser_open() -> Runner {
    let runtime = current_thread_runtime();
    let fail = Arc::new(AtomicBool::new(true));
    let mut service = runtime.block_on(async {
        let mut service = tower_recloser_stack::build(fail, FAST_BACKOFF, OPEN_AN_HOUR);
        loop {
            let answer = service.ready().await.expect("ready").call(1).await;
            if matches!(answer, Err(recloser::Error::Rejected)) {
                break service;
            }
        }
    });
    runner_on!(runtime, {
        let refused = service.ready().await.expect("ready").call(1).await;
        assert!(matches!(refused, Err(recloser::Error::Rejected)));
    })
}

// ---------------------------------------------------------------------------------------------
// registry of benchmarks, criterion entry points, profiling mode

/// A benchmark: group, id, and how to set it up.
type Benchmark = (&'static str, &'static str, fn() -> Runner);

/// Every benchmark.
const BENCHMARKS: &[Benchmark] = &[
    ("call_overhead", "warden_same_thread", warden_same_thread),
    ("call_overhead", "warden_cross_thread/1", || {
        warden_cross_thread(1)
    }),
    ("call_overhead", "warden_cross_thread/64", || {
        warden_cross_thread(64)
    }),
    ("call_overhead", "actix_bare_send", actix_bare_send),
    ("call_overhead", "tower_resilience", tower_resilience),
    ("call_overhead", "failsafe_backon", failsafe_backon),
    ("call_overhead", "tower_recloser", tower_recloser),
    ("fast_fail_open", "warden", warden_open),
    ("fast_fail_open", "tower_resilience", tower_resilience_open),
    ("fast_fail_open", "failsafe_backon", failsafe_backon_open),
    ("fast_fail_open", "tower_recloser", tower_recloser_open),
];

fn run_group(c: &mut Criterion, group_name: &str) {
    let mut group = c.benchmark_group(group_name);
    for (_, id, setup) in BENCHMARKS.iter().filter(|(g, _, _)| *g == group_name) {
        let mut run = setup();
        group.bench_function(*id, |b| b.iter_custom(&mut run));
    }
    group.finish();
}

fn call_overhead(c: &mut Criterion) {
    run_group(c, "call_overhead");
}

fn fast_fail_open(c: &mut Criterion) {
    run_group(c, "fast_fail_open");
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = call_overhead, fast_fail_open
}

/// `OVERHEAD_PROFILE=group/id:calls cargo bench -p warden-comparisons --bench overhead` runs
/// exactly `calls` calls of one benchmark (after 1 000 warm-up calls) and no criterion, for
/// `valgrind --tool=callgrind`:
/// the difference between two call counts divided by the difference in calls is the instruction
/// count of one call, independent of machine load.
fn profile(spec: &str) {
    let (name, calls) = spec
        .rsplit_once(':')
        .expect("OVERHEAD_PROFILE is group/id:calls");
    let calls: u64 = calls.parse().expect("calls is a number");
    let (_, _, setup) = BENCHMARKS
        .iter()
        .find(|(group, id, _)| format!("{group}/{id}") == name)
        .unwrap_or_else(|| panic!("no benchmark {name}"));
    let mut run = setup();
    run(1_000);
    let took = run(calls);
    println!(
        "{name}: {calls} calls in {took:?} ({:.1} ns/call)",
        took.as_nanos() as f64 / calls as f64
    );
}

fn main() {
    match std::env::var("OVERHEAD_PROFILE") {
        Ok(spec) => profile(&spec),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
