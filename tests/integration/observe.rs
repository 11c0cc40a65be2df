//! Observe-only mode (issue 20, item 3): `mode = "observe"` on the breaker, the throttle, the
//! adaptive concurrency limit and the rate limiter. Every decision is made and recorded as it
//! would be, nothing is refused.
//!
//! The central check, once per policy: two supervisors with the same configuration except the
//! policy's `mode` are driven through the same scripted sequence of outcomes (a dependency that
//! fails for a stretch and recovers, over time steps, on the paused clock, seeded), and their
//! decision streams must be equal — the breaker's transitions (or the throttle's, or the limit
//! at each step) and, before each call, the refusals so far: `rejected{reason}` when enforced,
//! `would_reject{reason}` when observed. In observe every call ran and none was answered with a
//! refusal.
//!
//! What makes each test able to fail: a call let through is a *shadow* for the policy that
//! would have refused it, and its outcome must not be fed back into that policy. Feeding it
//! (its failures into the breaker's consecutive count, its attempts into the throttle's
//! window, its samples into the limit; or taking tokens for calls the rate limiter refuses)
//! changes the transition times, the throttle's probability, the limit or the refusals, and the
//! streams part.
//!
//! Between steps the driver reads the counts (which makes the supervisor apply every report
//! first), so each call starts with the state the previous ones left. Transition times are
//! compared at 10 ms, the calls' spacing: an outcome handed over without a message is applied
//! at the supervisor's next drain, at most one batch window (1 ms) later when other reports
//! keep it draining, which observe's extra calls can do — never across a call's start.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use warden::limit::{AimdConfig, ConcurrencyLimitConfig};
use warden::messages::{CallCounts, EventKind, SupervisorEvent};
use warden::prelude::*;

const MS: Duration = Duration::from_millis(1);

/// A number from `t` (splitmix64): the scripted dependency's dice, the same in both runs.
fn dice(t: u64) -> u64 {
    let mut z = t.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether an attempt starting `t` ms into the run fails, with the failure percentage `pct(t)`.
fn fails(t: u64, pct: impl Fn(u64) -> u64) -> bool {
    dice(t) % 100 < pct(t)
}

/// Milliseconds since `start` (the paused clock).
fn offset(start: tokio::time::Instant) -> u64 {
    (tokio::time::Instant::now() - start).as_millis() as u64
}

/// Subscribes a channel to `handle`'s events.
async fn events(handle: &ServiceHandle) -> tokio::sync::mpsc::Receiver<SupervisorEvent> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1 << 16);
    handle.subscribe(sender).await.unwrap();
    receiver
}

fn received(mut receiver: tokio::sync::mpsc::Receiver<SupervisorEvent>) -> Vec<SupervisorEvent> {
    let mut all = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        all.push(event);
    }
    all
}

/// A refusal the caller saw: what observe mode must never answer.
fn refused<E>(answer: &Result<(), CallError<E>>) -> bool {
    matches!(
        answer,
        Err(CallError::Open { .. }
            | CallError::RetryRefused { .. }
            | CallError::Throttled { .. }
            | CallError::RateLimited { .. }
            | CallError::Overloaded)
    )
}

/// What one run decided, to compare across modes, and what it did, to check observe by.
#[derive(Debug, Default)]
struct Trace {
    /// Before each call (or step): the refusals so far (`rejected` enforced, `would_reject`
    /// observed).
    refusals: Vec<u64>,
    /// The policy's own decisions (transitions, probability bands, limits), with when.
    decisions: Vec<String>,
    /// Calls made, and calls whose operation ran at least once.
    calls: u64,
    ran: u64,
    /// Calls answered with a refusal.
    refused_answers: u64,
    counts: CallCounts,
}

impl Trace {
    /// Observe's promises: every call ran, none was refused, nothing counted as rejected.
    #[track_caller]
    fn assert_nothing_refused(&self) {
        assert_eq!(self.ran, self.calls, "every call ran");
        assert_eq!(
            self.refused_answers, 0,
            "no call was answered with a refusal"
        );
        let c = &self.counts;
        assert_eq!(
            (
                c.rejected_open,
                c.rejected_throttled,
                c.rejected_rate_limited,
                c.rejected_overloaded
            ),
            (0, 0, 0, 0)
        );
    }
}

