//! Configuration reload (`RegistryHandle::reload`): validated first, applied in place without
//! losing state (breaker, health window, counts), added services started, removed ones stopped
//! only when asked, one `Reconfigured` event per changed service. Paused clock throughout.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use common::*;
use warden::actors::{RegistryError, RegistryHandle, ReloadOptions};
use warden::messages::{EventKind, Reconfiguration, SupervisorEvent};
use warden::prelude::*;

const OPEN_FOR: Duration = Duration::from_secs(30);

/// A breaker that opens after 3 consecutive failures, for 30 s.
fn db_config() -> SupervisorConfig {
    let mut config = plain_config();
    config.breaker = BreakerConfig::consecutive(3).open_for(OPEN_FOR);
    config.health.window_size = 1_000;
    config
}

fn file(services: &[(&str, SupervisorConfig)]) -> ServicesFile {
    ServicesFile {
        services: services
            .iter()
            .map(|(name, config)| (name.to_string(), config.clone()))
            .collect(),
    }
}

async fn registry_with(services: &[(&str, SupervisorConfig)]) -> RegistryHandle {
    let registry = warden::RegistryHandle::start().unwrap();
    let report = registry.reload(file(services)).await.unwrap();
    assert_eq!(report.added.len(), services.len());
    registry
}

async fn get(registry: &RegistryHandle, name: &str) -> ServiceHandle {
    registry.get(name).await.unwrap().expect("registered")
}

struct Collector(Arc<Mutex<Vec<SupervisorEvent>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<SupervisorEvent> for Collector {
    type Result = ();

    fn handle(&mut self, event: SupervisorEvent, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(event);
    }
}

fn reconfigurations(events: &Mutex<Vec<SupervisorEvent>>) -> Vec<(String, Reconfiguration)> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Reconfigured(change) => Some((event.service.to_string(), change.clone())),
            _ => None,
        })
        .collect()
}

