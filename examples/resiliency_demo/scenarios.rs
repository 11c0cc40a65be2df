//! The demo's scenarios: one per pattern against a simulated dependency with seeded failures,
//! then everything combined under a brownout. Each scenario returns the timeline of events it
//! observed, a summary per service and the problems found when its story did not happen as
//! told (empty when it did).
//!
//! The scenarios sleep on tokio's clock: run them with the clock paused
//! (`tokio::time::pause()` inside the actix system), so a 30 s open breaker takes no time and
//! every run with the same seed prints the same timeline. `tests/integration/demo_scenarios.rs`
//! runs them.

// The test that includes this file does not use every item.
#![allow(dead_code)]

#[path = "../common/timeline.rs"]
pub mod timeline;

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use warden::breaker::{BreakerState, TransitionReason};
use warden::health::{HealthSnapshot, HealthStatus};
use warden::messages::{CallCounts, EventKind};
use warden::prelude::*;

use timeline::{in_order, Answer, AttemptGuard, Entry, ErrorKind, Event, Timeline};

/// The scenarios, in the order the demo runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// transient failures recovered by retries with exponential backoff; a caller error is not retried
    Retry,
    /// the circuit breaker opens, fails fast, half-opens, re-opens on a failed probe, closes
    Breaker,
    /// slow attempts cut off and cancelled by the timeout; an overall deadline
    Timeout,
    /// health goes Healthy → Degraded → Unhealthy → Healthy with success rate and latency
    Health,
    /// everything at once: a database through a brownout, an outage and the recovery
    Brownout,
}

impl Scenario {
    /// Every scenario, in order.
    pub const ALL: [Scenario; 5] = [
        Scenario::Retry,
        Scenario::Breaker,
        Scenario::Timeout,
        Scenario::Health,
        Scenario::Brownout,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Retry => "retry",
            Scenario::Breaker => "breaker",
            Scenario::Timeout => "timeout",
            Scenario::Health => "health",
            Scenario::Brownout => "brownout",
        }
    }

    /// One line: what the scenario shows.
    pub fn title(self) -> &'static str {
        match self {
            Scenario::Retry => "transient failures recovered by retries with exponential backoff",
            Scenario::Breaker => "the circuit breaker opens, fails fast, probes, and closes",
            Scenario::Timeout => {
                "slow attempts are cut off and cancelled; a deadline bounds the call"
            }
            Scenario::Health => "health follows success rate and latency over a window of calls",
            Scenario::Brownout => {
                "all patterns together: a database through a brownout and an outage"
            }
        }
    }

    /// The supervisor's configuration, as code.
    pub fn setup(self) -> &'static [&'static str] {
        match self {
            Scenario::Retry => &[
                ".retry(RetryConfig::exponential(4, 100ms))   // waits 100ms, 200ms, 400ms",
                ".breaker(BreakerConfig::consecutive(5)).timeout(2s)",
                ".send(Call::new(op).classify(..))   // a caller error is ErrorClass::ignored()",
            ],
            Scenario::Breaker => &[
                ".breaker(BreakerConfig::consecutive(3).open_exponential(30s, 2m, 2.0))",
                ".retry(RetryConfig::off())   // one attempt per call: only the breaker acts",
                ".health(HealthConfig { max_age: 20s, .. })   // forget old calls sooner",
            ],
            Scenario::Timeout => &[
                ".timeout(500ms)   // per attempt",
                ".deadline(1s)     // the whole call, across attempts and waits",
                ".retry(RetryConfig::constant(3, 100ms))",
            ],
            Scenario::Health => &[
                ".health(HealthConfig { window_size: 20, minimum_calls: 10,",
                "    degraded_success_rate: 0.95, unhealthy_success_rate: 0.5,",
                "    degraded_latency: 200ms, unhealthy_latency: 1s, .. })",
                ".retry(RetryConfig::off()).breaker(BreakerConfig::consecutive(10))",
            ],
            Scenario::Brownout => &[
                "orders-db: SupervisorConfig::database(), changed: timeout 2s · 24 calls in flight",
                "  · breaker after 10 failures in a row (or 50% of the last 50 calls), open 10s → 40s",
                "  · retry budget 10% of calls + 1/s",
                "unchanged: 3 attempts, full jitter from 100ms · degraded when p95 > 500ms,",
                "  unhealthy when p95 > 2s",
            ],
        }
    }

    /// What happens to the dependency.
    pub fn story(self) -> &'static str {
        match self {
            Scenario::Retry => {
                "The inventory service fails some attempts with transient errors (which ones \
                 depends on the seed). Each call is retried after a growing delay until it \
                 succeeds or runs out of attempts. Then the service fails for longer than the \
                 retries last, and finally a caller error that no retry can fix."
            }
            Scenario::Breaker => {
                "The payments API goes down. After 3 failures in a row the breaker opens and \
                 refuses calls at once for 30s, sparing the API. The first probe comes too \
                 early and fails: open again, for 60s. The API recovers; the next probe \
                 succeeds and the breaker closes."
            }
            Scenario::Timeout => {
                "The search service sometimes hangs. An attempt that runs past 500ms is \
                 cancelled (its future is dropped, so the work really stops) and retried. \
                 A call whose attempts all hang ends when its 1s deadline passes."
            }
            Scenario::Health => {
                "The reviews service is called 10 times a second. It slows down and \
                 fails 1 call in 10 (Degraded), then fails 3 calls in 4 (Unhealthy), then \
                 recovers (Healthy once the window holds only good calls). The breaker never \
                 opens here: health is a separate signal, judged over the last 20 calls."
            }
            Scenario::Brownout => {
                "20 calls a second to a database. Normal for 20s; then a brownout: slow \
                 answers, some past the 2s timeout, a few errors and hangs. At 40s an outage \
                 (connections refused); recovery at 55s. Watch health degrade, timeouts and \
                 retries, the retry budget and the bulkhead shed load, the breaker open and \
                 fail fast, then probe and close."
            }
        }
    }

    /// The one supervised service of the scenario.
    pub fn service(self) -> &'static str {
        match self {
            Scenario::Retry => "inventory",
            Scenario::Breaker => "payments",
            Scenario::Timeout => "search",
            Scenario::Health => "reviews",
            Scenario::Brownout => "orders-db",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a scenario reports.
#[derive(Debug, Clone)]
pub struct Report {
    /// Which scenario.
    pub scenario: Scenario,
    /// Every event, in order, including the ones not printed.
    pub entries: Vec<Entry>,
    /// One summary per supervised service.
    pub services: Vec<ServiceSummary>,
    /// What the scenario showed, in one sentence with its numbers.
    pub lesson: String,
    /// What did not happen as the story says; empty when everything did.
    pub problems: Vec<String>,
    /// Simulated time the scenario took.
    pub simulated: Duration,
}

/// The numbers of one service at the end of a scenario.
#[derive(Debug, Clone)]
pub struct ServiceSummary {
    /// Service name.
    pub name: String,
    /// The supervisor's call counts.
    pub counts: CallCounts,
    /// Health at the end.
    pub health: HealthSnapshot,
    /// Breaker state at the end.
    pub breaker: BreakerState,
    /// Attempts the simulated dependency actually saw.
    pub dependency_attempts: u32,
}

/// An actix system whose tokio clock starts paused: sleeps end as soon as nothing else can
/// run, and since the clock never ran, it sits exactly on a tick of tokio's millisecond timer,
/// so whole-millisecond sleeps end on time and the timestamps stay round.
pub fn paused_system() -> actix::SystemRunner {
    actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("cannot build a tokio runtime")
    })
}