/// `config` with the policy `set_mode` sets in `mode`.
fn with_mode(
    mut config: SupervisorConfig,
    mode: PolicyMode,
    set_mode: impl Fn(&mut SupervisorConfig, PolicyMode),
) -> SupervisorConfig {
    set_mode(&mut config, mode);
    config
}

// ---------------------------------------------------------------------------------------------
// The breaker

fn breaker_config(mode: PolicyMode) -> SupervisorConfig {
    with_mode(
        SupervisorConfig {
            // Retries, so a retry meets the open breaker (`Stop::Open`), and a shadow's retry
            // runs after the breaker closed again: fed to the breaker, its failures would count.
            retry: RetryConfig::constant(2, 25 * MS).budget(BudgetConfig::off()),
            breaker: BreakerConfig::consecutive(3)
                .open_for(Duration::from_millis(200))
                .jitter(0.0),
            ..plain_config()
        },
        mode,
        |config, mode| config.breaker.mode = mode,
    )
}

/// Failure percentage of the breaker's dependency: an outage, a brownout, a quiet rest.
fn breaker_pct(t: u64) -> u64 {
    match t {
        1000..2000 => 90,
        3000..3600 => 60,
        _ => 5,
    }
}

/// One call every 10 ms for 5 s; each attempt takes 3 ms and fails as the script says.
async fn breaker_run(name: &str, mode: PolicyMode) -> Trace {
    let handle = start(name, breaker_config(mode));
    let receiver = events(&handle).await;
    let start_at = tokio::time::Instant::now();
    let retry_refused = Arc::new(AtomicU64::new(0));
    let ran = Arc::new(AtomicU64::new(0));
    let mut trace = Trace::default();
    let mut calls = Vec::new();
    for _ in 0..500 {
        let counts = handle.counts().await.unwrap();
        trace.refusals.push(match mode {
            PolicyMode::Enforce => counts.rejected_open + retry_refused.load(Ordering::SeqCst),
            PolicyMode::Observe => counts.would_reject_open,
        });
        let (handle, retry_refused, ran) = (handle.clone(), retry_refused.clone(), ran.clone());
        calls.push(actix::spawn(async move {
            let first = AtomicBool::new(true);
            let answer = handle
                .call(|| {
                    if first.swap(false, Ordering::SeqCst) {
                        ran.fetch_add(1, Ordering::SeqCst);
                    }
                    let failed = fails(offset(start_at), breaker_pct);
                    async move {
                        tokio::time::sleep(3 * MS).await;
                        if failed {
                            Err(DepError("down"))
                        } else {
                            Ok(())
                        }
                    }
                })
                .await;
            if matches!(answer, Err(CallError::RetryRefused { .. })) {
                retry_refused.fetch_add(1, Ordering::SeqCst);
            }
            answer
        }));
        tokio::time::sleep(10 * MS).await;
    }
    let answers: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    trace.calls = answers.len() as u64;
    trace.ran = ran.load(Ordering::SeqCst);
    trace.refused_answers = answers.iter().filter(|a| refused(a)).count() as u64;
    trace.counts = handle.counts().await.unwrap();
    let start_std = start_at.into_std();
    for event in received(receiver) {
        if let EventKind::StateChanged(t) = event.kind {
            let at = (t.at - start_std).as_millis() / 10;
            trace
                .decisions
                .push(format!("{at}0ms {:?}→{:?} {:?}", t.from, t.to, t.reason));
        }
    }
    trace
}

