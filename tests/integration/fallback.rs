//! `Call::fallback`: an answer in the call's place, chosen by the caller per error; counted as
//! such, never hiding the real outcome from the breaker and the health window.

use crate::common;

use std::time::Duration;

use common::*;
use warden::prelude::*;

fn cached(error: CallError<DepError>) -> Result<&'static str, CallError<DepError>> {
    match error {
        CallError::Open { .. } | CallError::RetryRefused { .. } => Ok("cached"),
        other => Err(other),
    }
}

#[actix::test]
async fn a_fallback_serves_while_open_and_never_masks_failures_from_the_breaker() {
    pause_aligned().await;
    let svc = start(
        "fb",
        SupervisorConfig {
            breaker: BreakerConfig::consecutive(3),
            ..plain_config()
        },
    );
    let failing = || Call::new(|| async { Err::<&'static str, _>(DepError("down")) });
    // The failures are passed on by the fallback (it covers only an open breaker)...
    for _ in 0..3 {
        let answer = svc.send(failing().fallback(cached)).await;
        assert!(
            matches!(answer, Err(CallError::Failed { .. })),
            "{answer:?}"
        );
    }
    // ...and the breaker saw every one of them: it is open now.
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
    let hits = Hits::default();
    let h = hits.clone();
    let answer = svc
        .send(
            Call::new(move || {
                h.hit();
                async { Ok::<&'static str, DepError>("fresh") }
            })
            .fallback(cached),
        )
        .await;
    assert_eq!(answer.unwrap(), "cached");
    assert_eq!(hits.get(), 0, "nothing reached the dependency while open");
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.failure, counts.fallback, counts.rejected_open),
        (3, 1, 0)
    );
    assert_eq!(counts.total(), 4);
}

#[actix::test]
async fn a_failed_call_answered_by_its_fallback_is_counted_fallback_and_recorded_as_a_failure() {
    pause_aligned().await;
    let svc = start("fb-fail", plain_config());
    let answer = svc
        .send(
            Call::new(|| async { Err::<u32, _>(DepError("down")) }).fallback(|error| {
                assert!(matches!(error, CallError::Failed { attempts: 1, .. }));
                Ok(0)
            }),
        )
        .await;
    assert_eq!(answer.unwrap(), 0);
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.fallback, counts.failure, counts.attempts),
        (1, 0, 1)
    );
    let health = svc.health().await.unwrap();
    assert_eq!(
        health.stats.failures, 1,
        "the health window saw the failure"
    );
    let window = svc.breaker_status().await.unwrap().window;
    assert_eq!(window.failures, 1, "the breaker saw the failure");
}

#[actix::test]
async fn an_async_fallback_answers_too() {
    pause_aligned().await;
    let svc = start(
        "fb-async",
        SupervisorConfig {
            max_in_flight: 1,
            ..plain_config()
        },
    );
    // Fill the bulkhead, then a call with an async fallback is refused and served by it.
    let busy = actix::spawn({
        let svc = svc.clone();
        async move { slow(&svc, Duration::from_secs(1)).await }
    });
    settle().await;
    let answer = svc
        .send(
            Call::new(|| async { Ok::<u32, DepError>(1) }).fallback_async(|error| async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                match error {
                    CallError::Overloaded => Ok(2),
                    other => Err(other),
                }
            }),
        )
        .await;
    assert_eq!(answer.unwrap(), 2);
    busy.await.unwrap().unwrap();
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.success, counts.fallback, counts.rejected_overloaded),
        (1, 1, 0)
    );
}

#[actix::test]
async fn a_panicking_fallback_is_answered_panicked_and_counted() {
    pause_aligned().await;
    let svc = start("fb-panic", plain_config());
    let answer = svc
        .send(
            Call::new(|| async { Err::<u32, _>(DepError("down")) })
                .fallback(|_| -> Result<u32, CallError<DepError>> { panic!("fallback bug") }),
        )
        .await;
    match answer {
        Err(CallError::Panicked { message, attempts }) => {
            assert!(message.contains("fallback bug"), "{message}");
            assert_eq!(attempts, 1);
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert!(svc.is_alive());
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.panic, counts.failure, counts.fallback), (1, 0, 0));
}
