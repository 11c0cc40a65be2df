//! The demo's scenarios (`cargo run --example resiliency_demo`) report their events in the order
//! the patterns promise: retries before success, open before half-open before closed, a failed
//! probe re-opening, timeouts cancelling attempts, degraded before unhealthy, and the combined
//! brownout recovering. Runs the same code as the example, on a paused clock.

#[path = "../../examples/resiliency_demo/scenarios.rs"]
mod scenarios;

use std::time::Duration;

use scenarios::timeline::{self, Answer, Entry, ErrorKind, Event, Style, Timeline};
use scenarios::{Report, Scenario};
use warden::breaker::{BreakerState, TransitionReason};
use warden::health::HealthStatus;
use warden::messages::EventKind;

const SEEDS: [u64; 4] = [42, 1, 7, 2024];

fn run(scenario: Scenario, seed: u64) -> Report {
    scenarios::paused_system().block_on(async move {
        let timeline = Timeline::start();
        scenarios::run(scenario, seed, &timeline).await
    })
}

fn position(entries: &[Entry], from: usize, predicate: impl Fn(&Entry) -> bool) -> usize {
    timeline::find_from(entries, from, predicate)
        .unwrap_or_else(|| panic!("no matching entry after index {from}"))
}

fn answer_of(report: &Report, call: u32) -> Answer {
    report
        .entries
        .iter()
        .find_map(|e| {
            e.answer()
                .filter(|(c, _)| *c == call)
                .map(|(_, a)| a.clone())
        })
        .unwrap_or_else(|| panic!("call {call} has no answer"))
}

fn transitions(report: &Report) -> Vec<(BreakerState, BreakerState, TransitionReason)> {
    report
        .entries
        .iter()
        .filter_map(Entry::transition)
        .collect()
}

fn health_changes(report: &Report) -> Vec<(HealthStatus, HealthStatus)> {
    report
        .entries
        .iter()
        .filter_map(Entry::health_change)
        .collect()
}

#[test]
fn retry_waits_grow_and_come_before_the_success_they_buy() {
    for seed in SEEDS {
        let report = run(Scenario::Retry, seed);
        assert!(
            report.problems.is_empty(),
            "seed {seed}: {:?}",
            report.problems
        );
        let entries = &report.entries;
        // Call 6 fails every attempt: three retries with delays 100, 200, 400 ms, in that order,
        // each after a failed attempt, then the exhausted answer.
        let mut at = position(entries, 0, |e| {
            matches!(
                e.event,
                Event::Attempt {
                    call: 6,
                    attempt: 1,
                    ok: false,
                    ..
                }
            )
        });
        for (attempt, delay) in [(2, 100), (3, 200), (4, 400)] {
            at = position(entries, at, |e| {
                e.supervisor()
                    == Some(&EventKind::RetryScheduled {
                        attempt,
                        delay: Duration::from_millis(delay),
                        reason: warden::outcome::RetryReason::Error,
                    })
            });
            at = position(
                entries,
                at,
                |e| matches!(e.event, Event::Attempt { call: 6, attempt: a, ok: false, .. } if a == attempt),
            );
        }
        position(entries, at, |e| {
            e.answer()
                .is_some_and(|(c, a)| c == 6 && a.error_kind() == Some(ErrorKind::RetriesExhausted))
        });
        // Every call that succeeded after failures had its retries first.
        for call in 1..=5 {
            let answer = answer_of(&report, call);
            assert!(answer.is_ok(), "seed {seed}: call {call} {answer:?}");
            let answered = position(entries, 0, |e| e.answer().is_some_and(|(c, _)| c == call));
            let retries = entries[..answered]
                .iter()
                .rev()
                .take_while(|e| e.answer().is_none())
                .filter(|e| matches!(e.supervisor(), Some(EventKind::RetryScheduled { .. })))
                .count();
            assert_eq!(
                retries as u32,
                answer.attempts() - 1,
                "seed {seed}: call {call}"
            );
        }
        // The caller error is answered at once, without a retry.
        let invalid = answer_of(&report, 7);
        assert_eq!(invalid.error_kind(), Some(ErrorKind::Failed));
        assert_eq!(invalid.attempts(), 1);
        assert!(transitions(&report).is_empty(), "seed {seed}");
    }
}

