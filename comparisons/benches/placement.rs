//! What a caller on a **plain multi-thread tokio runtime** (2 workers, as `#[tokio::main]`
//! builds it; not inside an actix `System`) pays per call through each stack, same work for all:
//! per-attempt timeout 5 s, a breaker opening after 5 consecutive failures, and (where the stack
//! has retries) 3 attempts with exponential backoff from 500 ms.
//!
//! Stacks:
//! - `none`: the operation awaited directly;
//! - `warden`: `ServiceSupervisor::builder("dep")…start_in_arbiter(runtime.arbiter(0))` on a
//!   `BackgroundRuntime::start(1)`, called with `handle.call(|| async {…})`;
//! - `failsafe`: backon 1.6 retry → failsafe 1.3 breaker → `tokio::time::timeout`;
//! - `tower_resilience`: tower-resilience 0.13 retry → circuit breaker → time limiter.
//!
//! The peers are built by `benches/shared/peer_stacks.rs`, as in `benches/overhead.rs`.
//!
//! Scenarios, every stack each, callers spawned as tasks on the runtime (a server's handlers
//! are tasks on its workers):
//! - `ready`: one caller back to back, the operation returns `Ok` at once: p50 / p99 per call;
//! - `pending_once`: the same, the operation yields once (`tokio::task::yield_now`) first;
//! - `cpu_64`: 64 callers, each operation burns ≈ 20 µs of CPU (a spin loop calibrated at
//!   start): calls/s over a fixed number of calls, median over runs, and the cores the process
//!   kept busy meanwhile (its CPU time ÷ wall time, from `/proc/self/stat`);
//! - `http`: one caller, the operation is a keep-alive `reqwest` GET to a hyper 1 server on
//!   127.0.0.1 (its own thread and current-thread runtime): p50 / p99;
//! - `trip_lag` (warden only; one attempt per call, no retry): 8 callers back to back; the
//!   operation starts failing at a switch; counts the operation's invocations that began after
//!   the 5th failure had been answered to its caller ("calls admitted after the trip was
//!   decided"), and every failing invocation (a breaker that decides as each failure happens
//!   admits exactly 5), over several rounds. Every loop is bounded in calls and time.
//!
//! Every scenario runs in rounds (10 in full mode); each round builds every stack afresh and
//! measures the stacks one after the other, starting with a different one each round, so a
//! burst of load from elsewhere spreads over all of them (`http`: 3 runs per round, each with a
//! new client and so a new connection). Latencies are pooled over the runs; the table also
//! gives each run's p50 (min / median / max), which shows how noisy a figure is. Each latency
//! is one call timed with `std::time::Instant` around the `.await` (two clock reads, ≈ 20–30 ns
//! here, in every figure, `none` included). Criterion benchmarks `placement/ready/<stack>` give
//! the mean of the `ready` scenario as well.
//!
//! Run: `cargo bench -p warden-comparisons --bench placement`. `PLACEMENT_QUICK=1`, or
//! criterion's `--quick` / `--test`, or running without `--bench` (as `cargo test --benches`
//! does) makes every count small (a few seconds in all). `PLACEMENT_JSON=path` also writes the
//! figures as JSON.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use serde_json::json;
use tower::{Service, ServiceExt};
use warden::actors::BackgroundRuntime;
use warden::prelude::*;

#[path = "shared/http_server.rs"]
mod http_server;
#[path = "shared/peer_stacks.rs"]
mod peer_stacks;

use http_server::start_http_server;

use peer_stacks::{
    failsafe_backon_stack, tower_resilience_stack, DepError, ATTEMPTS, BACKOFF, TIMEOUT, TRIP_AFTER,
};

/// How long every breaker stays open once tripped.
const OPEN_FOR: Duration = Duration::from_secs(30);
/// Worker threads of the callers' runtime.
const WORKERS: usize = 2;
/// CPU time one `cpu_64` operation burns.
const CPU_WORK: Duration = Duration::from_micros(20);
/// Caller tasks in `cpu_64`.
const CPU_CALLERS: usize = 64;
/// Caller tasks in `trip_lag`.
const TRIP_CALLERS: usize = 8;
/// A `trip_lag` round ends this long after it started, tripped or not.
const TRIP_ROUND_LIMIT: Duration = Duration::from_secs(5);
/// A `trip_lag` call not answered within this is counted as hung and ends its caller.
const TRIP_CALL_LIMIT: Duration = Duration::from_secs(2);
/// Bound on the calls of one `trip_lag` caller in one round.
const TRIP_MAX_CALLS: usize = 1_000_000;

