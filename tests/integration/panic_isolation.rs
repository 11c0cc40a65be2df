//! A panic in the user's operation is caught, counted as a failure and answered; the supervisor
//! and its arbiter live on.

use crate::common;

use std::time::Duration;

use common::*;
use warden::prelude::*;

#[actix::test]
async fn panic_in_future_is_answered_and_supervisor_lives_on() {
    pause_aligned().await;
    let mut config = plain_config();
    config.retry = RetryConfig::constant(3, Duration::from_millis(10));
    let svc = start("svc", config);
    let hits = Hits::default();
    let h = hits.clone();
    let result = svc
        .call(move || {
            h.hit();
            async {
                if true {
                    panic!("bug in the operation");
                }
                Ok::<(), DepError>(())
            }
        })
        .await;
    match result {
        Err(CallError::Panicked { message, attempts }) => {
            assert_eq!(message, "bug in the operation");
            assert_eq!(attempts, 1);
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    // Panics are bugs, not transient faults: not retried.
    assert_eq!(hits.get(), 1);
    assert!(svc.is_alive());
    succeed(&svc).await.unwrap();
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.panic, counts.success), (1, 1));
}

#[actix::test]
async fn panic_in_closure_counts_as_breaker_failure() {
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(2);
    let svc = start("svc", config);
    for _ in 0..2 {
        let result: Result<(), CallError<DepError>> = svc
            .call(|| -> std::future::Ready<Result<(), DepError>> { panic!("closure panicked") })
            .await;
        assert!(matches!(result, Err(CallError::Panicked { .. })));
    }
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
}
