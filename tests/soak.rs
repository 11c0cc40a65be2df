//! Soak: a million calls (paused clock) over 100 supervisors from 1 000 concurrent callers, with
//! seeded random successes, failures (retryable, permanent, ignored), latencies, timeouts, panics
//! and outages that open breakers; one call in 50 is abandoned by its caller after a random
//! 1–30 ms (the call is dropped: cancelled in its caller's task). Calls run in the callers'
//! tasks and hand their outcomes over in batches, so this checks that path end to end:
//! - every call gets exactly one reply (or, abandoned, is counted `cancelled` exactly once),
//!   and none is `SupervisorGone`;
//! - the answers the callers tallied, per outcome and per supervisor, equal the supervisors' own
//!   `CallCounts`, and the operation invocations the test counted equal `CallCounts::attempts`;
//! - nothing is leaked: every bulkhead slot is back (in flight 0); every supervisor stops once
//!   stopped or once its handles are dropped — which a leaked call task would prevent, since each
//!   call in flight holds the supervisor's address; memory stays flat after warm-up (RSS from
//!   `/proc/self/status`, printed).
//!
//! Task counting: actix runs actors and call tasks on a `LocalSet`, which
//! `tokio::runtime::RuntimeMetrics::num_alive_tasks` does not see, so the "supervisor stops"
//! check above stands in for it.
//!
//! It is a soak, not a unit test: left out of a plain `cargo test` (it took 50 s of a debug
//! run), run by CI in release with `cargo test --release --test soak -- --ignored`.
//! `WARDEN_SOAK_CALLS=10000000 cargo test --release --test soak -- --ignored --nocapture` runs
//! a longer soak (default 1 000 000), printing RSS every `WARDEN_SOAK_CHUNK` calls (5 000 000);
//! `WARDEN_SOAK_RECORDER=0` runs it without a metrics recorder; `WARDEN_SOAK_SEED` changes the
//! seed.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use warden::prelude::*;

const SUPERVISORS: usize = 100;
const CALLERS: u64 = 1000;
/// The payload of every injected panic; other panics are reported as usual.
const INJECTED: &str = "soak: injected panic";
const GUARD: Duration = Duration::from_secs(24 * 3600);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Answers one supervisor gave, as the callers saw them, and how often its operation ran.
#[derive(Debug, Default)]
struct Tally {
    issued: AtomicU64,
    success: AtomicU64,
    failure: AtomicU64,
    timeout: AtomicU64,
    panic: AtomicU64,
    rejected_open: AtomicU64,
    rejected_overloaded: AtomicU64,
    gone: AtomicU64,
    /// Calls the caller abandoned before their answer.
    cancelled: AtomicU64,
    attempts: Arc<AtomicU64>,
}