#[actix::test]
async fn an_open_breaker_stays_open_through_a_reload_that_changes_only_timeouts() {
    pause_aligned().await;
    let registry = registry_with(&[("db", db_config())]).await;
    let db = get(&registry, "db").await;
    succeed(&db).await.unwrap();
    for _ in 0..3 {
        assert!(fail(&db).await.is_err());
    }
    assert_eq!(db.breaker_status().await.unwrap().state, BreakerState::Open);
    let health_before = db.health().await.unwrap().stats;
    assert_eq!(health_before.calls, 4);
    let window_before = db.breaker_status().await.unwrap().window;

    let mut changed = db_config();
    changed.timeout = Some(Duration::from_millis(200));
    changed.deadline = Some(Duration::from_secs(2));
    let report = registry.reload(file(&[("db", changed)])).await.unwrap();
    assert_eq!(report.changed, ["db"]);
    assert!(report.added.is_empty() && report.unchanged.is_empty());

    // Same supervisor, same state: still open, refused at once, the window and counts intact.
    let after = get(&registry, "db").await;
    let status = after.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(status.window, window_before);
    assert!(matches!(
        succeed(&db).await,
        Err(CallError::Open {
            retry_after: Some(_)
        })
    ));
    let health_after = after.health().await.unwrap().stats;
    assert_eq!(health_after.calls, health_before.calls);
    assert_eq!(health_after.failures, 3);
    let counts = db.counts().await.unwrap();
    assert_eq!((counts.success, counts.failure), (1, 3));

    // It reopens for the rest of its period only, then lets a probe through as before.
    tokio::time::sleep(OPEN_FOR).await;
    succeed(&db).await.unwrap();
    assert_eq!(
        db.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
}

#[actix::test]
async fn reload_under_traffic_loses_no_call_and_no_count() {
    pause_aligned().await;
    let registry = registry_with(&[("db", db_config())]).await;
    let db = get(&registry, "db").await;
    const CALLERS: u32 = 20;
    const CALLS: u32 = 25;
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut answered = 0;
                for j in 0..CALLS {
                    let latency = Duration::from_millis(u64::from(1 + (i + j) % 7));
                    slow(&db, latency).await.expect("a healthy call succeeds");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    // Reload repeatedly while the calls flow: timeouts, retries, bulkhead, health thresholds.
    for round in 0..10u32 {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let mut config = db_config();
        config.timeout = Some(Duration::from_millis(500 + u64::from(round) * 100));
        config.max_in_flight = 64 + round;
        config.retry = RetryConfig::constant(2 + round % 2, Duration::from_millis(1));
        config.health.window_size = 1_000 + round;
        let report = registry.reload(file(&[("db", config)])).await.unwrap();
        assert_eq!(report.changed, ["db"], "round {round}");
    }
    let mut answered = 0;
    for caller in callers {
        answered += caller.await.unwrap();
    }
    assert_eq!(answered, CALLERS * CALLS, "every call answered");
    settle().await;
    let counts = db.counts().await.unwrap();
    assert_eq!(counts.success, u64::from(CALLERS * CALLS));
    assert_eq!(counts.attempts, u64::from(CALLERS * CALLS));
    let health = db.health().await.unwrap().stats;
    assert_eq!(
        health.calls,
        CALLERS * CALLS,
        "no sample lost by the resizes"
    );
    assert_eq!(db.in_flight(), 0);
}

#[actix::test]
async fn an_invalid_file_changes_nothing() {
    pause_aligned().await;
    let registry = registry_with(&[("db", db_config())]).await;
    let db = get(&registry, "db").await;
    let (recipient, events) = {
        let events = Arc::new(Mutex::new(Vec::new()));
        (Collector(events.clone()).start().recipient(), events)
    };
    registry.subscribe(recipient).await.unwrap();

    // Built in code: validated by the reload itself. A valid change to `db` next to an
    // invalid new service: neither is applied.
    let mut faster = db_config();
    faster.timeout = Some(Duration::from_millis(10));
    let mut bad = db_config();
    bad.breaker.failure_rate_threshold = Some(1.5);
    let err = registry
        .reload_with(
            file(&[("db", faster), ("new", bad)]),
            ReloadOptions::default().stop_removed(true),
        )
        .await
        .unwrap_err();
    match &err {
        RegistryError::Config(error) => assert_eq!(
            error.field(),
            Some("services.new.breaker.failure_rate_threshold")
        ),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // And from TOML: refused while parsing, before any reload.
    let err = ServicesFile::from_toml_str("[services.db]\nmax_in_flight = 0\n").unwrap_err();
    assert_eq!(err.field(), Some("services.db.max_in_flight"));

    assert_eq!(registry.list().await.unwrap(), ["db"]);
    // The old timeout (1 s) still applies: a 50 ms call succeeds.
    slow(&db, Duration::from_millis(50)).await.unwrap();
    settle().await;
    assert!(reconfigurations(&events).is_empty());
}

#[actix::test]
async fn a_changed_timeout_applies_from_the_next_call() {
    pause_aligned().await;
    let registry = registry_with(&[("db", db_config())]).await;
    let db = get(&registry, "db").await;
    slow(&db, Duration::from_millis(300)).await.unwrap();

    let mut shorter = db_config();
    shorter.timeout = Some(Duration::from_millis(100));
    registry.reload(file(&[("db", shorter)])).await.unwrap();
    assert!(matches!(
        slow(&db, Duration::from_millis(300)).await,
        Err(CallError::TimedOut { attempts: 1 })
    ));

    // Retries switched on by a reload: the next failing call makes 3 attempts.
    // (The timeout above was a breaker failure: a higher threshold, so 3 more do not trip it.)
    let mut retrying = db_config();
    retrying.breaker = BreakerConfig::consecutive(10).open_for(OPEN_FOR);
    retrying.retry = RetryConfig::constant(3, Duration::from_millis(10));
    registry.reload(file(&[("db", retrying)])).await.unwrap();
    let hits = Hits::default();
    let counted = hits.clone();
    let answer = db
        .call(move || {
            counted.hit();
            async { Err::<(), _>(DepError("boom")) }
        })
        .await;
    assert!(matches!(
        answer,
        Err(CallError::RetriesExhausted { attempts: 3, .. })
    ));
    assert_eq!(hits.get(), 3);
}

#[actix::test]
async fn a_new_bulkhead_limit_applies_at_once() {
    pause_aligned().await;
    let registry = registry_with(&[("db", db_config())]).await;
    let db = get(&registry, "db").await;
    let mut narrow = db_config();
    narrow.max_in_flight = 1;
    registry.reload(file(&[("db", narrow)])).await.unwrap();
    let long = {
        let db = db.clone();
        tokio::spawn(async move { slow(&db, Duration::from_millis(100)).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(matches!(succeed(&db).await, Err(CallError::Overloaded)));
    long.await.unwrap().unwrap();
    succeed(&db).await.unwrap();
}

#[actix::test]
async fn added_services_start_and_removed_ones_stop_only_when_asked() {
    pause_aligned().await;
    let registry = registry_with(&[("db", db_config()), ("cache", plain_config())]).await;
    let cache = get(&registry, "cache").await;

    // `cache` is left out, `api` is new, `db` is the same.
    let report = registry
        .reload(file(&[("db", db_config()), ("api", plain_config())]))
        .await
        .unwrap();
    assert_eq!(report.added, ["api"]);
    assert_eq!(report.unchanged, ["db"]);
    assert_eq!(report.not_in_file, ["cache"]);
    assert!(report.removed.is_empty() && report.changed.is_empty());
    assert_eq!(registry.list().await.unwrap(), ["api", "cache", "db"]);
    succeed(&get(&registry, "api").await).await.unwrap();
    succeed(&cache).await.unwrap();

    // Asked to stop the ones left out: `cache` is stopped and forgotten.
    let report = registry
        .reload_with(
            file(&[("db", db_config()), ("api", plain_config())]),
            ReloadOptions::default().stop_removed(true),
        )
        .await
        .unwrap();
    assert_eq!(report.removed, ["cache"]);
    assert_eq!(report.unchanged, ["api", "db"]);
    cache.stopped().await;
    assert!(matches!(
        succeed(&cache).await,
        Err(CallError::SupervisorGone)
    ));
    assert_eq!(registry.list().await.unwrap(), ["api", "db"]);
}

#[actix::test]
async fn one_event_per_reconfigured_service_saying_what_reset() {
    pause_aligned().await;
    let mut rate = db_config();
    rate.breaker = rate
        .breaker
        .failure_rate(0.5, SlidingWindow::Count { size: 10 }, 10);
    let registry = registry_with(&[("db", rate.clone()), ("cache", plain_config())]).await;
    let db = get(&registry, "db").await;
    let (recipient, events) = {
        let events = Arc::new(Mutex::new(Vec::new()));
        (Collector(events.clone()).start().recipient(), events)
    };
    registry.subscribe(recipient).await.unwrap();
    for _ in 0..2 {
        assert!(fail(&db).await.is_err());
    }
    succeed(&db).await.unwrap();

    // Only the open duration changes: the window is kept.
    let mut longer = rate.clone();
    longer.breaker = longer.breaker.open_for(Duration::from_secs(60));
    registry
        .reload(file(&[("db", longer.clone()), ("cache", plain_config())]))
        .await
        .unwrap();
    assert_eq!(db.breaker_status().await.unwrap().window.calls, 3);

    // Another window size: the window starts empty, the breaker state is kept.
    let mut resized = longer;
    resized.breaker = resized
        .breaker
        .failure_rate(0.5, SlidingWindow::Count { size: 20 }, 10);
    resized.health.window_size = 10;
    registry
        .reload(file(&[("db", resized), ("cache", plain_config())]))
        .await
        .unwrap();
    let status = db.breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.window.calls, 0);
    assert_eq!(
        db.health().await.unwrap().stats.calls,
        3,
        "health samples kept"
    );

    settle().await;
    let changes = reconfigurations(&events);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().all(|(service, _)| service == "db"));
    assert_eq!(changes[0].1.changed, ["breaker"]);
    assert!(changes[0].1.reset.is_empty());
    assert_eq!(changes[1].1.changed, ["breaker", "health"]);
    assert_eq!(changes[1].1.reset, ["breaker.window"]);
}

#[actix::test]
async fn a_single_supervisor_is_reconfigured_through_its_handle() {
    pause_aligned().await;
    let db = start("db", db_config());
    for _ in 0..3 {
        assert!(fail(&db).await.is_err());
    }
    let mut config = db_config();
    config.timeout = None;
    let change = db.reconfigure(config.clone()).await.unwrap();
    assert_eq!(change.changed, ["timeout"]);
    assert!(change.reset.is_empty());
    assert_eq!(db.breaker_status().await.unwrap().state, BreakerState::Open);
    // The same configuration again: nothing changes.
    assert!(!db.reconfigure(config.clone()).await.unwrap().is_change());
    config.max_in_flight = 0;
    let err = db.reconfigure(config).await.unwrap_err();
    assert!(matches!(&err, warden::ControlError::Config(e) if e.field() == Some("max_in_flight")));
}

#[actix::test]
async fn a_rate_limit_is_added_changed_and_removed_by_reload() {
    pause_aligned().await;
    let registry = registry_with(&[("db", db_config())]).await;
    let db = get(&registry, "db").await;
    for _ in 0..10 {
        succeed(&db).await.unwrap();
    }

    // 2 calls per second, a burst of 2, no waiting: the third call at once is refused.
    let mut limited = db_config();
    limited.rate_limit = Some(RateLimitConfig {
        rate: 2.0,
        burst: 2,
        max_wait: Duration::ZERO,
        ..RateLimitConfig::default()
    });
    let report = registry
        .reload(file(&[("db", limited.clone())]))
        .await
        .unwrap();
    assert_eq!(report.changed, ["db"]);
    succeed(&db).await.unwrap();
    succeed(&db).await.unwrap();
    assert!(matches!(
        succeed(&db).await,
        Err(CallError::RateLimited { .. })
    ));

    // A higher rate keeps the (empty) bucket: the next token comes at the new rate.
    let mut faster = limited;
    faster.rate_limit = Some(RateLimitConfig {
        rate: 100.0,
        burst: 2,
        max_wait: Duration::ZERO,
        ..RateLimitConfig::default()
    });
    registry.reload(file(&[("db", faster)])).await.unwrap();
    assert!(matches!(
        succeed(&db).await,
        Err(CallError::RateLimited { .. })
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;
    succeed(&db).await.unwrap();

    // Removed: no limit any more.
    registry.reload(file(&[("db", db_config())])).await.unwrap();
    for _ in 0..10 {
        succeed(&db).await.unwrap();
    }
}
