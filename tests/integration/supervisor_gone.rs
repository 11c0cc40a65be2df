//! A supervisor that stops, or whose arbiter dies, leaves no caller hanging: calls in flight and
//! later calls are answered `SupervisorGone`; the registry restarts it (fresh breaker, health
//! and counts; a manual override is kept) and `get` answers the running one.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use common::*;
use futures_util::future::join_all;
use warden::breaker::TransitionReason;
use warden::messages::{Call, EventKind, StopSupervisor};
use warden::prelude::*;

/// Generous guard so a regression fails instead of hanging (paused clock: costs nothing).
const GUARD: Duration = Duration::from_secs(3600);

/// Counts operation futures dropped before they completed (cancelled).
#[derive(Clone, Default)]
struct Cancelled(Arc<AtomicU32>);

struct DropGuard(Arc<AtomicU32>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Cancelled {
    fn count(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }

    /// A call whose operation never finishes on its own.
    fn hanging_call(&self) -> Call<(), DepError> {
        let counter = self.0.clone();
        Call::new(move || {
            let guard = DropGuard(counter.clone());
            async move {
                std::future::pending::<()>().await;
                drop(guard);
                Ok(())
            }
        })
        .boxed()
    }
}

fn no_timeout_config() -> SupervisorConfig {
    SupervisorConfig {
        timeout: None,
        ..plain_config()
    }
}

async fn wait_in_flight(svc: &ServiceHandle, n: u32) {
    for _ in 0..1000 {
        if svc.in_flight() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("in flight: {} (expected {n})", svc.in_flight());
}

#[actix::test]
async fn stop_answers_calls_in_flight_and_later_calls() {
    pause_aligned().await;
    let svc = start("svc", no_timeout_config());
    let cancelled = Cancelled::default();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (svc, call) = (svc.clone(), cancelled.hanging_call());
            actix::spawn(async move { tokio::time::timeout(GUARD, svc.send(call)).await })
        })
        .collect();
    wait_in_flight(&svc, 10).await;

    svc.stop().await.unwrap();
    for answer in join_all(calls).await {
        let answer = answer.unwrap().expect("answered, not hanging");
        assert!(
            matches!(answer, Err(CallError::SupervisorGone)),
            "{answer:?}"
        );
    }
    // The operations were cancelled, not left running against the dependency.
    assert_eq!(cancelled.count(), 10);
    tokio::time::timeout(GUARD, svc.stopped()).await.unwrap();
    assert!(!svc.is_alive());
    assert_eq!(svc.in_flight(), 0, "bulkhead slots released");

    // Later calls are answered at once, without running the operation.
    let hits = Hits::default();
    let h = hits.clone();
    let later: Result<(), CallError<DepError>> = svc
        .call(move || {
            h.hit();
            async { Ok(()) }
        })
        .await;
    assert!(matches!(later, Err(CallError::SupervisorGone)), "{later:?}");
    assert_eq!(hits.get(), 0);
    assert_eq!(svc.counts().await, Err(warden::SupervisorGone));
    assert_eq!(svc.stop().await, Err(warden::SupervisorGone));
}

#[actix::test]
async fn a_call_queued_behind_the_stop_is_answered() {
    pause_aligned().await;
    let svc = start("svc", no_timeout_config());
    let cancelled = Cancelled::default();
    // Both go into the mailbox before the supervisor runs: the stop first.
    let stop = svc.addr().send(StopSupervisor);
    let call = svc.addr().send(cancelled.hanging_call());
    let (stopped, answer) = tokio::time::timeout(GUARD, async { tokio::join!(stop, call) })
        .await
        .expect("answered, not hanging");
    stopped.unwrap();
    // Either never handled (mailbox closed) or cancelled at once: no value, no hang.
    assert!(
        matches!(answer, Err(_) | Ok(Err(CallError::SupervisorGone))),
        "{answer:?}"
    );
    assert_eq!(svc.in_flight(), 0);
}

