//! Client-side adaptive throttling in the supervisor: calls are refused locally in proportion
//! to what the dependency stopped accepting, and an outage still opens the breaker.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use warden::messages::EventKind;
use warden::prelude::*;

fn throttled_config() -> SupervisorConfig {
    SupervisorConfig {
        throttle: Some(ThrottleConfig {
            minimum_requests: 20,
            ..ThrottleConfig::default()
        }),
        ..plain_config()
    }
}

/// A dependency that accepts one call in `every`.
fn accepting_one_in(every: u32) -> impl Fn() -> std::future::Ready<Result<(), DepError>> + Clone {
    let n = Arc::new(AtomicU32::new(0));
    move || {
        let i = n.fetch_add(1, Ordering::SeqCst);
        std::future::ready(if i.is_multiple_of(every) {
            Ok(())
        } else {
            Err(DepError("unavailable"))
        })
    }
}

#[actix::test]
async fn a_dependency_accepting_a_quarter_of_calls_is_shed_down_to_the_cap() {
    pause_aligned().await;
    let svc = start("brownout", throttled_config());
    let events = Arc::new(Mutex::new(Vec::new()));
    {
        use actix::Actor;
        let collector = Collector(events.clone()).start();
        svc.subscribe(collector.recipient()).await.unwrap();
    }
    let op = accepting_one_in(4);
    let (mut sent, mut throttled) = (0u32, 0u32);
    for _ in 0..4000 {
        let attempts = Arc::new(AtomicU32::new(0));
        let a = attempts.clone();
        let inner = op.clone();
        let answer = svc
            .call(move || {
                a.fetch_add(1, Ordering::SeqCst);
                inner()
            })
            .await;
        match answer {
            Err(CallError::Throttled { probability }) => {
                assert!(probability > 0.0 && probability <= 0.9);
                throttled += 1;
            }
            _ => sent += attempts.load(Ordering::SeqCst),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SRE rule: requests (refused ones included) may exceed k × accepts by little. The
    // dependency accepts a quarter of what it is sent, less than 1/k = 1/2, so no share of
    // calls sent can satisfy it: the throttle climbs to its cap (90 %), and the dependency
    // receives about a tenth of the offered calls, enough to see it recover.
    let share = f64::from(throttled) / 4000.0;
    assert!(
        (0.8..=0.9).contains(&share),
        "throttled {share:.3} of calls"
    );
    let counts = svc.counts().await.unwrap();
    assert_eq!(u64::from(throttled), counts.rejected_throttled);
    assert_eq!(u64::from(sent), counts.attempts);
    assert_eq!(counts.total(), 4000);
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
    let changes: Vec<f64> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ThrottleChanged { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert!(changes.iter().any(|p| *p > 0.1), "{changes:?}");
}

#[actix::test]
async fn a_dependency_accepting_two_thirds_of_calls_is_not_throttled() {
    pause_aligned().await;
    let svc = start("two-thirds", throttled_config());
    let op = accepting_one_in(1);
    let n = Arc::new(AtomicU32::new(0));
    let mut throttled = 0;
    for _ in 0..3000 {
        let n = n.clone();
        let ok = op.clone();
        let answer = svc
            .call(move || {
                // Two successes, one failure, in turn.
                let fail = n.fetch_add(1, Ordering::SeqCst) % 3 == 2;
                let answer = ok();
                async move {
                    if fail {
                        Err(DepError("unavailable"))
                    } else {
                        answer.await
                    }
                }
            })
            .await;
        throttled += u32::from(matches!(answer, Err(CallError::Throttled { .. })));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // (R − 2A) / (R + 1) = (1 − 4/3) < 0: it accepts more than 1/k of what it is sent.
    assert_eq!(throttled, 0);
}

#[actix::test]
async fn a_healthy_dependency_is_never_throttled() {
    pause_aligned().await;
    let svc = start("healthy", throttled_config());
    for _ in 0..2000 {
        succeed(&svc).await.unwrap();
    }
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.rejected_throttled), (2000, 0));
}

#[actix::test]
async fn an_outage_still_opens_the_breaker_of_a_throttled_supervisor() {
    pause_aligned().await;
    let svc = start("outage", SupervisorConfig::adaptive());
    let mut answers = Vec::new();
    for _ in 0..200 {
        answers.push(fail(&svc).await.unwrap_err());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
    assert!(answers.iter().any(|a| matches!(a, CallError::Open { .. })));
    assert!(answers.iter().all(|a| !matches!(a, CallError::Overloaded)));
}

#[actix::test]
async fn a_throttled_call_can_be_answered_by_its_fallback_and_still_counts_as_a_request() {
    pause_aligned().await;
    let svc = start("fallback", throttled_config());
    let op = accepting_one_in(10);
    let mut served = 0;
    for _ in 0..500 {
        let answer = svc
            .send(Call::new(op.clone()).fallback(|error| match error {
                CallError::Throttled { .. } => Ok(()),
                other => Err(other),
            }))
            .await;
        served += u32::from(answer.is_ok());
    }
    let counts = svc.counts().await.unwrap();
    assert!(counts.fallback > 0);
    assert_eq!(
        counts.rejected_throttled, 0,
        "answered by the fallback instead"
    );
    assert_eq!(counts.success + counts.fallback, u64::from(served));
}

#[test]
fn throttling_is_configured_in_toml_and_validated_by_field() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.api.throttle]
        k = 1.5
        window = "30s"
        "#,
    )
    .unwrap();
    let throttle = file.services["api"].throttle.as_ref().unwrap();
    assert_eq!(throttle.k, 1.5);
    assert_eq!(throttle.window, Duration::from_secs(30));
    let error = ServicesFile::from_toml_str(
        r#"
        [services.api.throttle]
        k = 0.5
        "#,
    )
    .unwrap_err();
    assert_eq!(error.field(), Some("services.api.throttle.k"), "{error}");
}