#[actix::test]
async fn an_observed_breaker_decides_as_an_enforced_one_and_refuses_nothing() {
    pause_aligned().await;
    let enforced = breaker_run("breaker-enforced", PolicyMode::Enforce).await;
    let observed = breaker_run("breaker-observed", PolicyMode::Observe).await;
    println!("{:#?}", enforced.decisions);
    // The script exercises what it should: trips, failed and successful probes, refusals of
    // calls and of retries.
    let opened = enforced
        .decisions
        .iter()
        .filter(|d| d.contains("Closed→Open"))
        .count();
    assert!(opened >= 2, "{:?}", enforced.decisions);
    assert!(enforced.decisions.iter().any(|d| d.contains("ProbeFailed")));
    assert!(
        enforced.refused_answers > 50,
        "{}",
        enforced.refused_answers
    );
    assert!(enforced.counts.rejected_open > 0);
    assert!(
        enforced.refused_answers > enforced.counts.rejected_open,
        "some retries were refused too"
    );
    // Same decisions, at the same times.
    assert_eq!(observed.decisions, enforced.decisions);
    assert_eq!(observed.refusals, enforced.refusals);
    assert_eq!(
        observed.counts.would_reject_open, enforced.refused_answers,
        "every refusal, of a call or of a retry, is one would-be refusal"
    );
    // And nothing was refused: the shadows ran (and were retried) in the refused calls' place.
    observed.assert_nothing_refused();
    assert!(observed.counts.attempts > enforced.counts.attempts);
    assert_eq!(enforced.counts.would_reject(), 0);
}

// ---------------------------------------------------------------------------------------------
// The throttle

fn throttle_config(mode: PolicyMode) -> SupervisorConfig {
    with_mode(
        SupervisorConfig {
            throttle: Some(ThrottleConfig {
                k: 1.5,
                window: Duration::from_secs(2),
                buckets: 10,
                minimum_requests: 10,
                max_reject_probability: 0.9,
                ..ThrottleConfig::default()
            }),
            // Nothing but the throttle refuses: a breaker that never trips.
            breaker: BreakerConfig::consecutive(u32::MAX),
            ..plain_config()
        },
        mode,
        |config, mode| {
            if let Some(throttle) = &mut config.throttle {
                throttle.mode = mode;
            }
        },
    )
}

fn throttle_pct(t: u64) -> u64 {
    match t {
        1000..2500 => 85,
        3000..3500 => 50,
        _ => 2,
    }
}

/// A call's criticality in a mixed run: 20 % critical, 50 % default, 30 % sheddable.
fn class_of(i: u32) -> Criticality {
    match i % 10 {
        0 | 1 => Criticality::Critical,
        2..=6 => Criticality::Default,
        _ => Criticality::Sheddable,
    }
}

async fn throttle_run(name: &str, mode: PolicyMode) -> Trace {
    throttle_run_with(name, mode, |_| Criticality::Default).await
}

async fn throttle_run_with(
    name: &str,
    mode: PolicyMode,
    criticality: impl Fn(u32) -> Criticality,
) -> Trace {
    let handle = start(name, throttle_config(mode));
    let receiver = events(&handle).await;
    let start_at = tokio::time::Instant::now();
    let ran = Arc::new(AtomicU64::new(0));
    let mut trace = Trace::default();
    let mut answers = Vec::new();
    // One call at a time, every 10 ms, for 6 s.
    for i in 0..600u32 {
        let counts = handle.counts().await.unwrap();
        trace.refusals.push(match mode {
            PolicyMode::Enforce => counts.rejected_throttled,
            PolicyMode::Observe => counts.would_reject_throttled,
        });
        let ran = ran.clone();
        let answer = criticality(i)
            .scope(handle.call(|| {
                ran.fetch_add(1, Ordering::SeqCst);
                let failed = fails(offset(start_at), throttle_pct);
                async move {
                    tokio::time::sleep(3 * MS).await;
                    if failed {
                        Err(DepError("brownout"))
                    } else {
                        Ok(())
                    }
                }
            }))
            .await;
        answers.push(answer);
        tokio::time::sleep_until(start_at + (i + 1) * 10 * MS).await;
    }
    trace.calls = answers.len() as u64;
    trace.ran = ran.load(Ordering::SeqCst);
    trace.refused_answers = answers.iter().filter(|a| refused(a)).count() as u64;
    trace.counts = handle.counts().await.unwrap();
    let start_std = start_at.into_std();
    for event in received(receiver) {
        if let EventKind::ThrottleChanged { from, to, .. } = event.kind {
            let at = (event.at - start_std).as_millis() / 10;
            trace.decisions.push(format!("{at}0ms {from:.4}→{to:.4}"));
        }
    }
    trace
}

