//! Helpers shared by the integration tests: a scripted dependency and small builders.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use warden::prelude::*;

/// The error a simulated dependency returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepError(pub &'static str);

impl std::fmt::Display for DepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Counts how many attempts reached the dependency.
#[derive(Debug, Clone, Default)]
pub struct Hits(pub Arc<AtomicU32>);

impl Hits {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn hit(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// A supervisor config with retries off and a breaker that only trips on consecutive failures,
/// so each test switches on exactly what it checks.
pub fn plain_config() -> SupervisorConfig {
    SupervisorConfig {
        timeout: Some(Duration::from_secs(1)),
        retry: RetryConfig::off(),
        breaker: BreakerConfig {
            consecutive_failures: Some(1000),
            failure_rate_threshold: None,
            ..BreakerConfig::default()
        },
        seed: Some(7),
        ..SupervisorConfig::default()
    }
}

pub fn start(name: &str, config: SupervisorConfig) -> ServiceHandle {
    ServiceSupervisor::builder(name)
        .config(config)
        .start()
        .expect("valid test configuration")
}

/// One call that fails at once.
pub async fn fail(handle: &ServiceHandle) -> Result<(), CallError<DepError>> {
    handle
        .call(|| async { Err::<(), _>(DepError("boom")) })
        .await
}

/// One call that succeeds at once.
pub async fn succeed(handle: &ServiceHandle) -> Result<(), CallError<DepError>> {
    handle.call(|| async { Ok::<(), DepError>(()) }).await
}

/// One call that takes `latency` (paused clock) then succeeds.
pub async fn slow(handle: &ServiceHandle, latency: Duration) -> Result<(), CallError<DepError>> {
    handle
        .call(move || async move {
            tokio::time::sleep(latency).await;
            Ok::<(), DepError>(())
        })
        .await
}

/// Records the (paused-clock) instants at which attempts started.
#[derive(Debug, Clone, Default)]
pub struct AttemptLog(pub Arc<Mutex<Vec<tokio::time::Instant>>>);

impl AttemptLog {
    pub fn push_now(&self) {
        self.0.lock().unwrap().push(tokio::time::Instant::now());
    }
    /// Gaps between consecutive attempts.
    pub fn gaps(&self) -> Vec<Duration> {
        self.0
            .lock()
            .unwrap()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Lets the supervisor process what is in its mailbox (records sent with `do_send`).
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Pauses the clock and moves it onto a millisecond tick of tokio's timer, so sleeps of whole
/// milliseconds end exactly when they should (the timer rounds deadlines up to its ticks).
pub async fn pause_aligned() {
    tokio::time::pause();
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Asserts that a measured (paused-clock) duration is `expected`, allowing for tokio's timer
/// rounding each deadline up to its next 1 ms tick: at most 2 ms late (two timers), never early.
#[track_caller]
pub fn assert_about(actual: Duration, expected: Duration) {
    assert!(
        actual >= expected && actual <= expected + Duration::from_millis(2),
        "measured {actual:?}, expected {expected:?} (+ at most 2 ms of timer rounding)"
    );
}

/// [`assert_about`] for each element of two equally long lists.
#[track_caller]
pub fn assert_all_about(actual: &[Duration], expected: &[Duration]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert_about(*a, *e);
    }
}

/// Proptest configuration for the model tests: `PROPTEST_CASES` cases (default `default_cases`),
/// a fixed RNG seed unless `PROPTEST_RNG_SEED` is set (so CI runs are reproducible and a local
/// run can explore other seeds), and no regression files written into the source tree.
pub fn proptest_config(default_cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let mut config = Config::with_cases(cases);
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(0x5eed_b0a7);
    }
    config.failure_persistence = None;
    config
}

/// An actor that collects every supervisor event it receives.
pub struct Collector(pub Arc<Mutex<Vec<warden::messages::SupervisorEvent>>>);

impl actix::Actor for Collector {
    type Context = actix::Context<Self>;
}

impl actix::Handler<warden::messages::SupervisorEvent> for Collector {
    type Result = ();
    fn handle(&mut self, event: warden::messages::SupervisorEvent, _: &mut actix::Context<Self>) {
        self.0.lock().unwrap().push(event);
    }
}
