//! Every answer tells the truth: regression tests for the four defects of the issue "Every
//! answer tells the truth", each named after it.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use warden::messages::{EventKind, SupervisorEvent};
use warden::prelude::*;

fn collect_events(handle: &ServiceHandle) -> Arc<Mutex<Vec<SupervisorEvent>>> {
    use actix::Actor;
    let events = Arc::new(Mutex::new(Vec::new()));
    let collector = Collector(events.clone()).start();
    let handle = handle.clone();
    actix::spawn(async move {
        handle.subscribe(collector.recipient()).await.unwrap();
    });
    events
}

/// The health statuses reported, in order.
fn health_changes(events: &Mutex<Vec<SupervisorEvent>>) -> Vec<HealthStatus> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HealthChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

/// Defect 1.
#[actix::test]
async fn a_classifier_that_panics_on_a_half_open_probe_is_answered_panicked_counted_and_frees_the_probe(
) {
    pause_aligned().await;
    let svc = start(
        "classifier",
        SupervisorConfig {
            breaker: BreakerConfig::consecutive(1).open_for(Duration::from_secs(1)),
            ..plain_config()
        },
    );
    assert!(fail(&svc).await.is_err());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The probe fails and its classifier panics.
    let answer = svc
        .send(
            Call::new(|| async { Err::<(), _>(DepError("boom")) }).classify(|_: &DepError| {
                panic!("classifier bug");
            }),
        )
        .await;
    match answer {
        Err(CallError::Panicked { message, attempts }) => {
            assert!(message.contains("classifier bug"), "{message}");
            assert_eq!(attempts, 1);
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert!(svc.is_alive(), "the supervisor runs on");
    let counts = svc.counts().await.unwrap();
    assert_eq!(counts.panic, 1, "the call is counted");
    // The probe counted as a failure and its permit came back at once: the breaker reopened
    // (no 60 s `half_open_max_wait`), and after the next open period a new probe closes it.
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    succeed(&svc).await.unwrap();
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
}

/// Defect 2, first half.
#[actix::test]
async fn a_retry_refused_by_the_breaker_its_attempts_tripped_keeps_the_attempts_and_the_last_error()
{
    pause_aligned().await;
    let svc = start(
        "tripped",
        SupervisorConfig {
            retry: RetryConfig::constant(5, Duration::from_millis(10))
                .budget(warden::retry::BudgetConfig::off()),
            breaker: BreakerConfig::consecutive(2),
            ..plain_config()
        },
    );
    let hits = Hits::default();
    let h = hits.clone();
    let answer = svc
        .call(move || {
            h.hit();
            async { Err::<(), _>(DepError("down")) }
        })
        .await;
    let error = answer.unwrap_err();
    assert!(
        matches!(
            &error,
            CallError::RetryRefused {
                last: Some(DepError("down")),
                attempts: 2,
                retry_after: Some(_),
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.attempts(), 2);
    assert!(
        !error.is_rejection(),
        "the operation ran: not safe to resend blindly"
    );
    assert_eq!(error.operation_error(), Some(&DepError("down")));
    assert_eq!(hits.get(), 2);
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.failure, counts.rejected_open), (1, 0));
}

/// Defect 2, second half.
#[actix::test]
async fn a_retry_after_hint_longer_than_max_delay_is_kept_in_the_answer() {
    pause_aligned().await;
    let svc = start(
        "hinted",
        SupervisorConfig {
            retry: RetryConfig::constant(3, Duration::from_millis(10)),
            ..plain_config()
        },
    );
    let answer = svc
        .send(
            Call::new(|| async { Err::<(), _>(DepError("429")) }).classify(|_: &DepError| {
                ErrorClass::transient().with_retry_after(Duration::from_secs(3600))
            }),
        )
        .await;
    let error = answer.unwrap_err();
    assert!(
        matches!(error, CallError::RetryDeferred { attempts: 1, .. }),
        "{error:?}"
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
    assert!(error.to_string().starts_with("retry deferred by 3600s"));
}

/// Defect 3, with the re-evaluation interval.
#[actix::test]
async fn health_is_re_evaluated_after_a_burst_followed_by_silence() {
    pause_aligned().await;
    let svc = start(
        "bursty",
        SupervisorConfig {
            health: HealthConfig {
                minimum_calls: 5,
                ..HealthConfig::default()
            },
            ..plain_config()
        },
    );
    let events = collect_events(&svc);
    succeed(&svc).await.unwrap(); // evaluated now: healthy
    settle().await;
    // A burst of failures right after: not re-evaluated on the call path (at most every
    // 50 ms), then silence: no call, no query.
    for _ in 0..10 {
        assert!(fail(&svc).await.is_err());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(
        health_changes(&events),
        [HealthStatus::Unhealthy],
        "reported without a call"
    );
}

/// Defect 3, with `max_age` emptying the window.
#[actix::test]
async fn health_is_re_evaluated_when_max_age_empties_the_window() {
    pause_aligned().await;
    let svc = start(
        "aging",
        SupervisorConfig {
            health: HealthConfig {
                minimum_calls: 5,
                max_age: Some(Duration::from_secs(30)),
                ..HealthConfig::default()
            },
            ..plain_config()
        },
    );
    let events = collect_events(&svc);
    for _ in 0..10 {
        assert!(fail(&svc).await.is_err());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The failures age out after 30 s: with too few samples, the service reads healthy again,
    // and subscribers hear it without any call or query.
    tokio::time::sleep(Duration::from_secs(31)).await;
    settle().await;
    assert_eq!(
        health_changes(&events),
        [HealthStatus::Unhealthy, HealthStatus::Healthy],
        "the emptied window is reported"
    );
}

/// Defect 4 (see also `tests/integration/placement.rs`).
#[actix::test]
async fn a_call_its_caller_drops_is_cancelled_and_frees_its_slot_at_once() {
    pause_aligned().await;
    let svc = start(
        "dropped",
        SupervisorConfig {
            max_in_flight: 1,
            ..plain_config()
        },
    );
    let hits = Hits::default();
    let h = hits.clone();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(10),
        svc.call(move || {
            let h = h.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(15)).await;
                h.hit();
                Ok::<_, DepError>(())
            }
        }),
    )
    .await;
    assert!(gave_up.is_err());
    assert_eq!(svc.in_flight(), 0);
    succeed(&svc)
        .await
        .expect("not Overloaded: the slot is free");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        hits.get(),
        0,
        "the dropped attempt did not run on for nobody"
    );
    assert_eq!(svc.counts().await.unwrap().cancelled, 1);
}