/// Runs `scenario` with failures drawn from `seed`, recording into `timeline`. Needs an actix
/// system with tokio's clock paused.
pub async fn run(scenario: Scenario, seed: u64, timeline: &Timeline) -> Report {
    let started = Instant::now();
    let mut report = match scenario {
        Scenario::Retry => retry(seed, timeline).await,
        Scenario::Breaker => breaker(seed, timeline).await,
        Scenario::Timeout => timeout(seed, timeline).await,
        Scenario::Health => health(seed, timeline).await,
        Scenario::Brownout => brownout(seed, timeline).await,
    };
    report.simulated = started.elapsed();
    report
}

// ---------------------------------------------------------------------------------------------
// The simulated dependency

/// An error of the simulated dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepError {
    /// Worth retrying: the dependency may answer next time.
    Transient(&'static str),
    /// The request itself is wrong: retrying cannot help, and the dependency is not at fault.
    Invalid(&'static str),
}

impl fmt::Display for DepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepError::Transient(what) | DepError::Invalid(what) => f.write_str(what),
        }
    }
}

/// The classifier the scenarios pass with every call.
pub fn classify(error: &DepError) -> ErrorClass {
    match error {
        DepError::Transient(_) => ErrorClass::transient(),
        DepError::Invalid(_) => ErrorClass::ignored(),
    }
}

/// What one attempt does.
#[derive(Debug, Clone)]
enum Step {
    /// Answers after this long.
    Ok(Duration),
    /// Fails after this long.
    Fail(Duration, DepError),
    /// Never answers (until cancelled).
    Hang,
}

type StepSource = Box<dyn FnMut(u32) -> Step + Send>;

/// A supervised, simulated dependency.
struct Dependency {
    service: &'static str,
    handle: ServiceHandle,
    timeline: Timeline,
    attempts_seen: Arc<AtomicU32>,
}

/// Attempt `n` does `steps[n - 1]` (the last step repeats).
fn steps_source(steps: Vec<Step>) -> StepSource {
    Box::new(move |attempt: u32| {
        let index = (attempt as usize - 1).min(steps.len() - 1);
        steps[index].clone()
    })
}

