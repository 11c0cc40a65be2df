//! Half-open admits exactly N probes, failed probes grow the open duration, stuck probes cannot
//! wedge it, and manual commands work — through a real supervisor with paused time.

use crate::common;

use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use warden::prelude::*;

fn tripping_config(probes: u32) -> SupervisorConfig {
    let mut config = plain_config();
    config.timeout = Some(Duration::from_secs(120));
    config.breaker.consecutive_failures = Some(1);
    config.breaker.half_open_probes = probes;
    config.breaker.open_duration = OpenDuration {
        base: Duration::from_secs(30),
        max: Duration::from_secs(120),
        multiplier: 2.0,
        jitter: 0.0,
    };
    config.max_in_flight = 2000;
    config.mailbox_capacity = 2000;
    config
}

#[actix::test]
async fn half_open_admits_exactly_n_of_1000_concurrent_callers() {
    pause_aligned().await;
    let db = start("db", tripping_config(3));
    fail(&db).await.unwrap_err();
    assert_eq!(db.breaker_status().await.unwrap().state, BreakerState::Open);
    tokio::time::advance(Duration::from_secs(30)).await;

    let hits = Hits::default();
    let calls = (0..1000).map(|_| {
        let db = db.clone();
        let hits = hits.clone();
        async move {
            db.call(move || {
                let hits = hits.clone();
                async move {
                    hits.hit();
                    // Probes take a while, so every caller races while they are in flight.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<(), DepError>(())
                }
            })
            .await
        }
    });
    let results = join_all(calls).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let rejected = results
        .iter()
        .filter(|r| matches!(r, Err(CallError::Open { .. })))
        .count();
    assert_eq!(admitted, 3);
    assert_eq!(rejected, 997);
    assert_eq!(hits.get(), 3);
    // Three successful probes close it.
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
}

#[actix::test]
async fn failed_probe_doubles_open_duration_up_to_max_and_success_resets_it() {
    pause_aligned().await;
    let db = start("db", tripping_config(1));
    fail(&db).await.unwrap_err();
    let mut expected = [30u64, 60, 120, 120].into_iter();
    let mut open_for = expected.next().unwrap();
    assert_eq!(
        db.breaker_status().await.unwrap().retry_after,
        Some(Duration::from_secs(open_for))
    );
    for next in expected {
        // Just before the end: still open, fast fail.
        tokio::time::advance(Duration::from_secs(open_for) - Duration::from_millis(1)).await;
        assert!(matches!(succeed(&db).await, Err(CallError::Open { .. })));
        tokio::time::advance(Duration::from_millis(1)).await;
        // The probe fails: open again, for longer.
        fail(&db).await.unwrap_err();
        let status = db.breaker_status().await.unwrap();
        assert_eq!(status.state, BreakerState::Open);
        assert_eq!(
            status.retry_after,
            Some(Duration::from_secs(next)),
            "after {open_for}s"
        );
        open_for = next;
    }
    tokio::time::advance(Duration::from_secs(open_for)).await;
    succeed(&db).await.unwrap();
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
    // Growth level reset: the next trip opens for the base duration again.
    fail(&db).await.unwrap_err();
    assert_eq!(
        db.breaker_status().await.unwrap().retry_after,
        Some(Duration::from_secs(30))
    );
}

#[actix::test]
async fn half_open_state_is_published_by_timer_without_any_call() {
    pause_aligned().await;
    let db = start("db", tripping_config(1));
    fail(&db).await.unwrap_err();
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::HalfOpen
    );
}

#[actix::test]
async fn stuck_probe_cannot_wedge_half_open() {
    pause_aligned().await;
    let mut config = tripping_config(1);
    // No per-attempt timeout: a hung probe would hang forever without the bounded wait.
    config.timeout = None;
    config.breaker.half_open_max_wait = Duration::from_secs(10);
    let db = start("db", config);
    fail(&db).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(30)).await;

    // The probe hangs.
    let hung = {
        let db = db.clone();
        actix::spawn(async move { db.call(std::future::pending::<Result<(), DepError>>).await })
    };
    settle().await;
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::HalfOpen
    );
    assert!(matches!(succeed(&db).await, Err(CallError::Open { .. })));

    // After the bounded wait the breaker gives up on it and opens again (60 s: a failed probe),
    // then lets a new probe through, which closes it.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let status = db.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(status.retry_after, Some(Duration::from_secs(60)));
    tokio::time::sleep(Duration::from_secs(60)).await;
    succeed(&db).await.unwrap();
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
    hung.abort();
}

#[actix::test]
async fn open_breaker_rejects_on_the_handle_without_a_mailbox_hop() {
    pause_aligned().await;
    let db = start("db", tripping_config(1));
    fail(&db).await.unwrap_err();
    assert_eq!(db.breaker_status().await.unwrap().state, BreakerState::Open);
    // Stop the actor's message processing from mattering: the fast path answers on the
    // caller's task, synchronously on first poll.
    let call = db.call(|| async { Ok::<(), DepError>(()) });
    let answer = futures_util::FutureExt::now_or_never(call).expect("answered without waiting");
    assert!(
        matches!(answer, Err(CallError::Open { retry_after: Some(d) }) if d == Duration::from_secs(30))
    );
}

#[actix::test]
async fn manual_force_open_disable_and_reset() {
    pause_aligned().await;
    let db = start("db", tripping_config(1));
    assert_eq!(db.force_open().await.unwrap(), BreakerState::ForcedOpen);
    assert!(matches!(
        succeed(&db).await,
        Err(CallError::Open { retry_after: None })
    ));
    // Forced open does not end by itself.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(matches!(succeed(&db).await, Err(CallError::Open { .. })));
    assert_eq!(db.health().await.unwrap().status, HealthStatus::Unhealthy);

    assert_eq!(db.disable().await.unwrap(), BreakerState::Disabled);
    for _ in 0..5 {
        // Failures pass through and never trip a disabled breaker.
        assert!(matches!(fail(&db).await, Err(CallError::Failed { .. })));
    }
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::Disabled
    );

    assert_eq!(db.reset().await.unwrap(), BreakerState::Closed);
    fail(&db).await.unwrap_err();
    assert_eq!(db.breaker_status().await.unwrap().state, BreakerState::Open);
}