/// The order of the columns and rows.
const STACKS: [StackKind; 4] = [
    StackKind::None,
    StackKind::Warden,
    StackKind::Failsafe,
    StackKind::TowerResilience,
];

// ---------------------------------------------------------------------------------------------
// settings

/// How many calls each measurement makes. Every scenario runs in `rounds` rounds; each round
/// builds every stack afresh and measures them one after the other, starting with a different
/// stack each round, so that a burst of load from elsewhere on the machine spreads over all
/// stacks rather than falling on one. Latencies are pooled over the runs.
#[derive(Debug, Clone, Copy)]
struct Settings {
    quick: bool,
    rounds: usize,
    /// Unmeasured calls per round before `ready` and `pending_once`.
    warmup: usize,
    /// Measured calls per round of `ready` and `pending_once`.
    calls: usize,
    /// `http` runs per round and stack, each with a new client (so a new connection): where
    /// tokio places the connection's task decides much of an `http` call's latency.
    http_connections: usize,
    /// Unmeasured and measured calls of one `http` run.
    http_warmup: usize,
    http_calls: usize,
    /// Calls of each of the 64 callers in one `cpu_64` run (one run per round, after a warm-up
    /// run of a fifth of that).
    cpu_calls_per_caller: usize,
    /// Traffic before the switch in each `trip_lag` round.
    trip_settle: Duration,
    trip_rounds: usize,
}

impl Settings {
    fn full() -> Self {
        Settings {
            quick: false,
            rounds: 10,
            warmup: 300,
            calls: 3_000,
            http_connections: 3,
            http_warmup: 30,
            http_calls: 200,
            cpu_calls_per_caller: 500,
            trip_settle: Duration::from_millis(20),
            trip_rounds: 20,
        }
    }

    fn quick() -> Self {
        Settings {
            quick: true,
            rounds: 1,
            warmup: 100,
            calls: 1_000,
            http_connections: 1,
            http_warmup: 30,
            http_calls: 300,
            cpu_calls_per_caller: 20,
            trip_settle: Duration::from_millis(5),
            trip_rounds: 3,
        }
    }
}

fn criterion_config(quick: bool) -> Criterion {
    let criterion = Criterion::default().without_plots();
    if quick {
        criterion
            .sample_size(10)
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(300))
    } else {
        criterion
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
    }
}

// ---------------------------------------------------------------------------------------------
// the stacks, behind one calling interface

/// One stack around one operation, ready to be called; clones share the stack's state.
trait Caller: Clone + Send + 'static {
    /// One call through the stack: the operation's value, or why not.
    fn call(&mut self) -> impl Future<Output = Result<u64, String>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackKind {
    None,
    Warden,
    Failsafe,
    TowerResilience,
}

impl StackKind {
    fn name(self) -> &'static str {
        match self {
            StackKind::None => "none",
            StackKind::Warden => "warden",
            StackKind::Failsafe => "failsafe",
            StackKind::TowerResilience => "tower_resilience",
        }
    }
}

/// The operation awaited directly.
#[derive(Clone)]
struct Direct<Op>(Op);

impl<Op, Fut> Caller for Direct<Op>
where
    Op: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, DepError>> + Send + 'static,
{
    fn call(&mut self) -> impl Future<Output = Result<u64, String>> + Send {
        let operation = (self.0)();
        async move { operation.await.map_err(|e| e.to_string()) }
    }
}

/// Through a warden supervisor's handle.
#[derive(Clone)]
struct Warden<Op> {
    handle: ServiceHandle,
    operation: Op,
}

impl<Op, Fut> Caller for Warden<Op>
where
    Op: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, DepError>> + Send + 'static,
{
    async fn call(&mut self) -> Result<u64, String> {
        self.handle
            .call(self.operation.clone())
            .await
            .map_err(|e| format!("{e:?}"))
    }
}

/// backon retry → failsafe breaker → tokio timeout.
#[derive(Clone)]
struct Failsafe<Op> {
    breaker: failsafe_backon_stack::Breaker,
    operation: Op,
}