#[actix::test]
async fn an_observed_throttle_decides_as_an_enforced_one_and_refuses_nothing() {
    pause_aligned().await;
    let enforced = throttle_run("throttle-enforced", PolicyMode::Enforce).await;
    let observed = throttle_run("throttle-observed", PolicyMode::Observe).await;
    println!("{:#?}", enforced.decisions);
    assert!(
        enforced.counts.rejected_throttled > 50,
        "{:?}",
        enforced.counts
    );
    assert!(enforced.decisions.len() >= 2, "{:?}", enforced.decisions);
    assert_throttled_alike(&enforced, &observed);
    // The calls the throttle would have shed reached the dependency.
    assert_eq!(observed.counts.attempts, observed.calls);
    assert_eq!(
        enforced.counts.attempts + enforced.counts.rejected_throttled,
        observed.counts.attempts
    );
}

/// With mixed criticalities the throttle's refusals fall on sheddable calls first; an
/// observing throttle counts its would-be refusals in their class too, so it decides alike.
#[actix::test]
async fn an_observed_throttle_with_mixed_criticalities_decides_as_an_enforced_one() {
    pause_aligned().await;
    let enforced = throttle_run_with("mixed-enforced", PolicyMode::Enforce, class_of).await;
    let observed = throttle_run_with("mixed-observed", PolicyMode::Observe, class_of).await;
    let shed = enforced.counts.shed;
    assert!(shed[0] > 50 && shed[0] > shed[1], "{shed:?}");
    assert_throttled_alike(&enforced, &observed);
}

/// The observing throttle made the enforcing one's decisions, at the same steps, and refused
/// nothing.
#[track_caller]
fn assert_throttled_alike(enforced: &Trace, observed: &Trace) {
    assert_eq!(observed.decisions, enforced.decisions);
    assert_eq!(observed.refusals, enforced.refusals);
    assert_eq!(
        observed.counts.would_reject_throttled,
        enforced.counts.rejected_throttled
    );
    observed.assert_nothing_refused();
}

// ---------------------------------------------------------------------------------------------
// The adaptive concurrency limit

fn limit_config(mode: PolicyMode) -> SupervisorConfig {
    SupervisorConfig {
        max_in_flight: 64,
        concurrency_limit: Some(
            ConcurrencyLimitConfig::Aimd(AimdConfig {
                initial_limit: 5,
                min_limit: 2,
                max_limit: 40,
                backoff_ratio: 0.8,
                latency_threshold: 15 * MS,
                ..AimdConfig::default()
            })
            .with_mode(mode),
        ),
        ..plain_config()
    }
}

