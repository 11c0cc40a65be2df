//! The rate limiter in the supervisor: a token bucket taken in the caller's task, refusing at
//! once or waiting up to `max_wait`, and slowing down on a dependency's retry-after hint.

use crate::common;

use std::time::Duration;

use common::*;
use warden::messages::EventKind;
use warden::prelude::*;

fn limited(rate: f64, burst: u32, max_wait: Duration) -> SupervisorConfig {
    SupervisorConfig {
        rate_limit: Some(
            RateLimitConfig::per_second(rate)
                .burst(burst)
                .max_wait(max_wait),
        ),
        ..plain_config()
    }
}

#[actix::test]
async fn calls_past_the_rate_are_refused_at_once_with_the_time_to_the_next_token() {
    pause_aligned().await;
    let svc = start("refuse", limited(10.0, 5, Duration::ZERO));
    let hits = Hits::default();
    let mut refused = Vec::new();
    for _ in 0..8 {
        let h = hits.clone();
        match svc
            .call(move || {
                h.hit();
                async { Ok::<_, DepError>(()) }
            })
            .await
        {
            Ok(()) => {}
            Err(error @ CallError::RateLimited { .. }) => refused.push(error),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // A burst of 5, then nothing until the next token (100 ms at 10/s).
    assert_eq!(hits.get(), 5);
    assert_eq!(refused.len(), 3);
    assert!(refused.iter().all(CallError::is_rejection));
    assert_eq!(refused[0].retry_after(), Some(Duration::from_millis(100)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    succeed(&svc).await.unwrap();
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.rejected_rate_limited), (6, 3));
    assert_eq!(counts.total(), 9);
}

#[actix::test]
async fn a_call_within_max_wait_waits_for_its_token_instead() {
    pause_aligned().await;
    let svc = start("wait", limited(10.0, 1, Duration::from_millis(250)));
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        succeed(&svc).await.unwrap();
    }
    // One token at once, then one every 100 ms.
    assert_about(started.elapsed(), Duration::from_millis(200));
    let answers = futures_util::future::join_all((0..4).map(|_| succeed(&svc))).await;
    let refused = answers
        .iter()
        .filter(|a| matches!(a, Err(CallError::RateLimited { .. })))
        .count();
    // 100, 200 ms of waiting are within 250 ms; the 3rd and 4th would wait 300 and 400 ms.
    assert_eq!(refused, 2, "{answers:?}");
}

#[actix::test]
async fn a_retry_after_hint_lowers_the_rate_until_it_ends() {
    pause_aligned().await;
    let svc = start("hinted", limited(100.0, 1, Duration::ZERO));
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        use actix::Actor;
        let collector = Collector(events.clone()).start();
        svc.subscribe(collector.recipient()).await.unwrap();
    }
    let answer = svc
        .send(
            Call::new(|| async { Err::<(), _>(DepError("429")) }).classify(|_: &DepError| {
                ErrorClass::permanent().with_retry_after(Duration::from_secs(2))
            }),
        )
        .await;
    assert!(matches!(answer, Err(CallError::Failed { .. })));
    settle().await;
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e.kind, EventKind::RateLowered { factor, .. } if factor == 0.5)));
    // At half the rate, tokens come every 20 ms instead of 10 ms while the hint lasts.
    let mut passed = 0;
    for _ in 0..100 {
        passed += u32::from(succeed(&svc).await.is_ok());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        (45..=55).contains(&passed),
        "{passed} of 100 in 1 s at 50/s"
    );
    // After the hint, the full rate again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut passed = 0;
    for _ in 0..100 {
        passed += u32::from(succeed(&svc).await.is_ok());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(passed >= 95, "{passed} of 100 at 100/s");
}

#[actix::test]
async fn a_caller_that_gives_up_while_waiting_for_a_token_is_counted_cancelled() {
    pause_aligned().await;
    let svc = start("impatient", limited(10.0, 1, Duration::from_secs(1)));
    succeed(&svc).await.unwrap();
    // The next token comes in 100 ms; this caller waits 10 ms only.
    let gave_up = tokio::time::timeout(Duration::from_millis(10), succeed(&svc)).await;
    assert!(gave_up.is_err());
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.cancelled), (1, 1));
}

#[test]
fn the_rate_limit_is_configured_in_toml_and_validated_by_field() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.api.rate_limit]
        rate = 50.0
        burst = 10
        max_wait = "200ms"
        retry_after_factor = 0.25
        "#,
    )
    .unwrap();
    let limit = file.services["api"].rate_limit.as_ref().unwrap();
    assert_eq!((limit.rate, limit.burst), (50.0, 10));
    assert_eq!(limit.retry_after_factor, 0.25);
    let error = ServicesFile::from_toml_str(
        r#"
        [services.api.rate_limit]
        rate = 0.0
        "#,
    )
    .unwrap_err();
    assert_eq!(
        error.field(),
        Some("services.api.rate_limit.rate"),
        "{error}"
    );
}