#[actix::test]
async fn arbiter_death_answers_calls_in_flight_and_later_calls() {
    let arbiter = Arbiter::new();
    let svc = ServiceSupervisor::builder("remote")
        .config(no_timeout_config())
        .start_in_arbiter(&arbiter.handle())
        .unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Arc::new(Mutex::new(Some(started_tx)));
    let cancelled = Cancelled::default();
    let guard_counter = cancelled.0.clone();
    let call = {
        let svc = svc.clone();
        actix::spawn(async move {
            svc.call(move || {
                let guard = DropGuard(guard_counter.clone());
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                async move {
                    std::future::pending::<()>().await;
                    drop(guard);
                    Ok::<(), DepError>(())
                }
            })
            .await
        })
    };
    started_rx.await.expect("operation started on the arbiter");

    // The arbiter's thread ends: the call's task is dropped with it.
    assert!(arbiter.stop());
    let answer = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("answered, not hanging")
        .unwrap();
    assert!(
        matches!(answer, Err(CallError::SupervisorGone)),
        "{answer:?}"
    );
    assert_eq!(cancelled.count(), 1);
    tokio::time::timeout(Duration::from_secs(30), svc.stopped())
        .await
        .unwrap();
    assert!(!svc.is_alive());
    assert!(matches!(
        succeed(&svc).await,
        Err(CallError::SupervisorGone)
    ));
    assert_eq!(svc.health().await, Err(warden::SupervisorGone));
    assert!(arbiter.join().is_ok());
}

#[actix::test]
async fn a_supervisor_stops_when_every_handle_is_dropped_and_no_call_is_in_flight() {
    pause_aligned().await;
    let svc = start("svc", plain_config());
    let stopped = svc.stopped();
    let slow_call = {
        let svc = svc.clone();
        actix::spawn(async move { slow(&svc, Duration::from_millis(500)).await })
    };
    drop(svc);
    // The call in flight keeps it running until answered.
    slow_call.await.unwrap().unwrap();
    tokio::time::timeout(GUARD, stopped).await.expect("stopped");
}

fn tripping_config() -> SupervisorConfig {
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(2);
    config.health.minimum_calls = 1;
    config
}

#[actix::test]
async fn registry_restarts_a_stopped_supervisor_with_fresh_state() {
    pause_aligned().await;
    let registry = warden::RegistryHandle::start().unwrap();
    let old = registry.spawn("db", tripping_config()).await.unwrap();
    succeed(&old).await.unwrap();
    fail(&old).await.unwrap_err();
    fail(&old).await.unwrap_err();
    assert_eq!(
        old.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
    assert!(old.health().await.unwrap().is_unhealthy());

    old.stop().await.unwrap();
    tokio::time::timeout(GUARD, old.stopped()).await.unwrap();
    assert!(matches!(
        succeed(&old).await,
        Err(CallError::SupervisorGone)
    ));

    let new = registry.get("db").await.unwrap().expect("still registered");
    assert!(new.is_alive());
    assert_eq!(registry.list().await.unwrap(), ["db"]);
    // Documented decision: a restart starts from a clean state.
    let status = new.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.window.calls, 0);
    let health = new.health().await.unwrap();
    assert_eq!(health.stats.calls, 0);
    assert!(health.is_healthy());
    assert_eq!(new.counts().await.unwrap(), Default::default());
    // Same configuration: trips after two failures again.
    succeed(&new).await.unwrap();
    fail(&new).await.unwrap_err();
    fail(&new).await.unwrap_err();
    assert_eq!(
        new.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
    // `get` keeps answering the same running supervisor.
    let again = registry.get("db").await.unwrap().unwrap();
    assert_eq!(again.addr(), new.addr());
    assert_eq!(registry.health_all().await.unwrap().len(), 1);
}

#[actix::test]
async fn a_forced_open_supervisor_comes_back_forced_open_without_anyone_asking() {
    pause_aligned().await;
    let registry = warden::RegistryHandle::start().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    registry
        .subscribe(Collector(events.clone()).start().recipient())
        .await
        .unwrap();
    let old = registry.spawn("db", plain_config()).await.unwrap();
    old.force_open().await.unwrap();
    old.stop().await.unwrap();
    tokio::time::timeout(GUARD, old.stopped()).await.unwrap();
    settle().await;

    // Nobody called `get`: the registry's watcher restarted it, subscribers carried over, and
    // the operator's override was re-applied to the new supervisor.
    let forced: Vec<TransitionReason> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StateChanged(t) if t.to == BreakerState::ForcedOpen => Some(t.reason),
            _ => None,
        })
        .collect();
    assert_eq!(forced.len(), 2, "once per incarnation: {forced:?}");
    let new = registry.get("db").await.unwrap().unwrap();
    assert_ne!(new.addr(), old.addr());
    assert!(matches!(
        succeed(&new).await,
        Err(CallError::Open { retry_after: None })
    ));
    new.reset().await.unwrap();
    succeed(&new).await.unwrap();
}