impl<Op, Fut> Caller for Failsafe<Op>
where
    Op: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, DepError>> + Send + 'static,
{
    async fn call(&mut self) -> Result<u64, String> {
        failsafe_backon_stack::call(&self.breaker, BACKOFF, &self.operation)
            .await
            .map_err(|e| format!("{e:?}"))
    }
}

/// A tower service (tower-resilience's layers).
#[derive(Clone)]
struct Tower<S>(S);

impl<S> Caller for Tower<S>
where
    S: Service<u64, Response = u64, Error = tower_resilience_stack::StackError, Future: Send>
        + Clone
        + Send
        + 'static,
{
    async fn call(&mut self) -> Result<u64, String> {
        let ready = self.0.ready().await.map_err(|e| format!("{e:?}"))?;
        ready.call(1).await.map_err(|e| format!("{e:?}"))
    }
}

/// What runs the measurements: the callers' runtime and warden's background actix system.
struct Env {
    runtime: tokio::runtime::Runtime,
    background: BackgroundRuntime,
}

impl Env {
    fn new() -> Self {
        Env {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .enable_all()
                .build()
                .expect("tokio runtime"),
            background: BackgroundRuntime::start(1).expect("background actix runtime"),
        }
    }

    /// The warden supervisor every scenario uses (`trip_lag` has its own).
    fn warden(&self) -> ServiceHandle {
        ServiceSupervisor::builder("dep")
            .timeout(TIMEOUT)
            .retry(RetryConfig::exponential(ATTEMPTS, BACKOFF))
            .breaker(BreakerConfig::consecutive(TRIP_AFTER).open_for(OPEN_FOR))
            .start_in_arbiter(self.background.arbiter(0))
            .expect("valid configuration")
    }
}

/// A measurement, run against whichever stack [`with_stack`] builds.
trait Measure {
    type Output;
    fn run<C: Caller>(self, caller: C) -> Self::Output;
}