impl Dependency {
    async fn start(service: &'static str, config: SupervisorConfig, timeline: &Timeline) -> Self {
        let handle = ServiceSupervisor::builder(service)
            .config(config)
            .start()
            .expect("the demo's configurations are valid");
        timeline.follow(&handle).await;
        Dependency {
            service,
            handle,
            timeline: timeline.clone(),
            attempts_seen: Arc::default(),
        }
    }

    /// A call whose attempts do `steps` in turn (the last one repeats).
    async fn call(&self, call: u32, steps: Vec<Step>) -> Answer {
        self.call_with(call, steps_source(steps), true, false).await
    }

    /// Like [`call`](Self::call), with a fallback that serves a cached value while the breaker
    /// is open (the caller's choice: every other error is passed on).
    async fn call_with_cache(&self, call: u32, steps: Vec<Step>) -> Answer {
        self.call_with(call, steps_source(steps), true, true).await
    }

    /// A call whose attempt `n` does `source(n)`. With `sync`, waits for the supervisor's
    /// events about the call before recording its answer, so the timeline reads in order. With
    /// `cached`, a fallback answers an open breaker with a cached value.
    async fn call_with(&self, call: u32, source: StepSource, sync: bool, cached: bool) -> Answer {
        let attempts = Arc::new(AtomicU32::new(0));
        let operation = self.operation(call, source, Arc::clone(&attempts));
        // The error the fallback answered, if it did.
        let served = Arc::new(std::sync::Mutex::new(None));
        let mut request = Call::new(operation).classify(classify);
        if cached {
            let instead_of = Arc::clone(&served);
            request = request.fallback(move |error| match error {
                CallError::Open { .. } => {
                    *instead_of.lock().unwrap() = Some(error.to_string());
                    Ok(())
                }
                other => Err(other),
            });
        }
        let started = Instant::now();
        let result = self.handle.send(request).await;
        let took = started.elapsed();
        if sync {
            self.timeline.sync(&self.handle).await;
        }
        let attempts = attempts.load(Ordering::SeqCst);
        let answer = match served.lock().unwrap().take() {
            Some(instead_of) => Answer::Fallback {
                attempts,
                took,
                instead_of,
            },
            None => Answer::of(&result, attempts, took),
        };
        self.timeline.push(
            self.service,
            Event::Answered {
                call,
                answer: answer.clone(),
            },
        );
        answer
    }

