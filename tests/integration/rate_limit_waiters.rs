//! Issue 18, item 3: a rate-limit waiter that gives up hands its token back, so abandoned
//! waiters never slow the next caller (the ghost-permit bug of Resilience4j's and Failsafe's
//! users); the same for a coalesced would-be leader that lost the slot race.

use crate::common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;
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

/// Two waiters give up: the next caller still waits one interval (100 ms), not three.
#[actix::test]
async fn abandoned_waiters_do_not_delay_the_next_caller() {
    pause_aligned().await;
    let svc = start("abandoned", limited(10.0, 1, Duration::from_secs(2)));
    succeed(&svc).await.unwrap();
    for _ in 0..2 {
        let gave_up = tokio::time::timeout(Duration::from_millis(10), succeed(&svc)).await;
        assert!(gave_up.is_err(), "the waiter gave up");
    }
    let t0 = Instant::now();
    succeed(&svc).await.unwrap();
    // 20 ms went by while the two waited: the token is due about 80 ms from now (280 ms if the
    // two had kept theirs).
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(78) && waited <= Duration::from_millis(82),
        "waited {waited:?}"
    );
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.cancelled), (2, 2), "{counts:?}");
}

/// Ten waiters give up on a dependency idle since: the next caller is admitted once its
/// interval has passed, never refused.
#[actix::test]
async fn ten_abandoned_waiters_never_get_the_next_caller_refused() {
    pause_aligned().await;
    let svc = start(
        "ten_abandoned",
        limited(10.0, 1, Duration::from_millis(150)),
    );
    succeed(&svc).await.unwrap();
    for _ in 0..10 {
        let gave_up = tokio::time::timeout(Duration::from_millis(1), succeed(&svc)).await;
        assert!(gave_up.is_err(), "the waiter gave up");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    succeed(&svc).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO, "a token was saved for it");
    let counts = svc.counts().await.unwrap();
    assert_eq!(counts.rejected_rate_limited, 0, "{counts:?}");
}

/// A coalesced call that waited for its token and then lost the race for its key's lead
/// follows the leader: its token goes back, so the next caller is not delayed by it.
#[actix::test]
async fn a_coalesced_call_that_lost_the_lead_hands_its_token_back() {
    pause_aligned().await;
    let svc = start("coalesced_token", limited(10.0, 1, Duration::from_secs(1)));
    // The burst's token is spent: the next token is due at 100 ms, the one after at 200 ms.
    succeed(&svc).await.unwrap();
    let hits = Hits::default();
    let coalesced = |svc: ServiceHandle, hits: Hits| async move {
        svc.send(
            Call::new(move || {
                hits.hit();
                async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok::<u32, DepError>(7)
                }
            })
            .coalesce("key"),
        )
        .await
    };
    // Both find no flight (neither has a slot yet) and reserve a token: the first at 100 ms
    // (it leads), the second at 200 ms (it then finds the flight and follows).
    let leader = actix::spawn(coalesced(svc.clone(), hits.clone()));
    tokio::time::sleep(Duration::from_millis(1)).await;
    let follower = actix::spawn(coalesced(svc.clone(), hits.clone()));
    tokio::time::sleep(Duration::from_millis(249)).await;
    // The follower's token went back at 200 ms: a call at 250 ms is admitted at once (it
    // would wait until 300 ms had the follower kept it).
    let t0 = Instant::now();
    succeed(&svc).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(leader.await.unwrap().unwrap(), 7);
    assert_eq!(follower.await.unwrap().unwrap(), 7);
    assert_eq!(hits.get(), 1, "one operation for the key");
    settle().await;
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.coalesced), (3, 1), "{counts:?}");
}