#[test]
fn breaker_opens_fails_fast_reopens_on_a_failed_probe_then_closes() {
    for seed in SEEDS {
        let report = run(Scenario::Breaker, seed);
        assert!(
            report.problems.is_empty(),
            "seed {seed}: {:?}",
            report.problems
        );
        use BreakerState::*;
        use TransitionReason::*;
        assert_eq!(
            transitions(&report),
            [
                (Closed, Open, ConsecutiveFailures),
                (Open, HalfOpen, OpenElapsed),
                (HalfOpen, Open, ProbeFailed),
                (Open, HalfOpen, OpenElapsed),
                (HalfOpen, Closed, ProbesSucceeded),
            ],
            "seed {seed}"
        );
        let entries = &report.entries;
        let step = |from: usize, to: BreakerState| {
            position(entries, from, |e| {
                e.transition().is_some_and(|(_, t, _)| t == to)
            })
        };
        let opened = step(0, Open);
        let half_open = step(opened, HalfOpen);
        let reopened = step(half_open, Open);
        let half_open_again = step(reopened, HalfOpen);
        let closed = step(half_open_again, Closed);
        // The open periods: 30 s, then twice that after the failed probe.
        assert_eq!(
            entries[half_open].at - entries[opened].at,
            Duration::from_secs(30)
        );
        assert_eq!(
            entries[half_open_again].at - entries[reopened].at,
            Duration::from_secs(60)
        );
        // Every call sent while open is refused without reaching the dependency; the only other
        // answer inside an open period is the failure that opened it (answered after the event).
        for (index, entry) in entries.iter().enumerate() {
            let Some((call, answer)) = entry.answer() else {
                continue;
            };
            let opened_by = [opened, reopened]
                .into_iter()
                .zip([half_open, half_open_again])
                .find(|(open, until)| *open < index && index < *until);
            // Refused, or answered by the fallback of the one caller that has one.
            let refused = answer.error_kind() == Some(ErrorKind::Open)
                || matches!(answer, Answer::Fallback { .. });
            match opened_by {
                Some((open, _)) if !refused => {
                    let first_answer_after_open = position(entries, open, |e| e.answer().is_some());
                    assert_eq!(
                        index, first_answer_after_open,
                        "seed {seed}: call {call} {answer:?}"
                    );
                    assert_eq!(answer.error_kind(), Some(ErrorKind::Failed));
                }
                Some(_) => assert_eq!(answer.attempts(), 0, "seed {seed}: call {call}"),
                None => assert!(!refused, "seed {seed}: call {call} refused while not open"),
            }
        }
        assert!(closed > half_open_again);
        assert_eq!(report.services[0].dependency_attempts, 6);
        // Three calls while open: two refused, one answered from a cache by its fallback.
        assert_eq!(report.services[0].counts.rejected_open, 2);
        assert_eq!(report.services[0].counts.fallback, 1);
    }
}

#[test]
fn timeouts_cancel_the_attempt_before_the_retry_and_the_deadline_ends_the_call() {
    for seed in SEEDS {
        let report = run(Scenario::Timeout, seed);
        assert!(
            report.problems.is_empty(),
            "seed {seed}: {:?}",
            report.problems
        );
        let entries = &report.entries;
        let cancelled = position(
            entries,
            0,
            |e| matches!(e.event, Event::Cancelled { call: 2, attempt: 1, after } if after == Duration::from_millis(500)),
        );
        let timed_out = position(entries, cancelled, |e| {
            e.supervisor()
                == Some(&EventKind::TimedOut {
                    after: Duration::from_millis(500),
                })
        });
        let retry = position(entries, timed_out, |e| {
            matches!(
                e.supervisor(),
                Some(EventKind::RetryScheduled { attempt: 2, .. })
            )
        });
        let success = position(entries, retry, |e| {
            matches!(
                e.event,
                Event::Attempt {
                    call: 2,
                    attempt: 2,
                    ok: true,
                    ..
                }
            )
        });
        assert!(answer_of(&report, 2).is_ok());
        assert!(answer_of(&report, 3).is_ok(), "slow but within the timeout");
        // Call 4: first attempt cut by the timeout, the second by what is left of the deadline.
        let deadline = answer_of(&report, 4);
        assert_eq!(deadline.error_kind(), Some(ErrorKind::DeadlineExceeded));
        assert_eq!(deadline.attempts(), 2);
        let Answer::Err { took, .. } = deadline else {
            unreachable!()
        };
        assert_eq!(took, Duration::from_secs(1));
        let cuts: Vec<Duration> = entries[success..]
            .iter()
            .filter_map(|e| match e.event {
                Event::Cancelled { call: 4, after, .. } => Some(after),
                _ => None,
            })
            .collect();
        assert_eq!(
            cuts,
            [Duration::from_millis(500), Duration::from_millis(400)]
        );
    }
}