/// Builds a fresh `kind` stack around `operation` and runs `measure` against it.
fn with_stack<Op, Fut, M>(env: &Env, kind: StackKind, operation: Op, measure: M) -> M::Output
where
    Op: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, DepError>> + Send + 'static,
    M: Measure,
{
    match kind {
        StackKind::None => measure.run(Direct(operation)),
        StackKind::Warden => {
            let handle = env.warden();
            let output = measure.run(Warden {
                handle: handle.clone(),
                operation,
            });
            // Already gone is as good as stopped.
            let _ = env.runtime.block_on(handle.stop());
            output
        }
        StackKind::Failsafe => measure.run(Failsafe {
            breaker: failsafe_backon_stack::breaker(OPEN_FOR),
            operation,
        }),
        StackKind::TowerResilience => {
            let service = {
                let _inside = env.runtime.enter();
                tower_resilience_stack::build(operation, BACKOFF, OPEN_FOR)
            };
            measure.run(Tower(service))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// operations

/// `ready`: the operation answers at once.
async fn ready() -> Result<u64, DepError> {
    Ok(1)
}

/// `pending_once`: the operation yields to the scheduler once, then answers.
async fn pending_once() -> Result<u64, DepError> {
    tokio::task::yield_now().await;
    Ok(1)
}

/// `iterations` rounds of integer arithmetic the optimiser cannot remove.
fn spin(iterations: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// Spin iterations that take `target` on this machine, and what one operation then measures.
fn calibrate_spin(target: Duration) -> (u64, Duration) {
    const PROBE: u64 = 200_000;
    let fastest = (0..7)
        .map(|_| {
            let start = Instant::now();
            black_box(spin(black_box(PROBE)));
            start.elapsed()
        })
        .min()
        .expect("seven probes");
    let iterations = (target.as_nanos() * u128::from(PROBE) / fastest.as_nanos().max(1)) as u64;
    let mut samples: Vec<Duration> = (0..200)
        .map(|_| {
            let start = Instant::now();
            black_box(spin(black_box(iterations)));
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    (iterations.max(1), samples[samples.len() / 2])
}

/// `cpu_64`: the operation burns CPU when polled, wherever the stack polls it.
async fn burn(iterations: u64) -> Result<u64, DepError> {
    Ok(spin(black_box(iterations)))
}

/// A client with its own keep-alive connection pool (one per stack), never through a proxy.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

/// `http`: one keep-alive GET; the body's length.
async fn http_get(client: reqwest::Client, url: Arc<str>) -> Result<u64, DepError> {
    let response = client.get(&*url).send().await.map_err(|_| DepError)?;
    if !response.status().is_success() {
        return Err(DepError);
    }
    let body = response.bytes().await.map_err(|_| DepError)?;
    Ok(body.len() as u64)
}

// ---------------------------------------------------------------------------------------------
// measurements

/// Per-call latencies in nanoseconds (sorted once every round is in).
#[derive(Debug, Clone, Default)]
struct Latencies {
    sorted_ns: Vec<u64>,
    /// The p50 of each run (a fresh stack) on its own, in the order measured: their spread
    /// shows the noise.
    round_p50_ns: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
}

impl Latencies {
    /// Adds another round's calls.
    fn absorb(&mut self, mut round: Latencies) {
        round.sorted_ns.sort_unstable();
        self.round_p50_ns.push(round.percentile(50.0));
        self.sorted_ns.extend(round.sorted_ns);
        self.errors += round.errors;
        if self.first_error.is_none() {
            self.first_error = round.first_error;
        }
    }

    /// Nearest-rank percentile (of sorted samples).
    fn percentile(&self, p: f64) -> u64 {
        let n = self.sorted_ns.len();
        if n == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.sorted_ns[rank.clamp(1, n) - 1]
    }

    fn mean(&self) -> f64 {
        if self.sorted_ns.is_empty() {
            return 0.0;
        }
        self.sorted_ns.iter().map(|&ns| ns as f64).sum::<f64>() / self.sorted_ns.len() as f64
    }
}

/// One caller task, `warmup` calls, then `calls` calls each timed.
struct LatencyRun<'a> {
    env: &'a Env,
    warmup: usize,
    calls: usize,
}

impl Measure for LatencyRun<'_> {
    type Output = Latencies;

    fn run<C: Caller>(self, mut caller: C) -> Latencies {
        let (warmup, calls) = (self.warmup, self.calls);
        self.env.runtime.block_on(async move {
            tokio::spawn(async move {
                let mut errors = 0;
                let mut first_error = None;
                let mut note = |result: Result<u64, String>| match result {
                    Ok(value) => {
                        black_box(value);
                    }
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                };
                for _ in 0..warmup {
                    note(caller.call().await);
                }
                let mut sorted_ns = Vec::with_capacity(calls);
                for _ in 0..calls {
                    let start = Instant::now();
                    let result = caller.call().await;
                    sorted_ns.push(start.elapsed().as_nanos() as u64);
                    note(result);
                }
                Latencies {
                    sorted_ns,
                    round_p50_ns: Vec::new(),
                    errors,
                    first_error,
                }
            })
            .await
            .expect("caller task")
        })
    }
}

/// Calls per second of `callers` tasks making `calls_per_caller` calls each, per run.
#[derive(Debug, Clone, Default)]
struct Throughput {
    calls_per_run: usize,
    /// calls/s of each measured run, sorted.
    sorted_rates: Vec<f64>,
    /// Cores kept busy in each run (process CPU time ÷ wall time), sorted.
    sorted_cores: Vec<f64>,
    errors: usize,
}

impl Throughput {
    fn median(&self) -> f64 {
        median_f64(&self.sorted_rates)
    }
}

struct ThroughputRun<'a> {
    env: &'a Env,
    callers: usize,
    calls_per_caller: usize,
}

impl ThroughputRun<'_> {
    /// One run: every caller spawned at once; the time until the last finished, the process's
    /// CPU time meanwhile (if known), errors.
    fn once<C: Caller>(
        &self,
        caller: &C,
        calls_per_caller: usize,
    ) -> (Duration, Option<Duration>, usize) {
        let cpu_before = process_cpu_time();
        let (took, errors) = self.env.runtime.block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..self.callers)
                .map(|_| {
                    let mut caller = caller.clone();
                    tokio::spawn(async move {
                        let mut errors = 0;
                        for _ in 0..calls_per_caller {
                            match caller.call().await {
                                Ok(value) => {
                                    black_box(value);
                                }
                                Err(_) => errors += 1,
                            }
                        }
                        errors
                    })
                })
                .collect();
            let mut errors = 0;
            for task in tasks {
                errors += task.await.expect("caller task");
            }
            (start.elapsed(), errors)
        });
        let cpu = cpu_before
            .zip(process_cpu_time())
            .map(|(a, b)| b.saturating_sub(a));
        (took, cpu, errors)
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, 10 ms ticks).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which ends with the last ')'): state is field 3, utime
    // and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture that exposes it to user space.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// One `cpu_64` run.