#[actix::test]
async fn a_supervisor_whose_arbiter_died_is_restarted_on_the_registry_arbiter() {
    let registry = warden::RegistryHandle::start().unwrap();
    let arbiter = Arbiter::new();
    let old = registry
        .spawn_in("remote", plain_config(), arbiter.handle())
        .await
        .unwrap();
    // Which thread the supervisor runs on: a `Call` sent to its address runs there.
    let thread_of = |svc: ServiceHandle| async move {
        svc.addr()
            .send(Call::new(|| async {
                Ok::<_, DepError>(std::thread::current().id())
            }))
            .await
            .unwrap()
            .unwrap()
    };
    let remote_thread = thread_of(old.clone()).await;
    assert_ne!(remote_thread, std::thread::current().id());

    assert!(arbiter.stop());
    assert!(arbiter.join().is_ok());
    tokio::time::timeout(Duration::from_secs(30), old.stopped())
        .await
        .unwrap();
    assert!(matches!(
        succeed(&old).await,
        Err(CallError::SupervisorGone)
    ));

    let new = registry.get("remote").await.unwrap().unwrap();
    assert!(new.is_alive());
    // The registry runs on this test's arbiter.
    assert_eq!(thread_of(new).await, std::thread::current().id());
}

#[actix::test]
async fn a_removed_supervisor_is_stopped_and_not_restarted() {
    pause_aligned().await;
    let registry = warden::RegistryHandle::start().unwrap();
    let old = registry.spawn("db", plain_config()).await.unwrap();
    assert!(registry.remove("db").await.unwrap());
    assert!(!registry.remove("db").await.unwrap());
    tokio::time::timeout(GUARD, old.stopped()).await.unwrap();
    settle().await;
    assert!(registry.get("db").await.unwrap().is_none());
    assert!(registry.list().await.unwrap().is_empty());
    assert!(matches!(
        succeed(&old).await,
        Err(CallError::SupervisorGone)
    ));
    // The name is free again.
    let new = registry.spawn("db", plain_config()).await.unwrap();
    succeed(&new).await.unwrap();
}

#[actix::test]
async fn an_idle_supervisor_with_an_open_breaker_stops_when_its_handles_are_dropped() {
    pause_aligned().await;
    let mut config = tripping_config();
    config.breaker.open_duration = OpenDuration::fixed(Duration::from_secs(30));
    config.breaker.half_open_max_wait = Duration::from_secs(10);
    let svc = start("svc", config);
    fail(&svc).await.unwrap_err();
    fail(&svc).await.unwrap_err();
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Open
    );
    let stopped = svc.stopped();
    drop(svc);
    // Its breaker timer (end of Open) must not keep it alive, cycling Open ↔ HalfOpen with
    // nobody left to call it: it stops at the latest when that timer fires.
    let waited = tokio::time::Instant::now();
    tokio::time::timeout(GUARD, stopped).await.expect("stopped");
    assert!(
        waited.elapsed() <= Duration::from_secs(31),
        "{:?}",
        waited.elapsed()
    );
}
