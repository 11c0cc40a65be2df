//! Subscribers receive state-change, health-change, retry and timeout events (as actix messages
//! or through a tokio channel),
//! from one supervisor or from every supervisor of a registry.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use common::*;
use warden::breaker::TransitionReason;
use warden::messages::{EventKind, SupervisorEvent};
use warden::prelude::*;

fn collector() -> (Recipient<SupervisorEvent>, Arc<Mutex<Vec<SupervisorEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let addr = Collector(events.clone()).start();
    (addr.recipient(), events)
}

#[actix::test]
async fn state_changes_carry_reason_and_snapshot_in_order() {
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(3);
    config.health.minimum_calls = 1;
    let db = start("db", config);
    let (recipient, events) = collector();
    db.subscribe(recipient).await.unwrap();

    for _ in 0..3 {
        fail(&db).await.unwrap_err();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    succeed(&db).await.unwrap();
    db.counts().await.unwrap();
    settle().await;

    let events = events.lock().unwrap();
    let transitions: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StateChanged(t) => Some(t),
            _ => None,
        })
        .collect();
    let steps: Vec<_> = transitions
        .iter()
        .map(|t| (t.from, t.to, t.reason))
        .collect();
    assert_eq!(
        steps,
        [
            (
                BreakerState::Closed,
                BreakerState::Open,
                TransitionReason::ConsecutiveFailures
            ),
            (
                BreakerState::Open,
                BreakerState::HalfOpen,
                TransitionReason::OpenElapsed
            ),
            (
                BreakerState::HalfOpen,
                BreakerState::Closed,
                TransitionReason::ProbesSucceeded
            ),
        ]
    );
    assert_eq!(transitions[0].snapshot.consecutive_failures, 3);
    assert_eq!(transitions[0].open_for, Some(Duration::from_secs(30)));
    assert!(events.iter().all(|e| &*e.service == "db"));

    let health: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HealthChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        health.first(),
        Some(&(HealthStatus::Healthy, HealthStatus::Unhealthy))
    );
}

#[actix::test]
async fn retries_and_timeouts_are_published() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_millis(100));
    config.retry = RetryConfig::constant(2, Duration::from_millis(50));
    let svc = start("svc", config);
    let (recipient, events) = collector();
    svc.subscribe(recipient).await.unwrap();
    let _ = svc
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<(), DepError>(())
        })
        .await;
    svc.counts().await.unwrap();
    settle().await;
    let kinds: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert!(matches!(kinds[0], EventKind::TimedOut { .. }), "{kinds:?}");
    assert!(matches!(
        kinds[1],
        EventKind::RetryScheduled { attempt: 2, delay, .. } if delay == Duration::from_millis(50)
    ));
    assert!(matches!(kinds[2], EventKind::TimedOut { .. }));
}

#[actix::test]
async fn registry_subscription_covers_present_and_future_supervisors() {
    pause_aligned().await;
    let registry = warden::RegistryHandle::start().unwrap();
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(1);
    let first = registry.spawn("first", config.clone()).await.unwrap();
    let (recipient, events) = collector();
    registry.subscribe(recipient).await.unwrap();
    let second = registry.spawn("second", config).await.unwrap();
    fail(&first).await.unwrap_err();
    fail(&second).await.unwrap_err();
    first.counts().await.unwrap();
    second.counts().await.unwrap();
    settle().await;
    let mut opened: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::StateChanged(t) if t.to == BreakerState::Open))
        .map(|e| e.service.to_string())
        .collect();
    opened.sort();
    assert_eq!(opened, ["first", "second"]);
}

/// A tokio channel subscribes without an actor: plain tokio, no actix system. A full channel
/// drops events rather than slowing the supervisor, and a dropped receiver is forgotten.
#[tokio::test(start_paused = true)]
async fn a_tokio_channel_receives_events_without_actix() {
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(2);
    let db = ServiceSupervisor::builder("channel_db")
        .config(config)
        .start()
        .unwrap();
    let (events, mut received) = tokio::sync::mpsc::channel(64);
    db.subscribe(events).await.unwrap();
    for _ in 0..2 {
        fail(&db).await.unwrap_err();
    }
    db.counts().await.unwrap();
    let mut opened = false;
    while let Ok(event) = tokio::time::timeout(Duration::from_secs(1), received.recv()).await {
        let event = event.expect("the supervisor holds the sender");
        assert_eq!(&*event.service, "channel_db");
        if let EventKind::StateChanged(t) = &event.kind {
            assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
            opened = true;
        }
    }
    assert!(opened, "the breaker's trip reached the channel");

    // A channel of one, never read: the supervisor drops what does not fit and goes on.
    let (full, mut one) = tokio::sync::mpsc::channel(1);
    db.subscribe(full).await.unwrap();
    db.reset().await.unwrap();
    db.force_open().await.unwrap();
    db.reset().await.unwrap();
    assert!(
        db.counts().await.is_ok(),
        "a full channel never blocks the supervisor"
    );
    assert!(one.try_recv().is_ok());
    assert!(one.try_recv().is_err(), "only what fitted was kept");
}