/// A batch of 30 calls every 50 ms for 8 s; each takes 5 ms, or 30 ms while the dependency
/// is overloaded (slower than the limit's threshold: it backs off).
async fn limit_run(name: &str, mode: PolicyMode) -> Trace {
    let handle = start(name, limit_config(mode));
    let receiver = events(&handle).await;
    let start_at = tokio::time::Instant::now();
    let ran = Arc::new(AtomicU64::new(0));
    let mut trace = Trace::default();
    let mut answers = Vec::new();
    for step in 0..160u64 {
        let counts = handle.counts().await.unwrap();
        let limit = match mode {
            PolicyMode::Enforce => {
                assert_eq!(handle.observed_limit(), None);
                handle.limit()
            }
            PolicyMode::Observe => {
                assert_eq!(
                    handle.limit(),
                    64,
                    "the bulkhead admits up to max_in_flight"
                );
                handle.observed_limit().expect("the limit observes")
            }
        };
        trace.decisions.push(format!("step {step}: limit {limit}"));
        trace.refusals.push(match mode {
            PolicyMode::Enforce => counts.rejected_overloaded,
            PolicyMode::Observe => counts.would_reject_overloaded,
        });
        let latency = match step {
            40..80 | 110..120 => 30 * MS,
            _ => 5 * MS,
        };
        let batch: Vec<_> = (0..30)
            .map(|_| {
                let (handle, ran) = (handle.clone(), ran.clone());
                actix::spawn(async move {
                    handle
                        .call(|| {
                            ran.fetch_add(1, Ordering::SeqCst);
                            async move {
                                tokio::time::sleep(latency).await;
                                Ok::<(), DepError>(())
                            }
                        })
                        .await
                })
            })
            .collect();
        answers.extend(join_all(batch).await.into_iter().map(Result::unwrap));
        let next = start_at + (step + 1) as u32 * 50 * MS;
        tokio::time::sleep_until(next).await;
    }
    trace.calls = answers.len() as u64;
    trace.ran = ran.load(Ordering::SeqCst);
    trace.refused_answers = answers.iter().filter(|a| refused(a)).count() as u64;
    trace.counts = handle.counts().await.unwrap();
    for event in received(receiver) {
        if let EventKind::LimitChanged { from, to } = event.kind {
            let at = (event.at - start_at.into_std()).as_millis() / 10;
            trace.decisions.push(format!("{at}0ms limit {from}→{to}"));
        }
    }
    trace
}

#[actix::test]
async fn an_observed_concurrency_limit_decides_as_an_enforced_one_and_refuses_nothing() {
    pause_aligned().await;
    let enforced = limit_run("limit-enforced", PolicyMode::Enforce).await;
    let observed = limit_run("limit-observed", PolicyMode::Observe).await;
    println!("{:#?}", enforced.decisions);
    let limits: Vec<u32> = enforced
        .decisions
        .iter()
        .filter_map(|d| {
            d.strip_prefix("step ")?
                .split("limit ")
                .nth(1)?
                .parse()
                .ok()
        })
        .collect();
    // The limit grew, backed off in the overload, and grew again.
    let peak = *limits[..40].iter().max().unwrap();
    assert!(peak > 10, "{limits:?}");
    assert!(limits[79] < peak, "{limits:?}");
    assert!(
        enforced.counts.rejected_overloaded > 100,
        "{:?}",
        enforced.counts
    );
    assert_eq!(observed.decisions, enforced.decisions);
    assert_eq!(observed.refusals, enforced.refusals);
    assert_eq!(
        observed.counts.would_reject_overloaded,
        enforced.counts.rejected_overloaded
    );
    observed.assert_nothing_refused();
    assert_eq!(observed.counts.success, observed.calls);
}

// ---------------------------------------------------------------------------------------------
// The rate limiter

fn rate_config(mode: PolicyMode) -> SupervisorConfig {
    SupervisorConfig {
        // 20 calls a second, a burst of 3, waits up to 30 ms for a token.
        rate_limit: Some(
            RateLimitConfig::per_second(20.0)
                .burst(3)
                .max_wait(30 * MS)
                .mode(mode),
        ),
        ..plain_config()
    }
}

