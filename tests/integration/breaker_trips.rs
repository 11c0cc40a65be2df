//! The breaker trips on each policy, driven through a real supervisor with paused time.

use crate::common;

use std::time::Duration;

use common::*;
use warden::prelude::*;

fn is_open<T: std::fmt::Debug>(result: &Result<T, CallError<DepError>>) -> bool {
    matches!(result, Err(CallError::Open { .. }))
}

#[actix::test]
async fn trips_on_consecutive_failures_and_fails_fast() {
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(3);
    let db = start("db", config);

    // Two failures, a success (resets the streak), two failures: still closed.
    for _ in 0..2 {
        assert!(matches!(
            fail(&db).await,
            Err(CallError::Failed { attempts: 1, .. })
        ));
    }
    succeed(&db).await.unwrap();
    for _ in 0..2 {
        fail(&db).await.unwrap_err();
    }
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );

    // The third consecutive failure trips it.
    fail(&db).await.unwrap_err();
    let status = db.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(status.retry_after, Some(Duration::from_secs(30)));

    // Calls now fail fast without reaching the dependency.
    let hits = Hits::default();
    for _ in 0..10 {
        let h = hits.clone();
        let result = db
            .call(move || {
                h.hit();
                async { Ok::<(), DepError>(()) }
            })
            .await;
        assert!(is_open(&result), "{result:?}");
    }
    assert_eq!(hits.get(), 0);
    let counts = db.counts().await.unwrap();
    assert_eq!(counts.failure, 5);
    assert_eq!(counts.success, 1);
    assert_eq!(counts.rejected_open, 10);
}

#[actix::test]
async fn trips_on_failure_rate_in_count_window_after_minimum_calls() {
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.failure_rate_threshold = Some(0.5);
    config.breaker.window = SlidingWindow::Count { size: 10 };
    config.breaker.minimum_calls = 10;
    let api = start("api", config);

    // 9 calls, all failing: below minimum_calls, so no verdict yet.
    for _ in 0..9 {
        fail(&api).await.unwrap_err();
    }
    assert_eq!(
        api.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
    // The 10th call completes the minimum: 10/10 failures >= 50 %.
    fail(&api).await.unwrap_err();
    let status = api.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
}

#[actix::test]
async fn failure_rate_below_threshold_does_not_trip() {
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.failure_rate_threshold = Some(0.5);
    config.breaker.window = SlidingWindow::Count { size: 10 };
    config.breaker.minimum_calls = 10;
    let api = start("api", config);

    // Alternating 4 failures per 10 calls, 40 calls: 40 % < 50 %.
    for i in 0..40 {
        if i % 5 < 2 {
            fail(&api).await.unwrap_err();
        } else {
            succeed(&api).await.unwrap();
        }
    }
    let status = api.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.window.calls, 10);
    assert_eq!(status.window.failures, 4);
}

#[actix::test]
async fn trips_on_failure_rate_in_time_window_and_forgets_old_calls() {
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.failure_rate_threshold = Some(0.5);
    config.breaker.window = SlidingWindow::Time {
        duration: Duration::from_secs(10),
    };
    config.breaker.minimum_calls = 6;
    let api = start("api", config);

    // 5 failures, then 20 s pass: they leave the window.
    for _ in 0..5 {
        fail(&api).await.unwrap_err();
    }
    tokio::time::advance(Duration::from_secs(20)).await;
    // 3 successes and 2 failures in the window: 5 calls < 6 minimum.
    for _ in 0..3 {
        succeed(&api).await.unwrap();
    }
    for _ in 0..2 {
        fail(&api).await.unwrap_err();
    }
    let status = api.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.window.calls, 5);
    // A 6th call, failing: 3 of 6 = 50 % → open.
    fail(&api).await.unwrap_err();
    assert_eq!(
        api.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
}

#[actix::test]
async fn trips_on_slow_call_rate() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_secs(10));
    config.breaker.slow_call_rate_threshold = Some(0.5);
    config.breaker.slow_call_duration = Duration::from_secs(2);
    config.breaker.window = SlidingWindow::Count { size: 4 };
    config.breaker.minimum_calls = 4;
    let api = start("api", config);

    slow(&api, Duration::from_millis(10)).await.unwrap();
    slow(&api, Duration::from_millis(10)).await.unwrap();
    slow(&api, Duration::from_secs(3)).await.unwrap();
    assert_eq!(
        api.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
    // Second slow call of four: 50 % slow → open, although every call succeeded.
    slow(&api, Duration::from_secs(3)).await.unwrap();
    let status = api.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
    let counts = api.counts().await.unwrap();
    assert_eq!(counts.success, 4);
}

#[actix::test]
async fn errors_classified_as_ignored_never_trip() {
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(2);
    let api = start("api", config);
    for _ in 0..10 {
        let result = api
            .send(
                Call::new(|| async { Err::<(), _>(DepError("404")) })
                    .classify(|_| ErrorClass::ignored()),
            )
            .await;
        assert!(matches!(result, Err(CallError::Failed { .. })));
    }
    assert_eq!(
        api.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
}