#[derive(Debug, Clone, Copy)]
struct ThroughputSample {
    calls_per_s: f64,
    /// CPU time of the whole process ÷ wall time: cores kept busy.
    cores: Option<f64>,
    errors: usize,
}

impl Measure for ThroughputRun<'_> {
    type Output = ThroughputSample;

    fn run<C: Caller>(self, caller: C) -> ThroughputSample {
        self.once(&caller, (self.calls_per_caller / 5).max(1));
        let (took, cpu, errors) = self.once(&caller, self.calls_per_caller);
        ThroughputSample {
            calls_per_s: (self.callers * self.calls_per_caller) as f64 / took.as_secs_f64(),
            cores: cpu.map(|cpu| cpu.as_secs_f64() / took.as_secs_f64()),
            errors,
        }
    }
}

/// Criterion benchmark `<group>/<id>`: `n` calls of one caller task, timed inside the task.
struct CriterionRun<'a, 'g> {
    env: &'a Env,
    group: &'a mut BenchmarkGroup<'g, WallTime>,
    id: String,
}

impl Measure for CriterionRun<'_, '_> {
    type Output = ();

    fn run<C: Caller>(self, caller: C) {
        let runtime = &self.env.runtime;
        self.group.bench_function(self.id, |bencher| {
            bencher.iter_custom(|n| {
                let mut caller = caller.clone();
                runtime.block_on(async move {
                    tokio::spawn(async move {
                        let start = Instant::now();
                        for _ in 0..n {
                            black_box(caller.call().await.expect("call succeeds"));
                        }
                        start.elapsed()
                    })
                    .await
                    .expect("caller task")
                })
            });
        });
    }
}

// ---------------------------------------------------------------------------------------------
// trip lag (warden)

/// One `trip_lag` round.
#[derive(Debug, Clone, Copy)]
struct TripRound {
    /// A caller was refused with `Open`.
    tripped: bool,
    /// Invocations of the operation after the switch (all of them failed).
    failing_invocations: usize,
    /// Invocations that began after the 5th failure had been answered to its caller.
    admitted_after_trip: usize,
    /// Callers that had not finished when the round ended (aborted) or whose call hung.
    stuck_callers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TripAnswer {
    Failed,
    Open,
    Hung,
}

/// Calls of one round's operation after the switch, when each began.
#[derive(Default)]
struct TripLog {
    failing: AtomicBool,
    invoked: Mutex<Vec<Instant>>,
}

fn trip_round(env: &Env, settle: Duration) -> TripRound {
    let handle = ServiceSupervisor::builder("dep")
        .timeout(TIMEOUT)
        // One attempt per call: every answer is the outcome of one invocation.
        .retry(RetryConfig::off())
        .breaker(BreakerConfig::consecutive(TRIP_AFTER).open_for(Duration::from_secs(60)))
        .start_in_arbiter(env.background.arbiter(0))
        .expect("valid configuration");
    let log = Arc::new(TripLog::default());
    let operation = {
        let log = Arc::clone(&log);
        move || {
            // Decided and recorded when invoked: that is when the stack admitted the call.
            let result = if log.failing.load(Ordering::SeqCst) {
                log.invoked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Instant::now());
                Err(DepError)
            } else {
                Ok(1)
            };
            std::future::ready(result)
        }
    };
    let (answers, stuck_callers) = env.runtime.block_on(async {
        let deadline = Instant::now() + TRIP_ROUND_LIMIT;
        let callers: Vec<_> = (0..TRIP_CALLERS)
            .map(|_| {
                let handle = handle.clone();
                let operation = operation.clone();
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    for _ in 0..TRIP_MAX_CALLS {
                        let answer =
                            tokio::time::timeout(TRIP_CALL_LIMIT, handle.call(operation.clone()))
                                .await;
                        let at = Instant::now();
                        match answer {
                            Err(_) => {
                                answers.push((at, TripAnswer::Hung));
                                break;
                            }
                            Ok(Ok(value)) => {
                                black_box(value);
                            }
                            Ok(Err(CallError::Open { .. })) => {
                                answers.push((at, TripAnswer::Open));
                                break;
                            }
                            Ok(Err(_)) => answers.push((at, TripAnswer::Failed)),
                        }
                        if at >= deadline {
                            break;
                        }
                    }
                    answers
                })
            })
            .collect();
        tokio::time::sleep(settle).await;
        log.failing.store(true, Ordering::SeqCst);
        let mut answers = Vec::new();
        let mut stuck = 0;
        let give_up = tokio::time::Instant::from_std(deadline + TRIP_CALL_LIMIT);
        for mut caller in callers {
            match tokio::time::timeout_at(give_up, &mut caller).await {
                Ok(Ok(caller_answers)) => answers.extend(caller_answers),
                Ok(Err(_)) => stuck += 1,
                Err(_) => {
                    caller.abort();
                    stuck += 1;
                }
            }
        }
        (answers, stuck)
    });
    // Already gone is as good as stopped.
    let _ = env.runtime.block_on(handle.stop());

    let hung = answers
        .iter()
        .filter(|(_, answer)| *answer == TripAnswer::Hung)
        .count();
    let mut failures: Vec<Instant> = answers
        .iter()
        .filter(|(_, answer)| *answer == TripAnswer::Failed)
        .map(|(at, _)| *at)
        .collect();
    failures.sort_unstable();
    let invoked = log.invoked.lock().unwrap_or_else(PoisonError::into_inner);
    let admitted_after_trip = failures.get(TRIP_AFTER as usize - 1).map_or(0, |decided| {
        invoked.iter().filter(|at| *at > decided).count()
    });
    TripRound {
        tripped: answers
            .iter()
            .any(|(_, answer)| *answer == TripAnswer::Open),
        failing_invocations: invoked.len(),
        admitted_after_trip,
        stuck_callers: stuck_callers + hung,
    }
}

