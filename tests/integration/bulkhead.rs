//! The bulkhead: at most `max_in_flight` calls in flight; the excess is answered `Overloaded` at
//! once, and the slots come back when calls finish.

use crate::common;

use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use warden::prelude::*;

#[actix::test]
async fn excess_calls_get_overloaded_immediately_and_slots_are_released() {
    pause_aligned().await;
    let mut config = plain_config();
    config.max_in_flight = 10;
    let svc = start("svc", config);
    let calls = (0..100).map(|_| slow(&svc, Duration::from_secs(1)));
    let results = join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let overloaded = results
        .iter()
        .filter(|r| matches!(r, Err(CallError::Overloaded)))
        .count();
    assert_eq!((ok, overloaded), (10, 90));
    assert_eq!(svc.in_flight(), 0);
    settle().await;
    let counts = svc.counts().await.unwrap();
    assert_eq!(counts.success, 10);
    // The handles refused those 90 themselves, without a mailbox hop; they still count.
    assert_eq!(counts.rejected_overloaded, 90);
    assert_eq!(counts.total(), 100);
    // Slots are free again.
    slow(&svc, Duration::from_secs(1)).await.unwrap();
}

#[actix::test]
async fn calls_sent_to_the_address_are_bounded_too() {
    pause_aligned().await;
    let mut config = plain_config();
    config.max_in_flight = 2;
    let svc = start("svc", config);
    let addr = svc.addr().clone();
    let send = |addr: actix::Addr<ServiceSupervisor>| async move {
        addr.send(Call::new(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<(), DepError>(())
        }))
        .await
        .unwrap()
    };
    let results = join_all((0..5).map(|_| send(addr.clone()))).await;
    let overloaded = results
        .iter()
        .filter(|r| matches!(r, Err(CallError::Overloaded)))
        .count();
    assert_eq!(overloaded, 3);
    assert_eq!(svc.counts().await.unwrap().rejected_overloaded, 3);
}

#[actix::test]
async fn thousands_of_concurrent_calls_proceed_in_parallel() {
    pause_aligned().await;
    let mut config = plain_config();
    config.max_in_flight = 5000;
    config.mailbox_capacity = 5000;
    let svc = start("svc", config);
    let started = tokio::time::Instant::now();
    let results = join_all((0..5000).map(|_| slow(&svc, Duration::from_secs(1)))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    // All ran at once: one second in total, not 5000.
    assert_about(started.elapsed(), Duration::from_secs(1));
}