impl Tally {
    fn record(&self, answer: &Result<(), CallError<DepError>>) {
        let counter = match answer {
            Ok(()) => &self.success,
            Err(CallError::Failed { .. })
            | Err(CallError::RetriesExhausted { .. })
            | Err(CallError::BudgetExhausted { .. })
            | Err(CallError::RetryDeferred { .. })
            | Err(CallError::RetryRefused { last: Some(_), .. }) => &self.failure,
            Err(CallError::RetryRefused { last: None, .. }) => &self.timeout,
            Err(CallError::TimedOut { .. }) | Err(CallError::DeadlineExceeded { .. }) => {
                &self.timeout
            }
            Err(CallError::Panicked { message, .. }) => {
                assert_eq!(message, INJECTED);
                &self.panic
            }
            Err(CallError::Open { .. }) => &self.rejected_open,
            Err(CallError::Overloaded) => &self.rejected_overloaded,
            Err(CallError::SupervisorGone) => &self.gone,
            Err(other) => panic!("unexpected answer {other:?}"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn answered(&self) -> u64 {
        [
            &self.success,
            &self.failure,
            &self.timeout,
            &self.panic,
            &self.rejected_open,
            &self.rejected_overloaded,
            &self.gone,
        ]
        .into_iter()
        .map(Self::get)
        .sum()
    }
}

/// A mix of configurations: count and time windows, slow-call policies, deadlines, retries with
/// and without jitter and budget, small bulkheads.
fn config_for(i: usize) -> SupervisorConfig {
    let ms = |n: u64| Duration::from_millis(n);
    let timeout = ms(20 + 10 * (i as u64 % 5));
    let mut config = SupervisorConfig {
        timeout: Some(timeout),
        deadline: i.is_multiple_of(4).then(|| timeout * 3),
        max_in_flight: 8 + (i as u32 % 8) * 4,
        seed: Some(i as u64),
        ..SupervisorConfig::default()
    };
    config.retry = match i % 3 {
        0 => RetryConfig::off(),
        1 => RetryConfig::constant(2, ms(5)),
        _ => RetryConfig::exponential(3, ms(2)).full_jitter(),
    };
    if i % 6 == 5 {
        config.retry = config.retry.budget(warden::retry::BudgetConfig::off());
    }
    let window = if i.is_multiple_of(2) {
        SlidingWindow::Count { size: 20 }
    } else {
        SlidingWindow::Time { duration: ms(500) }
    };
    config.breaker = BreakerConfig::consecutive(8)
        .failure_rate(0.5, window, 10)
        .open_exponential(ms(50 + 25 * (i as u64 % 4)), ms(800), 2.0)
        .jitter(0.1)
        .half_open_probes(1 + i as u32 % 3)
        .half_open_max_wait(ms(200));
    if i.is_multiple_of(5) {
        config.breaker = config.breaker.slow_calls(0.8, ms(25));
    }
    config.health.max_age = Some(Duration::from_secs(5));
    config
}

/// One call's operation: each attempt draws its behaviour.
fn operation(
    mut rng: SmallRng,
    attempts: Arc<AtomicU64>,
    fail_permille: u32,
    outage: bool,
) -> impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DepError>>>>
       + Send
       + 'static {
    move || {
        attempts.fetch_add(1, Ordering::Relaxed);
        let roll: u32 = rng.random_range(0..1000);
        let latency = Duration::from_millis(rng.random_range(0..30));
        let kind: u32 = rng.random_range(0..10);
        if roll < 2 {
            panic!("{}", INJECTED); // in the closure, before any future exists
        }
        Box::pin(async move {
            if roll < 5 {
                panic!("{}", INJECTED); // inside the future
            }
            if roll < 25 {
                // Longer than every supervisor's timeout: cancelled.
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Ok(());
            }
            tokio::time::sleep(latency).await;
            if outage || roll < 25 + fail_permille {
                Err(DepError(match kind {
                    0 => "permanent",
                    1 => "ignored",
                    _ => "transient",
                }))
            } else {
                Ok(())
            }
        })
    }
}

fn classify(error: &DepError) -> ErrorClass {
    match error.0 {
        "permanent" => ErrorClass::permanent(),
        "ignored" => ErrorClass::ignored(),
        _ => ErrorClass::transient(),
    }
}

/// Runs `calls` calls from `CALLERS` concurrent callers.
async fn run_phase(
    handles: &Arc<Vec<ServiceHandle>>,
    tallies: &Arc<Vec<Tally>>,
    calls: u64,
    seed: u64,
    started: tokio::time::Instant,
) {
    let callers = (0..CALLERS).map(|caller| {
        let handles = handles.clone();
        let tallies = tallies.clone();
        let per_caller = calls / CALLERS + u64::from(caller < calls % CALLERS);
        actix::spawn(async move {
            let mut rng =
                SmallRng::seed_from_u64(seed ^ caller.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for _ in 0..per_caller {
                let s = rng.random_range(0..handles.len());
                let tally = &tallies[s];
                // Supervisors 0..10 go through outages: 2 s down every 6 s.
                let elapsed = started.elapsed().as_millis();
                let outage = s < 10 && (elapsed / 2000) % 3 == 1;
                let fail_permille = (s as u32 % 10) * 25; // 0 % to 22.5 % failing
                let op = operation(
                    SmallRng::seed_from_u64(rng.random()),
                    tally.attempts.clone(),
                    fail_permille,
                    outage,
                );
                let mut call = warden::messages::Call::new(op);
                if rng.random_range(0..4) == 0 {
                    call = call.classify(classify);
                }
                tally.issued.fetch_add(1, Ordering::Relaxed);
                let answer = if rng.random_range(0..50) == 0 {
                    let patience = Duration::from_millis(rng.random_range(1..30));
                    match tokio::time::timeout(patience, handles[s].send(call)).await {
                        Ok(answer) => answer,
                        Err(_) => {
                            tally.cancelled.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                } else {
                    handles[s].send(call).await
                };
                tally.record(&answer);
                // A refused caller backs off a little (as real clients do), so refusals do not
                // crowd out everything else; others pause now and then.
                let refused = answer.as_ref().is_err_and(CallError::is_rejection);
                if refused || rng.random_range(0..8) == 0 {
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..10))).await;
                }
            }
        })
    });
    for caller in join_all(callers).await {
        caller.expect("caller task completed");
    }
}

/// `warden_calls_total{service=SERVICE,outcome=OUTCOME}` in a Prometheus exposition.
fn exported_calls(exposition: &str, service: &str, outcome: &str) -> u64 {
    let series = format!("warden_calls_total{{service=\"{service}\",outcome=\"{outcome}\"}} ");
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.parse().expect("a counter value"))
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Silences the panic hook for the injected panics only (they are caught and answered
/// `Panicked`); any other panic — a failing assertion — is reported as usual.
struct QuietInjectedPanics;

impl QuietInjectedPanics {
    fn install() -> Self {
        let previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> =
            Arc::from(std::panic::take_hook());
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied());
            if message != Some(INJECTED) {
                previous(info);
            }
        }));
        QuietInjectedPanics
    }
}

