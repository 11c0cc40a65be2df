//! Hedged requests: an idempotent call whose attempt has not answered within the hedge delay
//! gets another attempt; the first value wins and the loser is cancelled; hedges are bounded
//! (`max_hedges`), spend the retry budget, never run while the breaker is half-open, and every
//! attempt is recorded. Paused clock throughout.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use tokio::time::Instant;
use warden::hedge::HedgeConfig;
use warden::messages::{EventKind, SupervisorEvent};
use warden::observe::{self, PrometheusHandle};
use warden::prelude::*;
use warden::retry::ErrorClass;

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// The call's value; the error in the failure message otherwise.
#[track_caller]
fn value(answer: Result<usize, CallError<DepError>>) -> usize {
    match answer {
        Ok(value) => value,
        Err(error) => panic!("expected a value, got {error:?}"),
    }
}

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| observe::install_recorder().expect("first recorder of this process"))
}

/// The value of the series `line_prefix` (`name{labels} `) as exported, 0 when absent.
fn exported(line_prefix: &str) -> u64 {
    recorder()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(line_prefix))
        .map_or(0, |value| value.parse().expect("a number"))
}

/// One scripted attempt: how long it takes and how it ends.
#[derive(Debug, Clone, Copy)]
enum Step {
    Ok(u64),
    Transient(u64),
    Permanent(u64),
}

/// A dependency whose n-th invocation follows `steps[n]` (the last step repeats); it records
/// which invocations were dropped before they ended (cancelled).
#[derive(Clone)]
struct Scripted {
    steps: Arc<Vec<Step>>,
    hits: Hits,
    cancelled: Arc<Mutex<Vec<usize>>>,
}

/// Marks its invocation cancelled if dropped before `done`.
struct Running {
    index: usize,
    cancelled: Arc<Mutex<Vec<usize>>>,
    done: bool,
}

impl Running {
    fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            self.cancelled.lock().unwrap().push(self.index);
        }
    }
}

impl Scripted {
    fn new(steps: &[Step]) -> Self {
        Scripted {
            steps: Arc::new(steps.to_vec()),
            hits: Hits::default(),
            cancelled: Arc::default(),
        }
    }

    fn call(&self) -> Call<usize, DepError> {
        let this = self.clone();
        Call::new(move || {
            let index = this.hits.hit() as usize - 1;
            let step = this.steps[index.min(this.steps.len() - 1)];
            let running = Running {
                index,
                cancelled: Arc::clone(&this.cancelled),
                done: false,
            };
            async move {
                let (latency, answer) = match step {
                    Step::Ok(l) => (l, Ok(index)),
                    Step::Transient(l) => (l, Err(DepError("transient"))),
                    Step::Permanent(l) => (l, Err(DepError("permanent"))),
                };
                tokio::time::sleep(ms(latency)).await;
                running.finish();
                answer
            }
        })
        .classify(|e: &DepError| {
            if e.0 == "permanent" {
                ErrorClass::permanent()
            } else {
                ErrorClass::transient()
            }
        })
        .boxed()
    }

    fn cancelled(&self) -> Vec<usize> {
        self.cancelled.lock().unwrap().clone()
    }
}

fn hedged_config(hedge: HedgeConfig) -> SupervisorConfig {
    SupervisorConfig {
        hedge: Some(hedge),
        timeout: Some(Duration::from_secs(5)),
        ..plain_config()
    }
}