/// Calls arriving in bursts over 4 s (every 10 ms for 300 ms, then every 100 ms for 700 ms);
/// records when each call's operation started, relative to when the call was made.
async fn rate_run(name: &str, mode: PolicyMode) -> (Trace, Vec<Duration>) {
    let handle = start(name, rate_config(mode));
    let start_at = tokio::time::Instant::now();
    let ran = Arc::new(AtomicU64::new(0));
    let mut trace = Trace::default();
    let mut calls = Vec::new();
    let mut t = 0u64;
    while t < 4000 {
        tokio::time::sleep_until(start_at + t as u32 * MS).await;
        let counts = handle.counts().await.unwrap();
        trace.refusals.push(match mode {
            PolicyMode::Enforce => counts.rejected_rate_limited,
            PolicyMode::Observe => counts.would_reject_rate_limited,
        });
        let (handle, ran) = (handle.clone(), ran.clone());
        calls.push(actix::spawn(async move {
            let made = tokio::time::Instant::now();
            let mut waited = None;
            let answer = handle
                .call(|| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    waited = Some(made.elapsed());
                    async { Ok::<(), DepError>(()) }
                })
                .await;
            (answer, waited)
        }));
        t += if t % 1000 < 300 { 10 } else { 100 };
    }
    let answers: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    trace.calls = answers.len() as u64;
    trace.ran = ran.load(Ordering::SeqCst);
    trace.refused_answers = answers.iter().filter(|(a, _)| refused(a)).count() as u64;
    trace.counts = handle.counts().await.unwrap();
    let waits = answers.iter().filter_map(|(_, waited)| *waited).collect();
    (trace, waits)
}

#[actix::test]
async fn an_observed_rate_limit_decides_as_an_enforced_one_and_refuses_nothing() {
    pause_aligned().await;
    let (enforced, enforced_waits) = rate_run("rate-enforced", PolicyMode::Enforce).await;
    let (observed, observed_waits) = rate_run("rate-observed", PolicyMode::Observe).await;
    assert!(
        enforced.counts.rejected_rate_limited > 20,
        "{:?}",
        enforced.counts
    );
    assert!(
        enforced_waits.iter().any(|w| *w > Duration::ZERO),
        "some enforced calls waited for their token"
    );
    // The same calls were refused (or would have been): a call let through took no token, as
    // a refused one takes none, and a call that would wait took its token as it would.
    assert_eq!(observed.refusals, enforced.refusals);
    assert_eq!(
        observed.counts.would_reject_rate_limited,
        enforced.counts.rejected_rate_limited
    );
    observed.assert_nothing_refused();
    // Observing, nothing waits.
    assert_eq!(observed_waits.len() as u64, observed.calls);
    assert!(
        observed_waits.iter().all(|w| *w == Duration::ZERO),
        "{observed_waits:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reload, configuration

#[actix::test]
async fn a_reload_switches_a_policy_between_enforce_and_observe_without_losing_its_state() {
    pause_aligned().await;
    let mut config = SupervisorConfig {
        breaker: BreakerConfig::consecutive(1).open_for(Duration::from_secs(60)),
        concurrency_limit: Some(ConcurrencyLimitConfig::Aimd(AimdConfig {
            initial_limit: 4,
            ..AimdConfig::default()
        })),
        rate_limit: Some(RateLimitConfig::per_second(1.0).burst(2)),
        ..plain_config()
    };
    let svc = start("reloaded", config.clone());
    fail(&svc).await.unwrap_err();
    assert!(svc.is_open());
    assert!(matches!(succeed(&svc).await, Err(CallError::Open { .. })));

    // Breaker, limit and rate limit to observe: the breaker stays open, the limit keeps its
    // value (now observed), the bucket its tokens (one left of two).
    config.breaker.mode = PolicyMode::Observe;
    config.concurrency_limit = config
        .concurrency_limit
        .map(ConcurrencyLimitConfig::observe);
    config.rate_limit = config.rate_limit.map(RateLimitConfig::observe);
    let change = svc.reconfigure(config.clone()).await.unwrap();
    assert_eq!(
        change.changed,
        ["breaker", "concurrency_limit", "rate_limit"]
    );
    assert!(change.reset.is_empty(), "{:?}", change.reset);
    assert_eq!(
        svc.observing(),
        ["breaker", "concurrency_limit", "rate_limit"]
    );
    assert!(svc.is_open(), "the breaker is still open");
    assert_eq!(svc.observed_limit(), Some(4));
    assert_eq!(svc.limit(), config.max_in_flight);
    let before = svc.counts().await.unwrap();
    // Two calls: the first takes the last token, the second has none; both run.
    succeed(&svc).await.unwrap();
    succeed(&svc).await.unwrap();
    let counts = svc.counts().await.unwrap().since(&before);
    assert_eq!(counts.success, 2);
    assert_eq!(counts.would_reject_open, 2);
    assert_eq!(counts.would_reject_rate_limited, 1);
    assert!(svc.is_open(), "the shadows' successes did not close it");

    // Back to enforce: refused again, by the breaker still open.
    config.breaker.mode = PolicyMode::Enforce;
    let change = svc.reconfigure(config).await.unwrap();
    assert_eq!(change.changed, ["breaker"]);
    assert!(svc.observing() == ["concurrency_limit", "rate_limit"]);
    assert!(matches!(succeed(&svc).await, Err(CallError::Open { .. })));
}

#[actix::test]
async fn an_operator_forcing_the_breaker_open_is_obeyed_even_while_it_observes() {
    let svc = start(
        "forced",
        SupervisorConfig {
            breaker: BreakerConfig::consecutive(3).observe(),
            ..plain_config()
        },
    );
    svc.force_open().await.unwrap();
    assert!(matches!(succeed(&svc).await, Err(CallError::Open { .. })));
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.rejected_open, counts.would_reject_open), (1, 0));
}