impl Drop for QuietInjectedPanics {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::panic::take_hook(); // back to the default hook
        }
    }
}

#[actix::test]
#[ignore = "a soak: `cargo test --release --test soak -- --ignored` (CI runs it)"]
async fn soak_every_call_answered_once_counts_agree_nothing_leaks() {
    let _quiet = QuietInjectedPanics::install();
    // Supervisors register their series with the recorder installed when they start.
    // `WARDEN_SOAK_RECORDER=0` runs without a recorder (to tell the recorder's memory from the
    // engine's); the exported series are then not checked.
    let metrics = (env_u64("WARDEN_SOAK_RECORDER", 1) != 0)
        .then(|| warden::observe::install_recorder().expect("first recorder of this process"));
    let total = env_u64("WARDEN_SOAK_CALLS", 1_000_000);
    let seed = env_u64("WARDEN_SOAK_SEED", 2024);
    pause_aligned().await;
    let wall = std::time::Instant::now();
    let rss_start = rss_kib();

    let handles: Arc<Vec<ServiceHandle>> = Arc::new(
        (0..SUPERVISORS)
            .map(|i| start(&format!("soak-{i}"), config_for(i)))
            .collect(),
    );
    let tallies: Arc<Vec<Tally>> = Arc::new((0..SUPERVISORS).map(|_| Tally::default()).collect());
    let started = tokio::time::Instant::now();

    // Warm-up (10 %), then the rest: memory must not grow with the number of calls.
    let warm_up = total / 10;
    run_phase(&handles, &tallies, warm_up, seed, started).await;
    let rss_warm = rss_kib();
    // The rest in chunks of at most `WARDEN_SOAK_CHUNK` calls (5 000 000), RSS printed after
    // each: the curve shows whether memory plateaus. (A run of up to a chunk is one phase, as
    // it always was.)
    let chunk = env_u64("WARDEN_SOAK_CHUNK", 5_000_000).max(1);
    let mut done = warm_up;
    let mut k = 0;
    while done < total {
        let calls = chunk.min(total - done);
        run_phase(&handles, &tallies, calls, seed.rotate_left(1) ^ k, started).await;
        done += calls;
        k += 1;
        if total > chunk {
            println!(
                "soak: RSS after {done} calls: {:.1} MiB",
                rss_kib().map_or(f64::NAN, |kib| kib as f64 / 1024.0)
            );
        }
    }
    let rss_end = rss_kib();
    let virtual_time = started.elapsed();
    settle().await;

    // Every call answered exactly once; the supervisors agree with the callers.
    for handle in handles.iter() {
        handle.counts().await.expect("running"); // every answer recorded before rendering
    }
    let exposition = metrics.as_ref().map(|metrics| metrics.render());
    let sum = Tally::default();
    for (i, (handle, tally)) in handles.iter().zip(tallies.iter()).enumerate() {
        let issued = Tally::get(&tally.issued);
        let cancelled = Tally::get(&tally.cancelled);
        assert_eq!(
            tally.answered() + cancelled,
            issued,
            "supervisor {i}: calls answered or abandoned"
        );
        assert_eq!(Tally::get(&tally.gone), 0, "supervisor {i}: SupervisorGone");
        assert_eq!(
            handle.in_flight(),
            0,
            "supervisor {i}: bulkhead slots leaked"
        );
        let counts = handle.counts().await.expect("running");
        let seen = (
            Tally::get(&tally.success),
            Tally::get(&tally.failure),
            Tally::get(&tally.timeout),
            Tally::get(&tally.panic),
            Tally::get(&tally.rejected_open),
            Tally::get(&tally.rejected_overloaded),
            Tally::get(&tally.attempts),
        );
        let counted = (
            counts.success,
            counts.failure,
            counts.timeout,
            counts.panic,
            counts.rejected_open,
            counts.rejected_overloaded,
            counts.attempts,
        );
        assert_eq!(
            seen, counted,
            "supervisor {i}: (success, failure, timeout, panic, open, overloaded, attempts) \
             tallied by callers vs counted by the supervisor"
        );
        assert_eq!(counts.total(), issued - cancelled);
        assert_eq!(
            counts.cancelled, cancelled,
            "supervisor {i}: cancelled calls"
        );
        if std::env::var_os("WARDEN_SOAK_VERBOSE").is_some() {
            println!("soak-{i}: {counts:?}");
        }
        // The exported metrics agree too (when a recorder is installed).
        if let Some(exposition) = &exposition {
            let exported =
                |outcome: &str| exported_calls(exposition, &format!("soak-{i}"), outcome);
            assert_eq!(
                (
                    exported("success"),
                    exported("failure"),
                    exported("timeout"),
                    exported("panic"),
                    exported("rejected"),
                    exported("cancelled"),
                ),
                (
                    counts.success,
                    counts.failure,
                    counts.timeout,
                    counts.panic,
                    counts.rejected_open + counts.rejected_overloaded,
                    counts.cancelled,
                ),
                "supervisor {i}: warden_calls_total by outcome vs counted by the supervisor"
            );
        }
        for (acc, counter) in [
            (&sum.issued, &tally.issued),
            (&sum.success, &tally.success),
            (&sum.failure, &tally.failure),
            (&sum.timeout, &tally.timeout),
            (&sum.panic, &tally.panic),
            (&sum.rejected_open, &tally.rejected_open),
            (&sum.rejected_overloaded, &tally.rejected_overloaded),
            (&sum.cancelled, &tally.cancelled),
        ] {
            acc.fetch_add(Tally::get(counter), Ordering::Relaxed);
        }
        sum.attempts
            .fetch_add(Tally::get(&tally.attempts), Ordering::Relaxed);
    }
    assert_eq!(Tally::get(&sum.issued), total);
    // The mix really happened.
    for (name, counter) in [
        ("success", &sum.success),
        ("failure", &sum.failure),
        ("timeout", &sum.timeout),
        ("panic", &sum.panic),
        ("open", &sum.rejected_open),
        ("overloaded", &sum.rejected_overloaded),
        ("cancelled", &sum.cancelled),
    ] {
        assert!(
            Tally::get(counter) > total / 1000,
            "too few {name}: {sum:?}"
        );
    }

    // Nothing leaked: half the supervisors are stopped, the other half lose their last handle;
    // all must stop (a leaked call task would hold an address and keep its supervisor alive).
    let stopped: Vec<_> = handles.iter().map(ServiceHandle::stopped).collect();
    for handle in &handles[..SUPERVISORS / 2] {
        handle.stop().await.expect("running");
    }
    drop(handles);
    tokio::time::timeout(GUARD, join_all(stopped))
        .await
        .expect("every supervisor stopped");
    let rss_stopped = rss_kib();

    let mib =
        |kib: Option<u64>| kib.map_or("?".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "soak: {total} calls, {SUPERVISORS} supervisors, {CALLERS} callers, seed {seed}: \
         {:.1} s wall, {:.1} s virtual; answers {sum:?}",
        wall.elapsed().as_secs_f64(),
        virtual_time.as_secs_f64(),
    );
    println!(
        "soak: RSS start {}, after warm-up ({warm_up} calls) {}, end {}, after stop {}",
        mib(rss_start),
        mib(rss_warm),
        mib(rss_end),
        mib(rss_stopped)
    );
    if let (Some(warm), Some(end)) = (rss_warm, rss_end) {
        // Flat after warm-up: 32 MiB over 900 000 calls would be a leak of ~37 bytes per call.
        let growth_kib = end.saturating_sub(warm);
        let allowed_kib = 32 * 1024 * (total / 1_000_000).max(1);
        assert!(
            growth_kib <= allowed_kib,
            "RSS grew by {growth_kib} KiB after warm-up (allowed {allowed_kib} KiB)"
        );
    }
}