#[actix::test]
async fn a_slow_attempt_is_hedged_after_the_delay_and_the_hedge_wins() {
    recorder();
    pause_aligned().await;
    let svc = start("hedge-wins", hedged_config(HedgeConfig::fixed(ms(20))));
    let dep = Scripted::new(&[Step::Ok(1000), Step::Ok(10)]);
    let begun = Instant::now();
    let answer = svc.send(dep.call().idempotent()).await;
    // The hedge started at 20 ms and answered 10 ms later.
    assert_about(begun.elapsed(), ms(30));
    assert_eq!(value(answer), 1, "the hedge's value");
    assert_eq!(dep.hits.get(), 2);
    assert_eq!(dep.cancelled(), vec![0], "the slow attempt was cancelled");
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (
            counts.success,
            counts.attempts,
            counts.hedges,
            counts.hedges_won
        ),
        (1, 2, 1, 1)
    );
    // Both attempts are in the health window: the loser with what is known of its latency,
    // that it did not answer within the 20 ms delay (not the 30 ms it ran: that would push the
    // next derived delay up).
    let health = svc.health().await.unwrap();
    assert_eq!(health.stats.calls, 2);
    assert_eq!(health.stats.failures, 0);
    assert_eq!(health.stats.p99, Some(ms(20)));
    assert_eq!(
        exported("warden_hedges_started_total{service=\"hedge-wins\"} "),
        1
    );
    assert_eq!(
        exported("warden_hedges_won_total{service=\"hedge-wins\"} "),
        1
    );
}

#[actix::test]
async fn the_first_attempt_still_wins_when_it_answers_first() {
    pause_aligned().await;
    let svc = start(
        "hedge-first-wins",
        hedged_config(HedgeConfig::fixed(ms(20))),
    );
    let dep = Scripted::new(&[Step::Ok(30), Step::Ok(100)]);
    let begun = Instant::now();
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 0);
    assert_about(begun.elapsed(), ms(30));
    assert_eq!(dep.cancelled(), vec![1], "the hedge was cancelled");
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.hedges, counts.hedges_won), (1, 0));
}

#[actix::test]
async fn a_fast_attempt_is_never_hedged() {
    pause_aligned().await;
    let svc = start("hedge-fast", hedged_config(HedgeConfig::fixed(ms(20))));
    let dep = Scripted::new(&[Step::Ok(19)]);
    for _ in 0..5 {
        assert!(svc.send(dep.call().idempotent()).await.is_ok());
    }
    assert_eq!(dep.hits.get(), 5);
    assert_eq!(svc.counts().await.unwrap().hedges, 0);
}

#[actix::test]
async fn only_idempotent_calls_are_hedged_unless_all_calls_are() {
    pause_aligned().await;
    let svc = start("hedge-not-idem", hedged_config(HedgeConfig::fixed(ms(20))));
    let dep = Scripted::new(&[Step::Ok(100), Step::Ok(10)]);
    let begun = Instant::now();
    assert_eq!(value(svc.send(dep.call()).await), 0);
    assert_about(begun.elapsed(), ms(100));
    assert_eq!(dep.hits.get(), 1, "not marked idempotent: no hedge");

    let all = start(
        "hedge-all-calls",
        hedged_config(HedgeConfig::fixed(ms(20)).all_calls()),
    );
    let dep = Scripted::new(&[Step::Ok(100), Step::Ok(10)]);
    assert_eq!(value(all.send(dep.call()).await), 1);
    assert_eq!(dep.hits.get(), 2);
}

#[actix::test]
async fn max_hedges_bounds_the_attempts_of_one_call() {
    pause_aligned().await;
    let svc = start(
        "hedge-max",
        hedged_config(HedgeConfig::fixed(ms(20)).max_hedges(2)),
    );
    let dep = Scripted::new(&[Step::Ok(1000)]);
    let begun = Instant::now();
    // Hedges at 20 ms and 40 ms; none after: the first attempt answers at 1 s.
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 0);
    assert_about(begun.elapsed(), ms(1000));
    assert_eq!(dep.hits.get(), 3);
    let mut cancelled = dep.cancelled();
    cancelled.sort_unstable();
    assert_eq!(cancelled, vec![1, 2]);
    assert_eq!(svc.counts().await.unwrap().hedges, 2);
}

#[actix::test]
async fn hedges_spend_the_retry_budget() {
    pause_aligned().await;
    let mut config = hedged_config(HedgeConfig::fixed(ms(20)));
    // No retry (and so no hedge) is ever affordable.
    config.retry.budget = BudgetConfig {
        ratio: 0.0,
        min_per_second: 0,
        ..BudgetConfig::default()
    };
    let svc = start("hedge-budget", config);
    let dep = Scripted::new(&[Step::Ok(100), Step::Ok(10)]);
    let begun = Instant::now();
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 0);
    assert_about(begun.elapsed(), ms(100));
    assert_eq!(dep.hits.get(), 1, "the budget refused the hedge");
    assert_eq!(svc.counts().await.unwrap().hedges, 0);
}