#[actix::test]
async fn mode_observe_parses_on_each_policy_and_an_unknown_mode_names_its_field() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.s]
        breaker = { consecutive_failures = 3, mode = "observe" }
        throttle = { k = 2.0, mode = "observe" }
        concurrency_limit = { algorithm = "aimd", max_limit = 50, mode = "observe" }
        rate_limit = { rate = 10.0, mode = "observe" }

        [services.g]
        concurrency_limit = { algorithm = "gradient", mode = "observe" }
        rate_limit = { rate = 10.0, mode = "enforce" }
        "#,
    )
    .unwrap();
    let s = &file.services["s"];
    assert_eq!(s.breaker.mode, PolicyMode::Observe);
    assert_eq!(s.throttle.as_ref().unwrap().mode, PolicyMode::Observe);
    assert_eq!(
        s.concurrency_limit.as_ref().unwrap().mode(),
        PolicyMode::Observe
    );
    assert_eq!(s.rate_limit.as_ref().unwrap().mode, PolicyMode::Observe);
    let g = &file.services["g"];
    assert_eq!(
        g.concurrency_limit.as_ref().unwrap().mode(),
        PolicyMode::Observe
    );
    assert_eq!(g.rate_limit.as_ref().unwrap().mode, PolicyMode::Enforce);
    assert_eq!(g.breaker.mode, PolicyMode::Enforce, "the default");

    // The README's example.
    let readme = ServicesFile::from_toml_str(
        r#"
        [services.payments]
        breaker = { consecutive_failures = 5, open_duration = { base = "30s" }, mode = "observe" }
        throttle = { k = 2.0, mode = "observe" }
        concurrency_limit = { algorithm = "gradient", max_limit = 200, mode = "observe" }
        rate_limit = { rate = 50.0, burst = 50, mode = "observe" }
        "#,
    )
    .unwrap();
    let payments = start("payments-readme", readme.services["payments"].clone());
    assert_eq!(
        payments.observing(),
        ["breaker", "throttle", "concurrency_limit", "rate_limit"]
    );

    for (body, field) in [
        ("breaker.mode = \"dark\"", "services.s.breaker.mode"),
        (
            "throttle = { mode = \"shadow\" }",
            "services.s.throttle.mode",
        ),
        (
            "rate_limit = { mode = \"Observe\" }",
            "services.s.rate_limit.mode",
        ),
        // An internally tagged table is read whole: the error names the table.
        (
            "concurrency_limit = { algorithm = \"aimd\", mode = \"watch\" }",
            "services.s.concurrency_limit",
        ),
    ] {
        let text = format!("[services.s]\n{body}\n");
        match ServicesFile::from_toml_str(&text) {
            Err(err @ ConfigError::Parse { .. }) => {
                assert_eq!(err.field(), Some(field), "{body}: {err}");
                assert!(err.to_string().contains("enforce"), "{body}: {err}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}