#[test]
fn health_goes_healthy_degraded_unhealthy_and_back_to_healthy() {
    for seed in SEEDS {
        let report = run(Scenario::Health, seed);
        assert!(
            report.problems.is_empty(),
            "seed {seed}: {:?}",
            report.problems
        );
        let changes = health_changes(&report);
        assert_eq!(
            changes.first(),
            Some(&(HealthStatus::Healthy, HealthStatus::Degraded)),
            "seed {seed}: {changes:?}"
        );
        let unhealthy = changes
            .iter()
            .position(|c| c.1 == HealthStatus::Unhealthy)
            .unwrap_or_else(|| panic!("seed {seed}: never unhealthy: {changes:?}"));
        assert!(
            changes[..unhealthy]
                .iter()
                .all(|c| c.1 != HealthStatus::Healthy),
            "seed {seed}: degraded went back to healthy before unhealthy: {changes:?}"
        );
        assert_eq!(changes.last().map(|c| c.1), Some(HealthStatus::Healthy));
        assert_eq!(report.services[0].health.status, HealthStatus::Healthy);
        // Health is a separate signal: the breaker never moved.
        assert!(transitions(&report).is_empty());
    }
}

#[test]
fn brownout_degrades_sheds_load_opens_then_recovers() {
    for seed in SEEDS {
        let report = run(Scenario::Brownout, seed);
        assert!(
            report.problems.is_empty(),
            "seed {seed}: {:?}",
            report.problems
        );
        let entries = &report.entries;
        let degraded = position(entries, 0, |e| {
            e.health_change() == Some((HealthStatus::Healthy, HealthStatus::Degraded))
        });
        let opened = position(entries, degraded, |e| {
            e.transition()
                .is_some_and(|(_, to, _)| to == BreakerState::Open)
        });
        let refused = position(entries, opened, |e| {
            e.answer()
                .is_some_and(|(_, a)| a.error_kind() == Some(ErrorKind::Open))
        });
        let half_open = position(entries, refused, |e| {
            e.transition()
                .is_some_and(|(_, to, _)| to == BreakerState::HalfOpen)
        });
        let closed = position(entries, half_open, |e| {
            e.transition()
                .is_some_and(|(_, to, _)| to == BreakerState::Closed)
        });
        position(entries, closed, |e| {
            e.health_change()
                .is_some_and(|(_, to)| to == HealthStatus::Healthy)
        });
        // Timeouts and retries happen in the brownout, before the breaker opens.
        let before_open = &entries[..opened];
        assert!(before_open
            .iter()
            .any(|e| matches!(e.supervisor(), Some(EventKind::TimedOut { .. }))));
        assert!(before_open
            .iter()
            .any(|e| matches!(e.supervisor(), Some(EventKind::RetryScheduled { .. }))));
        assert!(before_open
            .iter()
            .any(|e| e.supervisor() == Some(&EventKind::RetryBudgetExhausted)));
        assert!(before_open.iter().any(|e| {
            e.answer()
                .is_some_and(|(_, a)| a.error_kind() == Some(ErrorKind::Overloaded))
        }));
        // No transition after the final close, and the caller-side answers add up.
        assert!(entries[closed + 1..]
            .iter()
            .all(|e| e.transition().is_none()));
        let summary = &report.services[0];
        assert_eq!(summary.breaker, BreakerState::Closed);
        let answered = entries.iter().filter(|e| e.answer().is_some()).count() as u64;
        assert_eq!(answered, summary.counts.total(), "seed {seed}");
        assert_eq!(
            u64::from(summary.dependency_attempts),
            summary.counts.attempts
        );
    }
}

#[test]
fn the_same_seed_prints_the_same_timeline() {
    let plain = Style { colour: false };
    let render = |report: &Report| -> Vec<String> {
        report
            .entries
            .iter()
            .map(|e| timeline::render(e, plain))
            .collect()
    };
    for scenario in [Scenario::Retry, Scenario::Brownout] {
        let first = render(&run(scenario, 5));
        let second = render(&run(scenario, 5));
        assert_eq!(first, second, "{scenario}");
    }
    assert_ne!(
        render(&run(Scenario::Retry, 5)),
        render(&run(Scenario::Retry, 6)),
        "another seed, other failures"
    );
}

#[test]
fn colour_only_when_asked_for() {
    let report = run(Scenario::Breaker, 42);
    for entry in &report.entries {
        let plain = timeline::render(entry, Style { colour: false });
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(plain.starts_with("  t=+"), "{plain}");
    }
    let coloured = timeline::render(&report.entries[0], Style { colour: true });
    assert!(coloured.contains("\x1b["));
}