#[actix::test]
async fn a_probe_is_never_hedged() {
    pause_aligned().await;
    let svc = start(
        "hedge-half-open",
        SupervisorConfig {
            breaker: BreakerConfig::consecutive(1).open_for(Duration::from_secs(1)),
            ..hedged_config(HedgeConfig::fixed(ms(20)))
        },
    );
    assert!(fail(&svc).await.is_err());
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dep = Scripted::new(&[Step::Ok(100), Step::Ok(10)]);
    let begun = Instant::now();
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 0);
    assert_about(begun.elapsed(), ms(100));
    assert_eq!(dep.hits.get(), 1, "the half-open probe ran alone");
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
    assert_eq!(svc.counts().await.unwrap().hedges, 0);
}

#[actix::test]
async fn an_attempt_failing_while_its_hedge_runs_is_recorded_and_the_hedge_answers() {
    pause_aligned().await;
    let svc = start(
        "hedge-fail-first",
        hedged_config(HedgeConfig::fixed(ms(20))),
    );
    let dep = Scripted::new(&[Step::Transient(30), Step::Ok(20)]);
    let begun = Instant::now();
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 1);
    assert_about(begun.elapsed(), ms(40));
    assert!(dep.cancelled().is_empty());
    // The failure counts in the breaker's window and the health window.
    let status = svc.breaker_status().await.unwrap();
    assert_eq!((status.window.calls, status.window.failures), (2, 1));
    let health = svc.health().await.unwrap();
    assert_eq!((health.stats.calls, health.stats.failures), (2, 1));
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.success, counts.attempts, counts.hedges_won),
        (1, 2, 1)
    );
}

#[actix::test]
async fn a_permanent_error_ends_the_race() {
    pause_aligned().await;
    let svc = start("hedge-permanent", hedged_config(HedgeConfig::fixed(ms(20))));
    let dep = Scripted::new(&[Step::Permanent(30), Step::Ok(100)]);
    let begun = Instant::now();
    let answer = svc.send(dep.call().idempotent()).await;
    assert_about(begun.elapsed(), ms(30));
    assert!(
        matches!(answer, Err(CallError::Failed { attempts: 1, .. })),
        "{answer:?}"
    );
    assert_eq!(dep.cancelled(), vec![1], "the hedge was cancelled");
}

#[actix::test]
async fn when_every_attempt_fails_the_call_retries_as_usual() {
    pause_aligned().await;
    let svc = start(
        "hedge-all-fail",
        SupervisorConfig {
            retry: RetryConfig::constant(2, ms(10)),
            ..hedged_config(HedgeConfig::fixed(ms(20)))
        },
    );
    // Round 1: both attempts fail; round 2 (after 10 ms): succeeds before its hedge delay.
    let dep = Scripted::new(&[Step::Transient(30), Step::Transient(30), Step::Ok(5)]);
    let begun = Instant::now();
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 2);
    // The hedge failed last, at 20 + 30 ms; the retry waited 10 ms and took 5 (four timers in
    // a row, each may round up to the next tick).
    let took = begun.elapsed();
    assert!(took >= ms(65) && took <= ms(69), "{took:?}");
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.attempts, counts.retries, counts.hedges), (3, 1, 1));
}