    fn operation(
        &self,
        call: u32,
        mut source: StepSource,
        attempts: Arc<AtomicU32>,
    ) -> impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DepError>>>>
           + Send
           + 'static {
        let timeline = self.timeline.clone();
        let service = self.service;
        let seen = Arc::clone(&self.attempts_seen);
        move || {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            seen.fetch_add(1, Ordering::SeqCst);
            let step = source(attempt);
            let mut guard = AttemptGuard::start(&timeline, service, call, attempt);
            Box::pin(async move {
                let (latency, result) = match step {
                    Step::Ok(latency) => (latency, Ok(())),
                    Step::Fail(latency, error) => (latency, Err(error)),
                    Step::Hang => (Duration::from_secs(3600), Ok(())),
                };
                tokio::time::sleep(latency).await;
                guard.finished(
                    result.is_ok(),
                    result
                        .as_ref()
                        .map_or_else(ToString::to_string, |()| "ok".to_string()),
                );
                result
            })
        }
    }

    async fn summary(&self) -> ServiceSummary {
        let counts = self.handle.counts().await.unwrap_or_default();
        let status = self.handle.breaker_status().await.ok();
        let health = self.handle.health().await.expect("supervisor is running");
        ServiceSummary {
            name: self.service.to_string(),
            counts,
            health,
            breaker: status.map_or(BreakerState::Closed, |s| s.state),
            dependency_attempts: self.attempts_seen.load(Ordering::SeqCst),
        }
    }

    /// Records a health query's answer.
    async fn health_check(&self) -> HealthSnapshot {
        let snapshot = self.handle.health().await.expect("supervisor is running");
        self.timeline.sync(&self.handle).await;
        self.timeline
            .push(self.service, Event::Health(snapshot.clone()));
        snapshot
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn rng_for(seed: u64, scenario: Scenario) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ (scenario as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// A latency drawn uniformly in `[low, high]` milliseconds.
fn latency(rng: &mut SmallRng, low: u64, high: u64) -> Duration {
    ms(rng.random_range(low..=high))
}

/// `count` booleans, `fails` true in every block of `block`, at seeded positions.
fn failure_pattern(rng: &mut SmallRng, count: usize, block: usize, fails: usize) -> Vec<bool> {
    let mut pattern = Vec::with_capacity(count + block);
    while pattern.len() < count {
        let mut chunk: Vec<bool> = (0..block).map(|i| i < fails).collect();
        chunk.shuffle(rng);
        pattern.extend(chunk);
    }
    pattern.truncate(count);
    pattern
}

fn answers(entries: &[Entry]) -> impl Iterator<Item = (u32, &Answer)> {
    entries.iter().filter_map(Entry::answer)
}

fn is_transition(from: BreakerState, to: BreakerState) -> impl Fn(&Entry) -> bool {
    move |e: &Entry| e.transition().is_some_and(|(f, t, _)| f == from && t == to)
}

fn is_health_change_to(to: HealthStatus) -> impl Fn(&Entry) -> bool {
    move |e: &Entry| e.health_change().is_some_and(|(_, t)| t == to)
}

fn is_retry(e: &Entry) -> bool {
    matches!(e.supervisor(), Some(EventKind::RetryScheduled { .. }))
}

fn is_timed_out(e: &Entry) -> bool {
    matches!(e.supervisor(), Some(EventKind::TimedOut { .. }))
}

fn check(problems: &mut Vec<String>, result: Result<Vec<usize>, String>) {
    if let Err(problem) = result {
        problems.push(problem);
    }
}

fn expect(problems: &mut Vec<String>, ok: bool, what: impl Into<String>) {
    if !ok {
        problems.push(what.into());
    }
}

fn report(
    scenario: Scenario,
    timeline: &Timeline,
    services: Vec<ServiceSummary>,
    lesson: String,
    problems: Vec<String>,
) -> Report {
    Report {
        scenario,
        entries: timeline.entries(),
        services,
        lesson,
        problems,
        simulated: Duration::ZERO,
    }
}

// ---------------------------------------------------------------------------------------------
// Retry

async fn retry(seed: u64, timeline: &Timeline) -> Report {
    let scenario = Scenario::Retry;
    let mut rng = rng_for(seed, scenario);
    let config = SupervisorConfig {
        timeout: Some(secs(2)),
        retry: RetryConfig::exponential(4, ms(100)),
        breaker: BreakerConfig::consecutive(5),
        seed: Some(seed),
        ..SupervisorConfig::default()
    };
    let dep = Dependency::start(scenario.service(), config, timeline).await;
    let errors = [
        "connection reset by peer",
        "503 service unavailable",
        "lock wait timeout",
    ];
    // Failed attempts before each call succeeds: never all four, so every call recovers.
    let failures = [
        0,
        rng.random_range(1..=3),
        rng.random_range(0..=3),
        rng.random_range(1..=3),
        rng.random_range(0..=2),
    ];
    let mut call = 0;
    for failed in failures {
        timeline.sleep_until(secs(u64::from(call))).await;
        call += 1;
        let mut steps: Vec<Step> = (0..failed)
            .map(|_| {
                let error = errors[rng.random_range(0..errors.len())];
                Step::Fail(latency(&mut rng, 5, 40), DepError::Transient(error))
            })
            .collect();
        steps.push(Step::Ok(latency(&mut rng, 5, 40)));
        dep.call(call, steps).await;
    }

    timeline.sleep_until(secs(6)).await;
    timeline.note(
        dep.service,
        "fault",
        "inventory fails every attempt for a while: the retries cannot outlast it",
    );
    call += 1;
    let down = Step::Fail(
        latency(&mut rng, 5, 40),
        DepError::Transient("connection refused"),
    );
    dep.call(call, vec![down]).await;

    timeline.sleep_until(secs(8)).await;
    timeline.note(
        dep.service,
        "fault",
        "inventory is back; a caller asks for an unknown SKU",
    );
    call += 1;
    let invalid = Step::Fail(
        latency(&mut rng, 5, 40),
        DepError::Invalid("404 unknown SKU XJ-9"),
    );
    dep.call(call, vec![invalid]).await;

    let summary = dep.summary().await;
    let entries = timeline.entries();
    let mut problems = Vec::new();
    let recovered = answers(&entries)
        .filter(|(_, a)| a.is_ok() && a.attempts() > 1)
        .count();
    expect(
        &mut problems,
        recovered >= 1,
        "expected at least one call to succeed after retries",
    );
    // Every retried call: its retries come before its success.
    for (call, _) in answers(&entries).filter(|(_, a)| a.is_ok() && a.attempts() > 1) {
        check(
            &mut problems,
            in_order(
                &entries,
                &[
                    (
                        "a failed attempt",
                        &|e: &Entry| matches!(&e.event, Event::Attempt { call: c, ok: false, .. } if *c == call),
                    ),
                    ("a retry", &is_retry),
                    ("the successful answer", &|e: &Entry| {
                        e.answer().is_some_and(|(c, a)| c == call && a.is_ok())
                    }),
                ],
            ),
        );
    }
    let exhausted = answers(&entries)
        .find(|(c, _)| *c == 6)
        .map(|(_, a)| a.clone());
    expect(
        &mut problems,
        exhausted.as_ref().is_some_and(|a| {
            a.error_kind() == Some(ErrorKind::RetriesExhausted) && a.attempts() == 4
        }),
        format!("expected call 6 to exhaust its 4 attempts, got {exhausted:?}"),
    );
    let invalid = answers(&entries)
        .find(|(c, _)| *c == 7)
        .map(|(_, a)| a.clone());
    expect(
        &mut problems,
        invalid
            .as_ref()
            .is_some_and(|a| a.error_kind() == Some(ErrorKind::Failed) && a.attempts() == 1),
        format!("expected call 7 to fail once without retry, got {invalid:?}"),
    );
    expect(
        &mut problems,
        entries.iter().all(|e| e.transition().is_none()),
        "the breaker should stay closed",
    );

    let counts = summary.counts;
    let failed_attempts = counts.attempts - counts.success;
    let lesson = format!(
        "{} of {} calls succeeded although {} of {} attempts failed: the callers never saw \
         those failures, only the {} waits. Health counts attempts, so it saw them all.",
        counts.success,
        counts.total(),
        failed_attempts,
        counts.attempts,
        counts.retries
    );
    report(scenario, timeline, vec![summary], lesson, problems)
}

// ---------------------------------------------------------------------------------------------
// Breaker

async fn breaker(seed: u64, timeline: &Timeline) -> Report {
    let scenario = Scenario::Breaker;
    let mut rng = rng_for(seed, scenario);
    let config = SupervisorConfig {
        timeout: Some(secs(2)),
        retry: RetryConfig::off(),
        breaker: BreakerConfig::consecutive(3).open_exponential(secs(30), secs(120), 2.0),
        health: HealthConfig {
            max_age: Some(secs(20)),
            ..HealthConfig::default()
        },
        seed: Some(seed),
        ..SupervisorConfig::default()
    };
    let dep = Dependency::start(scenario.service(), config, timeline).await;
    let service = dep.service;
    let mut down = true;
    timeline.note(
        service,
        "fault",
        "payments API goes down: connections refused",
    );
    let script: [(u64, Option<bool>); 10] = [
        (0, None),
        (500, None),
        (1_000, None),
        (2_000, None),
        (10_000, None),
        (31_500, None),
        (40_000, Some(false)),
        (50_000, None),
        (92_000, None),
        (93_000, None),
    ];
    let mut call = 0;
    for (at, change) in script {
        timeline.sleep_until(ms(at)).await;
        if let Some(now_down) = change {
            down = now_down;
            timeline.note(service, "fault", "payments API is back up");
            continue;
        }
        call += 1;
        let step = if down {
            Step::Fail(
                latency(&mut rng, 1, 5),
                DepError::Transient("connection refused"),
            )
        } else {
            Step::Ok(latency(&mut rng, 20, 60))
        };
        if at == 10_000 {
            // This caller has a fallback: it is served a cached price while the breaker is
            // open, and the breaker still counts nothing against the API.
            dep.call_with_cache(call, vec![step]).await;
        } else {
            dep.call(call, vec![step]).await;
        }
    }

    let summary = dep.summary().await;
    let entries = timeline.entries();
    let mut problems = Vec::new();
    let refused = |e: &Entry| {
        e.answer()
            .is_some_and(|(_, a)| a.error_kind() == Some(ErrorKind::Open) && a.attempts() == 0)
    };
    check(
        &mut problems,
        in_order(
            &entries,
            &[
                (
                    "closed → open",
                    &is_transition(BreakerState::Closed, BreakerState::Open),
                ),
                ("a call refused at once", &refused),
                ("a call served by its fallback while open", &|e: &Entry| {
                    e.answer()
                        .is_some_and(|(_, a)| matches!(a, Answer::Fallback { attempts: 0, .. }))
                }),
                (
                    "open → half_open",
                    &is_transition(BreakerState::Open, BreakerState::HalfOpen),
                ),
                ("half_open → open (failed probe)", &|e: &Entry| {
                    e.transition().is_some_and(|(f, t, r)| {
                        f == BreakerState::HalfOpen
                            && t == BreakerState::Open
                            && r == TransitionReason::ProbeFailed
                    })
                }),
                ("a call refused at once", &refused),
                (
                    "open → half_open",
                    &is_transition(BreakerState::Open, BreakerState::HalfOpen),
                ),
                (
                    "half_open → closed",
                    &is_transition(BreakerState::HalfOpen, BreakerState::Closed),
                ),
            ],
        ),
    );
    expect(
        &mut problems,
        summary.breaker == BreakerState::Closed,
        "the breaker should end closed",
    );
    let counts = summary.counts;
    let lesson = format!(
        "{} of {} calls were refused in no time while the API was down, instead of each \
         waiting on a dead connection, and {} was answered from a cache by its fallback; {} \
         attempts reached the API in all.",
        counts.rejected_open,
        counts.total(),
        counts.fallback,
        summary.dependency_attempts
    );
    report(scenario, timeline, vec![summary], lesson, problems)
}

// ---------------------------------------------------------------------------------------------
// Timeout

async fn timeout(seed: u64, timeline: &Timeline) -> Report {
    let scenario = Scenario::Timeout;
    let mut rng = rng_for(seed, scenario);
    let config = SupervisorConfig {
        timeout: Some(ms(500)),
        deadline: Some(secs(1)),
        retry: RetryConfig::constant(3, ms(100)),
        breaker: BreakerConfig::consecutive(5),
        seed: Some(seed),
        ..SupervisorConfig::default()
    };
    let dep = Dependency::start(scenario.service(), config, timeline).await;
    let service = dep.service;

    dep.call(1, vec![Step::Ok(latency(&mut rng, 20, 80))]).await;

    timeline.sleep_until(secs(1)).await;
    timeline.note(service, "fault", "search hangs on the next request");
    dep.call(2, vec![Step::Hang, Step::Ok(latency(&mut rng, 20, 80))])
        .await;

    timeline.sleep_until(secs(3)).await;
    timeline.note(
        service,
        "fault",
        "search is slow, but answers within the timeout",
    );
    dep.call(3, vec![Step::Ok(latency(&mut rng, 380, 450))])
        .await;

    timeline.sleep_until(secs(5)).await;
    timeline.note(service, "fault", "search hangs on every request");
    dep.call(4, vec![Step::Hang]).await;

    let summary = dep.summary().await;
    let entries = timeline.entries();
    let mut problems = Vec::new();
    let cancelled = |call: u32| move |e: &Entry| matches!(&e.event, Event::Cancelled { call: c, .. } if *c == call);
    check(
        &mut problems,
        in_order(
            &entries,
            &[
                ("call 2: attempt cancelled", &cancelled(2)),
                ("call 2: timeout reported", &is_timed_out),
                ("call 2: retry", &is_retry),
                ("call 2: success", &|e: &Entry| {
                    e.answer().is_some_and(|(c, a)| c == 2 && a.is_ok())
                }),
                ("call 3: slow success", &|e: &Entry| {
                    e.answer().is_some_and(|(c, a)| c == 3 && a.is_ok())
                }),
                ("call 4: attempt cancelled", &cancelled(4)),
                ("call 4: retry", &is_retry),
                ("call 4: deadline exceeded", &|e: &Entry| {
                    e.answer().is_some_and(|(c, a)| {
                        c == 4 && a.error_kind() == Some(ErrorKind::DeadlineExceeded)
                    })
                }),
            ],
        ),
    );
    let counts = summary.counts;
    let timeouts = entries.iter().filter(|e| is_timed_out(e)).count();
    let lesson = format!(
        "{timeouts} attempts were cut off and their work cancelled; {} of {} calls still \
         succeeded, and no call took longer than its 1s deadline.",
        counts.success,
        counts.total()
    );
    report(scenario, timeline, vec![summary], lesson, problems)
}

// ---------------------------------------------------------------------------------------------
// Health

async fn health(seed: u64, timeline: &Timeline) -> Report {
    let scenario = Scenario::Health;
    let mut rng = rng_for(seed, scenario);
    let config = SupervisorConfig {
        timeout: Some(secs(2)),
        retry: RetryConfig::off(),
        breaker: BreakerConfig::consecutive(10),
        health: HealthConfig {
            window_size: 20,
            minimum_calls: 10,
            max_age: Some(secs(60)),
            degraded_success_rate: 0.95,
            unhealthy_success_rate: 0.5,
            degraded_latency: Some(ms(200)),
            unhealthy_latency: Some(secs(1)),
        },
        seed: Some(seed),
        ..SupervisorConfig::default()
    };
    let dep = Dependency::start(scenario.service(), config, timeline).await;
    timeline.set_verbose(false);

    struct Phase {
        until: Duration,
        note: &'static str,
        /// Failures per block of `block` calls.
        fails: usize,
        block: usize,
        latency: (u64, u64),
        error: &'static str,
    }
    let phases = [
        Phase {
            until: secs(3),
            note: "normal: 20–60ms, no errors",
            fails: 0,
            block: 1,
            latency: (20, 60),
            error: "",
        },
        Phase {
            until: secs(6),
            note: "slowing down: 250–400ms, 1 call in 10 fails",
            fails: 1,
            block: 10,
            latency: (250, 400),
            error: "upstream model timeout",
        },
        Phase {
            until: secs(9),
            note: "failing: 3 calls in 4 fail fast",
            fails: 3,
            block: 4,
            latency: (5, 15),
            error: "500 internal server error",
        },
        Phase {
            until: secs(13),
            note: "recovered: 20–60ms, no errors",
            fails: 0,
            block: 1,
            latency: (20, 60),
            error: "",
        },
    ];
    let every = ms(100);
    let mut call = 0;
    let mut slot = Duration::ZERO;
    for phase in &phases {
        let phase_start = timeline.elapsed();
        timeline.note(dep.service, "phase", phase.note);
        let before = dep.handle.counts().await.unwrap_or_default();
        let pattern = failure_pattern(&mut rng, 200, phase.block, phase.fails);
        let mut index = 0;
        while slot < phase.until {
            timeline.sleep_until(slot).await;
            call += 1;
            let took = latency(&mut rng, phase.latency.0, phase.latency.1);
            let step = if pattern[index % pattern.len()] {
                Step::Fail(took, DepError::Transient(phase.error))
            } else {
                Step::Ok(took)
            };
            index += 1;
            dep.call(call, vec![step]).await;
            // A client that waits for each answer: slots missed while waiting are skipped.
            let now = timeline.elapsed();
            while slot <= now {
                slot += every;
            }
        }
        let after = dep.handle.counts().await.unwrap_or_default();
        timeline.push(
            dep.service,
            Event::Traffic {
                period: timeline.elapsed() - phase_start,
                counts: after.since(&before),
            },
        );
        dep.health_check().await;
    }

    let summary = dep.summary().await;
    let entries = timeline.entries();
    let mut problems = Vec::new();
    check(
        &mut problems,
        in_order(
            &entries,
            &[
                ("healthy → degraded", &|e: &Entry| {
                    e.health_change() == Some((HealthStatus::Healthy, HealthStatus::Degraded))
                }),
                ("→ unhealthy", &is_health_change_to(HealthStatus::Unhealthy)),
                ("→ healthy", &is_health_change_to(HealthStatus::Healthy)),
            ],
        ),
    );
    expect(
        &mut problems,
        summary.health.status == HealthStatus::Healthy,
        "health should end healthy",
    );
    expect(
        &mut problems,
        entries.iter().all(|e| e.transition().is_none()),
        "the breaker should stay closed",
    );
    let changes = entries
        .iter()
        .filter(|e| e.health_change().is_some())
        .count();
    let lesson = format!(
        "{} calls, {changes} health changes, each one event and one metric update \
         (warden_service_health); the breaker stayed closed: health informs, it does not \
         refuse calls.",
        summary.counts.total()
    );
    report(scenario, timeline, vec![summary], lesson, problems)
}

// ---------------------------------------------------------------------------------------------
// Brownout: every pattern at once

/// The database's behaviour over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weather {
    Normal,
    Brownout,
    Outage,
}

const BROWNOUT_AT: Duration = Duration::from_secs(20);
const OUTAGE_AT: Duration = Duration::from_secs(40);
const RECOVERY_AT: Duration = Duration::from_secs(55);
const TRAFFIC_UNTIL: Duration = Duration::from_secs(90);

fn weather_at(t: Duration) -> Weather {
    if t < BROWNOUT_AT || t >= RECOVERY_AT {
        Weather::Normal
    } else if t < OUTAGE_AT {
        Weather::Brownout
    } else {
        Weather::Outage
    }
}

fn database_step(weather: Weather, rng: &mut SmallRng) -> Step {
    let roll: f64 = rng.random();
    match weather {
        Weather::Normal if roll < 0.005 => Step::Fail(
            latency(rng, 5, 20),
            DepError::Transient("deadlock detected"),
        ),
        Weather::Normal => Step::Ok(latency(rng, 10, 60)),
        Weather::Brownout if roll < 0.03 => Step::Fail(
            latency(rng, 50, 300),
            DepError::Transient("too many connections"),
        ),
        Weather::Brownout if roll < 0.05 => Step::Hang,
        Weather::Brownout if roll < 0.25 => Step::Ok(latency(rng, 1_500, 4_000)),
        Weather::Brownout => Step::Ok(latency(rng, 500, 2_000)),
        Weather::Outage if roll < 0.85 => Step::Fail(
            latency(rng, 1, 5),
            DepError::Transient("connection refused"),
        ),
        Weather::Outage => Step::Hang,
    }
}

/// The brownout's configuration: the database preset with a shorter timeout and open period,
/// a breaker that tolerates a few failures in a row, and a tight retry budget.
fn brownout_config(seed: u64) -> SupervisorConfig {
    let database = SupervisorConfig::database();
    SupervisorConfig {
        timeout: Some(secs(2)),
        max_in_flight: 24,
        breaker: BreakerConfig {
            consecutive_failures: Some(10),
            open_duration: OpenDuration {
                base: secs(10),
                max: secs(40),
                ..database.breaker.open_duration
            },
            ..database.breaker.clone()
        },
        retry: RetryConfig {
            budget: BudgetConfig {
                ratio: 0.1,
                min_per_second: 1,
                ..BudgetConfig::default()
            },
            ..database.retry.clone()
        },
        seed: Some(seed),
        ..database
    }
}

async fn brownout(seed: u64, timeline: &Timeline) -> Report {
    let scenario = Scenario::Brownout;
    let rng = Arc::new(Mutex::new(rng_for(seed, scenario)));
    let config = brownout_config(seed);
    let dep = Arc::new(Dependency::start(scenario.service(), config, timeline).await);
    let service = dep.service;
    timeline.set_verbose(false);
    timeline.note(
        service,
        "phase",
        "normal: 10–60ms, 0.5% errors · 20 calls/s",
    );

    let every = ms(50);
    let report_every = secs(10);
    let mut calls = Vec::new();
    let mut slot = Duration::ZERO;
    let mut next_report = report_every;
    let mut before = dep.handle.counts().await.unwrap_or_default();
    let mut weather = Weather::Normal;
    let mut call = 0;
    while slot < TRAFFIC_UNTIL {
        timeline.sleep_until(slot).await;
        if slot >= next_report {
            let after = dep.handle.counts().await.unwrap_or_default();
            timeline.sync(&dep.handle).await;
            timeline.push(
                service,
                Event::Traffic {
                    period: report_every,
                    counts: after.since(&before),
                },
            );
            before = after;
            next_report += report_every;
        }
        let now_weather = weather_at(slot);
        if now_weather != weather {
            weather = now_weather;
            let text = match weather {
                Weather::Brownout => "brownout: answers take 0.5–4s, 3% errors, 2% hang",
                Weather::Outage => "outage: 85% of connections refused, the rest hang",
                Weather::Normal => "recovered: 10–60ms again",
            };
            timeline.note(service, "phase", text);
        }
        call += 1;
        let rng = Arc::clone(&rng);
        let origin = timeline.clone();
        let source: StepSource = Box::new(move |_attempt| {
            let weather = weather_at(origin.elapsed());
            database_step(
                weather,
                &mut rng.lock().unwrap_or_else(PoisonError::into_inner),
            )
        });
        let dep = Arc::clone(&dep);
        calls.push(actix::spawn(async move {
            dep.call_with(call, source, false, false).await
        }));
        slot += every;
    }
    for handle in calls {
        let _ = handle.await;
    }
    let after = dep.handle.counts().await.unwrap_or_default();
    timeline.sync(&dep.handle).await;
    timeline.push(
        service,
        Event::Traffic {
            period: timeline.elapsed() - (next_report - report_every),
            counts: after.since(&before),
        },
    );
    dep.health_check().await;

    let summary = dep.summary().await;
    let entries = timeline.entries();
    let mut problems = Vec::new();
    let opened = |e: &Entry| {
        e.transition()
            .is_some_and(|(_, t, _)| t == BreakerState::Open)
    };
    check(
        &mut problems,
        in_order(
            &entries,
            &[
                ("health leaves healthy", &|e: &Entry| {
                    e.health_change()
                        .is_some_and(|(f, _)| f == HealthStatus::Healthy)
                }),
                ("the breaker opens", &opened),
                ("a call refused at once", &|e: &Entry| {
                    e.answer()
                        .is_some_and(|(_, a)| a.error_kind() == Some(ErrorKind::Open))
                }),
                (
                    "half_open → closed",
                    &is_transition(BreakerState::HalfOpen, BreakerState::Closed),
                ),
                ("→ healthy", &is_health_change_to(HealthStatus::Healthy)),
            ],
        ),
    );
    let last_open = entries.iter().rposition(opened);
    let last_close = entries
        .iter()
        .rposition(is_transition(BreakerState::HalfOpen, BreakerState::Closed));
    expect(
        &mut problems,
        last_close > last_open,
        "the breaker should close after its last opening",
    );
    expect(
        &mut problems,
        summary.breaker == BreakerState::Closed && summary.health.status == HealthStatus::Healthy,
        "the database should end closed and healthy",
    );
    let counts = summary.counts;
    expect(
        &mut problems,
        counts.timeout > 0 && counts.retries > 0,
        "expected timeouts and retries during the brownout",
    );
    expect(
        &mut problems,
        counts.rejected_overloaded > 0 && counts.rejected_budget > 0,
        "expected the bulkhead and the retry budget to shed load during the brownout",
    );
    let refused = counts.rejected_open + counts.rejected_overloaded;
    let ran = counts.total() - refused;
    let lesson = format!(
        "Of {} calls, {} were refused without touching the database ({} by the open breaker, \
         {} by the full bulkhead). The {ran} that ran made {} attempts, {:.2} each: the \
         budget refused {} retries. {} calls succeeded.",
        counts.total(),
        refused,
        counts.rejected_open,
        counts.rejected_overloaded,
        counts.attempts,
        counts.attempts as f64 / ran.max(1) as f64,
        counts.rejected_budget,
        counts.success,
    );
    report(scenario, timeline, vec![summary], lesson, problems)
}
