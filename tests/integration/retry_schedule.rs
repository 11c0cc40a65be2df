//! Retry schedules for each backoff kind, the classifier, retry-after hints, and no retries into
//! an open breaker — measured on the paused clock through a real supervisor.

use crate::common;

use std::time::Duration;

use common::*;
use warden::prelude::*;

/// Runs one always-failing call under `retry` and returns the gaps between its attempts.
async fn gaps_for(retry: RetryConfig) -> (Vec<Duration>, Result<(), CallError<DepError>>) {
    let mut config = plain_config();
    config.retry = retry.budget(warden::retry::BudgetConfig::off());
    let svc = start("svc", config);
    let log = AttemptLog::default();
    let l = log.clone();
    let result = svc
        .call(move || {
            l.push_now();
            async { Err::<(), _>(DepError("503")) }
        })
        .await;
    (log.gaps(), result)
}

fn ms(values: &[u64]) -> Vec<Duration> {
    values.iter().map(|&v| Duration::from_millis(v)).collect()
}

#[actix::test]
async fn constant_backoff_schedule() {
    pause_aligned().await;
    let (gaps, result) = gaps_for(RetryConfig::constant(4, Duration::from_millis(250))).await;
    assert_all_about(&gaps, &ms(&[250, 250, 250]));
    assert!(matches!(
        result,
        Err(CallError::RetriesExhausted { attempts: 4, .. })
    ));
}

#[actix::test]
async fn exponential_backoff_schedule_capped_at_max_delay() {
    pause_aligned().await;
    let retry = RetryConfig::exponential(6, Duration::from_millis(100))
        .max_delay(Duration::from_millis(1000));
    let (gaps, _) = gaps_for(retry).await;
    assert_all_about(&gaps, &ms(&[100, 200, 400, 800, 1000]));
}

#[actix::test]
async fn full_jitter_schedule_is_bounded_and_reproducible_with_a_seed() {
    pause_aligned().await;
    let retry = RetryConfig::exponential(6, Duration::from_millis(100))
        .full_jitter()
        .max_delay(Duration::from_secs(1));
    let (first, _) = gaps_for(retry.clone()).await;
    let (second, _) = gaps_for(retry).await;
    assert_eq!(first, second, "same seed, same schedule");
    assert_eq!(first.len(), 5);
    for (i, gap) in first.iter().enumerate() {
        let cap =
            Duration::from_millis(100 << i).min(Duration::from_secs(1)) + Duration::from_millis(1);
        assert!(*gap <= cap, "retry {} waited {gap:?} > {cap:?}", i + 1);
    }
    assert!(
        first.iter().collect::<std::collections::HashSet<_>>().len() > 1,
        "jittered"
    );
}

#[actix::test]
async fn decorrelated_jitter_schedule_stays_within_its_bounds() {
    pause_aligned().await;
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(2);
    let retry = RetryConfig::exponential(8, base)
        .decorrelated_jitter()
        .max_delay(max);
    let (gaps, _) = gaps_for(retry).await;
    assert_eq!(gaps.len(), 7);
    let mut previous = base;
    for gap in gaps {
        let tick = Duration::from_millis(1);
        assert!(
            gap >= base && gap <= max.min(previous * 3) + tick,
            "{gap:?} after {previous:?}"
        );
        previous = gap.saturating_sub(tick).max(base);
    }
}

#[actix::test]
async fn non_retryable_errors_are_not_retried() {
    pause_aligned().await;
    let mut config = plain_config();
    config.retry = RetryConfig::constant(5, Duration::from_millis(10));
    let svc = start("svc", config);
    let hits = Hits::default();
    let h = hits.clone();
    let result = svc
        .send(
            Call::new(move || {
                h.hit();
                async { Err::<(), _>(DepError("400")) }
            })
            .classify(|_| ErrorClass::permanent()),
        )
        .await;
    assert!(matches!(result, Err(CallError::Failed { attempts: 1, .. })));
    assert_eq!(hits.get(), 1);
}

#[actix::test]
async fn transient_failure_recovers_on_retry() {
    pause_aligned().await;
    let mut config = plain_config();
    config.retry = RetryConfig::constant(3, Duration::from_millis(10));
    let svc = start("svc", config);
    let hits = Hits::default();
    let h = hits.clone();
    let value = svc
        .call(move || {
            let n = h.hit();
            async move {
                if n < 3 {
                    Err(DepError("flaky"))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 3);
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.retries, counts.attempts), (1, 2, 3));
}

#[actix::test]
async fn retry_after_hint_is_honoured_and_too_long_a_hint_stops_retrying() {
    pause_aligned().await;
    let mut config = plain_config();
    config.retry =
        RetryConfig::constant(3, Duration::from_millis(10)).max_delay(Duration::from_secs(5));
    let svc = start("svc", config);
    let log = AttemptLog::default();
    let l = log.clone();
    let result = svc
        .send(
            Call::new(move || {
                l.push_now();
                async { Err::<(), _>(DepError("429")) }
            })
            .classify(|_| ErrorClass::transient().with_retry_after(Duration::from_secs(2))),
        )
        .await;
    assert!(matches!(
        result,
        Err(CallError::RetriesExhausted { attempts: 3, .. })
    ));
    assert_all_about(&log.gaps(), &[Duration::from_secs(2); 2]);

    let hits = Hits::default();
    let h = hits.clone();
    let result = svc
        .send(
            Call::new(move || {
                h.hit();
                async { Err::<(), _>(DepError("429")) }
            })
            .classify(|_| ErrorClass::transient().with_retry_after(Duration::from_secs(60))),
        )
        .await;
    // The hint is kept in the answer (issue 13): the caller learns when to come back.
    assert!(
        matches!(
            result,
            Err(CallError::RetryDeferred { attempts: 1, retry_after, .. })
                if retry_after == Duration::from_secs(60)
        ),
        "{result:?}"
    );
    assert_eq!(
        result.unwrap_err().retry_after(),
        Some(Duration::from_secs(60))
    );
    assert_eq!(hits.get(), 1);
}

#[actix::test]
async fn retries_stop_when_the_breaker_opens() {
    pause_aligned().await;
    let mut config = plain_config();
    config.retry = RetryConfig::constant(10, Duration::from_millis(100))
        .budget(warden::retry::BudgetConfig::off());
    config.breaker.consecutive_failures = Some(3);
    let svc = start("svc", config);
    let hits = Hits::default();
    let h = hits.clone();
    let result = svc
        .call(move || {
            h.hit();
            async { Err::<(), _>(DepError("down")) }
        })
        .await;
    // Three attempts trip the breaker; the 4th is not sent into it. The answer says the
    // operation ran three times and keeps its last error: not a rejection (issue 13).
    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            CallError::RetryRefused {
                last: Some(DepError("down")),
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_rejection());
    assert!(error.retry_after().is_some());
    assert_eq!(hits.get(), 3);
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.failure, counts.rejected_open), (1, 0));
}

#[actix::test]
async fn timeouts_are_retried_and_reported_as_timeouts() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_millis(100));
    config.retry = RetryConfig::constant(3, Duration::from_millis(10));
    let svc = start("svc", config);
    let log = AttemptLog::default();
    let l = log.clone();
    let result = svc
        .call(move || {
            l.push_now();
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<(), DepError>(())
            }
        })
        .await;
    assert!(matches!(result, Err(CallError::TimedOut { attempts: 3 })));
    assert_all_about(&log.gaps(), &ms(&[110, 110]));
    assert_eq!(svc.counts().await.unwrap().timeout, 1);
}