// ---------------------------------------------------------------------------------------------
// report

struct LatencyRow {
    scenario: &'static str,
    stack: StackKind,
    latencies: Latencies,
}

struct ThroughputRow {
    scenario: &'static str,
    stack: StackKind,
    throughput: Throughput,
}

struct Report {
    settings: Settings,
    spin_iterations: u64,
    cpu_op: Duration,
    latency: Vec<LatencyRow>,
    throughput: Vec<ThroughputRow>,
    trip: Vec<TripRound>,
    took: Duration,
}

fn micros(ns: f64) -> String {
    format!("{:.2}", ns / 1_000.0)
}

fn median_f64(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn median_of(values: &mut [usize]) -> usize {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

impl Report {
    fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Callers are tasks on a {WORKERS}-worker tokio multi-thread runtime; warden's \
             supervisor runs on a `BackgroundRuntime::start(1)` arbiter. {} mode, {} round(s), \
             stacks built afresh and interleaved each round; per round and stack, one run: {} \
             timed calls after {} warm-up (`http`: {} runs, each a new client, {} calls after \
             {}), one `cpu_64` run of {CPU_CALLERS} callers × {} calls (median over rounds); one \
             `cpu_64` operation = {:.1} µs of CPU ({} spin iterations). Latencies include two \
             clock reads.",
            if s.quick { "Quick" } else { "Full" },
            s.rounds,
            s.calls,
            s.warmup,
            s.http_connections,
            s.http_calls,
            s.http_warmup,
            s.cpu_calls_per_caller,
            self.cpu_op.as_nanos() as f64 / 1_000.0,
            self.spin_iterations,
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| scenario | stack | p50 µs | p99 µs | mean µs | p50 per run µs: min / median / max \
             | calls | errors |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
        for row in &self.latency {
            let l = &row.latencies;
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} | {} | {} | {} | {} |",
                row.scenario,
                row.stack.name(),
                micros(l.percentile(50.0) as f64),
                micros(l.percentile(99.0) as f64),
                micros(l.mean()),
                {
                    let mut rounds = l.round_p50_ns.clone();
                    rounds.sort_unstable();
                    let pick = |i: usize| micros(rounds.get(i).copied().unwrap_or(0) as f64);
                    format!(
                        "{} / {} / {}",
                        pick(0),
                        pick(rounds.len() / 2),
                        pick(rounds.len().saturating_sub(1))
                    )
                },
                l.sorted_ns.len(),
                l.errors,
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| scenario | stack | calls/s (median) | min – max | cores busy (median) | calls \
             per run | errors |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        for row in &self.throughput {
            let t = &row.throughput;
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {:.0} | {:.0} – {:.0} | {} | {} | {} |",
                row.scenario,
                row.stack.name(),
                t.median(),
                t.sorted_rates.first().copied().unwrap_or(0.0),
                t.sorted_rates.last().copied().unwrap_or(0.0),
                if t.sorted_cores.is_empty() {
                    "—".to_string()
                } else {
                    format!("{:.2}", median_f64(&t.sorted_cores))
                },
                t.calls_per_run,
                t.errors,
            );
        }
        let _ = writeln!(out);
        let mut admitted: Vec<usize> = self.trip.iter().map(|r| r.admitted_after_trip).collect();
        let mut failing: Vec<usize> = self.trip.iter().map(|r| r.failing_invocations).collect();
        let _ = writeln!(
            out,
            "| `trip_lag` (warden, {TRIP_CALLERS} callers, `consecutive({TRIP_AFTER})`, no \
             retry) | median | max | total |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| calls admitted after the trip was decided | {} | {} | {} |",
            median_of(&mut admitted),
            admitted.iter().max().copied().unwrap_or(0),
            admitted.iter().sum::<usize>(),
        );
        let _ = writeln!(
            out,
            "| failing invocations (threshold {TRIP_AFTER}) | {} | {} | {} |",
            median_of(&mut failing),
            failing.iter().max().copied().unwrap_or(0),
            failing.iter().sum::<usize>(),
        );
        let _ = writeln!(
            out,
            "\n`trip_lag`: the operation starts failing at a switch; \"admitted after the trip\" \
             counts invocations that began after the {TRIP_AFTER}th failure had been answered to \
             its caller; \"failing invocations\" counts every invocation after the switch (a \
             breaker deciding as each failure happens admits exactly {TRIP_AFTER}). {} round(s), \
             {} tripped, {} caller(s) stuck or hung; whole run {:.1} s.",
            self.trip.len(),
            self.trip.iter().filter(|r| r.tripped).count(),
            self.trip.iter().map(|r| r.stuck_callers).sum::<usize>(),
            self.took.as_secs_f64(),
        );
        for row in &self.latency {
            if let Some(error) = &row.latencies.first_error {
                let _ = writeln!(
                    out,
                    "\nfirst error of `{}`/`{}`: {error}",
                    row.scenario,
                    row.stack.name()
                );
            }
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let s = &self.settings;
        json!({
            "quick": s.quick,
            "workers": WORKERS,
            "settings": {
                "warmup": s.warmup,
                "calls": s.calls,
                "http_connections": s.http_connections,
                "http_warmup": s.http_warmup,
                "http_calls": s.http_calls,
                "cpu_callers": CPU_CALLERS,
                "cpu_calls_per_caller": s.cpu_calls_per_caller,
                "rounds": s.rounds,
                "trip_callers": TRIP_CALLERS,
                "trip_rounds": s.trip_rounds,
            },
            "cpu_op_ns": self.cpu_op.as_nanos() as u64,
            "spin_iterations": self.spin_iterations,
            "latency": self.latency.iter().map(|row| json!({
                "scenario": row.scenario,
                "stack": row.stack.name(),
                "calls": row.latencies.sorted_ns.len(),
                "errors": row.latencies.errors,
                "p50_ns": row.latencies.percentile(50.0),
                "p99_ns": row.latencies.percentile(99.0),
                "mean_ns": row.latencies.mean(),
                "round_p50_ns": row.latencies.round_p50_ns,
            })).collect::<Vec<_>>(),
            "throughput": self.throughput.iter().map(|row| json!({
                "scenario": row.scenario,
                "stack": row.stack.name(),
                "calls_per_run": row.throughput.calls_per_run,
                "errors": row.throughput.errors,
                "median_calls_per_s": row.throughput.median(),
                "runs_calls_per_s": row.throughput.sorted_rates,
                "runs_cores_busy": row.throughput.sorted_cores,
            })).collect::<Vec<_>>(),
            "trip_lag": self.trip.iter().map(|round| json!({
                "tripped": round.tripped,
                "failing_invocations": round.failing_invocations,
                "admitted_after_trip": round.admitted_after_trip,
                "stuck_callers": round.stuck_callers,
            })).collect::<Vec<_>>(),
            "took_s": self.took.as_secs_f64(),
        })
    }
}

/// Every scenario, every stack.
fn measure_all(env: &Env, settings: Settings) -> Report {
    let started = Instant::now();
    let (spin_iterations, cpu_op_took) = calibrate_spin(CPU_WORK);
    let http: Arc<str> = Arc::from(format!("http://{}/", start_http_server()));

    const LATENCY_SCENARIOS: [&str; 3] = ["ready", "pending_once", "http"];
    let mut latency: Vec<LatencyRow> = LATENCY_SCENARIOS
        .iter()
        .flat_map(|scenario| {
            STACKS.map(|stack| LatencyRow {
                scenario,
                stack,
                latencies: Latencies::default(),
            })
        })
        .collect();
    let mut throughput: Vec<ThroughputRow> = STACKS
        .map(|stack| ThroughputRow {
            scenario: "cpu_64",
            stack,
            throughput: Throughput {
                calls_per_run: CPU_CALLERS * settings.cpu_calls_per_caller,
                ..Throughput::default()
            },
        })
        .into();
    let latency_run = |warmup, calls| LatencyRun { env, warmup, calls };
    for round in 0..settings.rounds {
        eprintln!("placement: round {}/{}", round + 1, settings.rounds);
        // This round's order of the stacks: rotated by one each round.
        let order = (0..STACKS.len()).map(|i| (i + round) % STACKS.len());
        for s in order.clone() {
            let measured = with_stack(
                env,
                STACKS[s],
                ready,
                latency_run(settings.warmup, settings.calls),
            );
            latency[s].latencies.absorb(measured);
        }
        for s in order.clone() {
            let measured = with_stack(
                env,
                STACKS[s],
                pending_once,
                latency_run(settings.warmup, settings.calls),
            );
            latency[STACKS.len() + s].latencies.absorb(measured);
        }
        for _ in 0..settings.http_connections {
            for s in order.clone() {
                let client = http_client();
                let url = Arc::clone(&http);
                let measured = with_stack(
                    env,
                    STACKS[s],
                    move || http_get(client.clone(), Arc::clone(&url)),
                    latency_run(settings.http_warmup, settings.http_calls),
                );
                latency[2 * STACKS.len() + s].latencies.absorb(measured);
            }
        }
        for s in order {
            let sample = with_stack(
                env,
                STACKS[s],
                move || burn(spin_iterations),
                ThroughputRun {
                    env,
                    callers: CPU_CALLERS,
                    calls_per_caller: settings.cpu_calls_per_caller,
                },
            );
            let row = &mut throughput[s].throughput;
            row.sorted_rates.push(sample.calls_per_s);
            row.sorted_cores.extend(sample.cores);
            row.errors += sample.errors;
        }
    }
    for row in &mut latency {
        row.latencies.sorted_ns.sort_unstable();
    }
    for row in &mut throughput {
        row.throughput.sorted_rates.sort_by(f64::total_cmp);
        row.throughput.sorted_cores.sort_by(f64::total_cmp);
    }

    eprintln!("placement: trip_lag/warden");
    let trip = (0..settings.trip_rounds)
        .map(|_| trip_round(env, settings.trip_settle))
        .collect();

    Report {
        settings,
        spin_iterations,
        cpu_op: cpu_op_took,
        latency,
        throughput,
        trip,
        took: started.elapsed(),
    }
}

/// Criterion benchmarks `placement/ready/<stack>`.
fn criterion_ready(criterion: &mut Criterion, env: &Env) {
    let mut group = criterion.benchmark_group("placement");
    for stack in STACKS {
        with_stack(
            env,
            stack,
            ready,
            CriterionRun {
                env,
                group: &mut group,
                id: format!("ready/{}", stack.name()),
            },
        );
    }
    group.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|arg| arg == name);
    let quick = std::env::var("PLACEMENT_QUICK").is_ok_and(|v| v == "1")
        || flag("--quick")
        || flag("--test")
        || !flag("--bench");
    let settings = if quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    let env = Env::new();

    let mut criterion = criterion_config(quick).configure_from_args();
    criterion_ready(&mut criterion, &env);
    if !flag("--list") {
        let report = measure_all(&env, settings);
        println!(
            "\n## placement: caller on a plain tokio runtime\n\n{}",
            report.markdown()
        );
        if let Ok(path) = std::env::var("PLACEMENT_JSON") {
            let text = serde_json::to_string_pretty(&report.json()).expect("JSON");
            std::fs::write(&path, text).expect("write PLACEMENT_JSON");
            println!("wrote {path}");
        }
    }
    criterion.final_summary();
}