#[actix::test]
async fn a_dropped_call_cancels_every_attempt_and_hands_the_permits_back() {
    pause_aligned().await;
    let svc = start(
        "hedge-dropped",
        SupervisorConfig {
            max_in_flight: 1,
            ..hedged_config(HedgeConfig::fixed(ms(20)))
        },
    );
    let dep = Scripted::new(&[Step::Ok(1000)]);
    let gave_up = tokio::time::timeout(ms(50), svc.send(dep.call().idempotent())).await;
    assert!(gave_up.is_err(), "the caller gave up");
    let mut cancelled = dep.cancelled();
    cancelled.sort_unstable();
    assert_eq!(cancelled, vec![0, 1], "both attempts were dropped");
    assert_eq!(svc.in_flight(), 0);
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.cancelled, counts.attempts), (1, 2));
    // The bulkhead slot is free again.
    let dep = Scripted::new(&[Step::Ok(1)]);
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 0);
}

#[actix::test]
async fn the_derived_delay_follows_the_dependency_latency() {
    pause_aligned().await;
    let svc = start(
        "hedge-derived",
        hedged_config(HedgeConfig::percentile(95, ms(1)).min_samples(20)),
    );
    // Until the window holds 20 samples nothing is hedged.
    let warm = Scripted::new(&[Step::Ok(10)]);
    for _ in 0..20 {
        assert!(svc.send(warm.call().idempotent()).await.is_ok());
    }
    assert_eq!(svc.counts().await.unwrap().hedges, 0);
    // Now p95 ≈ 10 ms (each sleep may round up to the next tick): a slow attempt is hedged
    // after that long.
    let p95 = svc.health().await.unwrap().stats.p95.unwrap();
    assert!(p95 >= ms(10) && p95 <= ms(11), "{p95:?}");
    let dep = Scripted::new(&[Step::Ok(1000), Step::Ok(10)]);
    let begun = Instant::now();
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 1);
    assert_about(begun.elapsed(), p95 + ms(10));
    assert_eq!(svc.counts().await.unwrap().hedges, 1);
}

#[actix::test]
async fn a_hedge_is_an_event() {
    use actix::prelude::*;

    #[derive(Default)]
    struct Collector(Arc<Mutex<Vec<EventKind>>>);
    impl Actor for Collector {
        type Context = Context<Self>;
    }
    impl Handler<SupervisorEvent> for Collector {
        type Result = ();
        fn handle(&mut self, event: SupervisorEvent, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(event.kind);
        }
    }

    pause_aligned().await;
    let svc = start("hedge-event", hedged_config(HedgeConfig::fixed(ms(20))));
    let events = Arc::new(Mutex::new(Vec::new()));
    let collector = Collector(Arc::clone(&events)).start();
    svc.subscribe(collector.recipient()).await.unwrap();
    let dep = Scripted::new(&[Step::Ok(100), Step::Ok(10)]);
    assert_eq!(value(svc.send(dep.call().idempotent()).await), 1);
    settle().await;
    let events = events.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| matches!(
            e,
            EventKind::Hedged { hedge: 1, after } if *after >= ms(20) && *after <= ms(22)
        )),
        "{events:?}"
    );
}

#[test]
fn hedging_is_configured_in_toml_and_checked_by_field() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.search]
        [services.search.hedge]
        percentile = 90
        floor = "2ms"
        max_hedges = 2
        "#,
    )
    .unwrap();
    let hedge = file.services["search"].hedge.clone().unwrap();
    assert_eq!(hedge, HedgeConfig::percentile(90, ms(2)).max_hedges(2));

    let fixed =
        ServicesFile::from_toml_str("[services.a.hedge]\ndelay = \"30ms\"\nall_calls = true\n")
            .unwrap();
    assert_eq!(
        fixed.services["a"].hedge,
        Some(HedgeConfig::fixed(ms(30)).all_calls())
    );

    let error = ServicesFile::from_toml_str("[services.a.hedge]\nmax_hedges = 9\n").unwrap_err();
    assert_eq!(error.field(), Some("services.a.hedge.max_hedges"));
    let error = ServicesFile::from_toml_str("[services.a.hedge]\npercentile = 100\n").unwrap_err();
    assert_eq!(error.field(), Some("services.a.hedge.percentile"));
    let error = ServicesFile::from_toml_str("[services.a.hedge]\nafter = \"1ms\"\n").unwrap_err();
    assert_eq!(error.field(), Some("services.a.hedge.after"));
}
