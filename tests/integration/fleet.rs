//! A fleet in one process: replicas sharing a [`MemoryStore`] share one quota and one retry
//! budget; when the store fails they fall back to their own share, say so, and come back.
//! (`tests/fleet_redis.rs` does the same with real processes and a real Redis.)

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use warden::fleet::{FleetPart, FleetStore, MemoryStore};
use warden::messages::{EventKind, SupervisorEvent};
use warden::prelude::*;

fn replica(name: &str, store: &Arc<MemoryStore>, config: SupervisorConfig) -> ServiceHandle {
    ServiceSupervisor::builder(name)
        .config(config)
        .fleet_store(Arc::clone(store) as Arc<dyn FleetStore>)
        .start()
        .expect("valid fleet configuration")
}

fn quota_config(replicas: u32) -> SupervisorConfig {
    let mut config = plain_config();
    config.rate_limit = Some(
        RateLimitConfig::per_second(100.0)
            .burst(10)
            .max_wait(Duration::from_millis(20)),
    );
    config.fleet = Some(
        FleetConfig::default()
            .key("api")
            .budget(false)
            .timeout(Duration::from_millis(20)),
    );
    config.fleet.as_mut().unwrap().expected_replicas = replicas;
    config
}

/// Offers `per_second` calls a second to each replica for `duration`; answers the admitted
/// calls of each.
async fn offer(replicas: &[ServiceHandle], per_second: u32, duration: Duration) -> Vec<u64> {
    let mut admitted = vec![0u64; replicas.len()];
    let gap = Duration::from_secs(1) / per_second;
    let end = tokio::time::Instant::now() + duration;
    let mut calls = Vec::new();
    while tokio::time::Instant::now() < end {
        for (i, replica) in replicas.iter().enumerate() {
            let replica = replica.clone();
            calls.push((
                i,
                tokio::spawn(
                    async move { replica.call(|| async { Ok::<(), DepError>(()) }).await },
                ),
            ));
        }
        tokio::time::sleep(gap).await;
    }
    for (i, call) in calls {
        match call.await.unwrap() {
            Ok(()) => admitted[i] += 1,
            Err(CallError::RateLimited { .. }) => {}
            Err(other) => panic!("only rate limited refusals: {other:?}"),
        }
    }
    admitted
}

#[actix::test]
async fn replicas_share_one_quota() {
    pause_aligned().await;
    let store = Arc::new(MemoryStore::new());
    let replicas: Vec<_> = (0..4)
        .map(|i| replica(&format!("quota-{i}"), &store, quota_config(4)))
        .collect();
    // 4 × 300/s offered against 100/s shared, for 10 s: 1 000 and the burst of 10.
    let admitted = offer(&replicas, 300, Duration::from_secs(10)).await;
    let total: u64 = admitted.iter().sum();
    assert!(
        (990..=1_015).contains(&total),
        "fleet admitted {total} ({admitted:?})"
    );
    // Each replica got a fair part of it (none starved).
    for (i, share) in admitted.iter().enumerate() {
        assert!(
            *share >= 150,
            "replica {i} admitted {share} of {total}: {admitted:?}"
        );
    }
    let health = replicas[0].health().await.unwrap();
    assert_eq!(health.fleet.unwrap().quota_shared, Some(true));
}

#[actix::test]
async fn a_store_outage_falls_back_to_the_local_share_and_back() {
    pause_aligned().await;
    let store = Arc::new(MemoryStore::new());
    let replicas: Vec<_> = (0..2)
        .map(|i| replica(&format!("outage-{i}"), &store, quota_config(2)))
        .collect();
    let (events, mut received) = tokio::sync::mpsc::channel::<SupervisorEvent>(64);
    replicas[0].subscribe(events).await.unwrap();

    let shared = offer(&replicas, 200, Duration::from_secs(2)).await;
    let shared: u64 = shared.iter().sum();
    assert!((195..=215).contains(&shared), "{shared}");

    // The store goes away: each replica goes on at its share, 100 / 2 = 50/s.
    store.set_available(false);
    let local = offer(&replicas, 200, Duration::from_secs(4)).await;
    for (i, calls) in local.iter().enumerate() {
        // Up to a lease of tokens in hand when the store went, and its local burst of 5.
        assert!((195..=215).contains(calls), "replica {i}: {calls} in 4 s");
    }
    let health = replicas[0].health().await.unwrap();
    assert_eq!(health.fleet.unwrap().quota_shared, Some(false));

    // Back: shared again within the reconnect backoff (here at most 5 s).
    store.set_available(true);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let back = offer(&replicas, 200, Duration::from_secs(2)).await;
    let back: u64 = back.iter().sum();
    assert!((195..=215).contains(&back), "{back}");
    let health = replicas[0].health().await.unwrap();
    assert_eq!(health.fleet.unwrap().quota_shared, Some(true));

    let mut kinds = Vec::new();
    while let Ok(event) = received.try_recv() {
        match event.kind {
            EventKind::FleetFallback { part } | EventKind::FleetRestored { part } => {
                assert_eq!(part, FleetPart::Quota);
                kinds.push(matches!(event.kind, EventKind::FleetRestored { .. }));
            }
            _ => {}
        }
    }
    assert_eq!(kinds, [false, true], "one fallback, one return");
}

#[actix::test]
async fn replicas_share_one_retry_budget_floor() {
    pause_aligned().await;
    let store = Arc::new(MemoryStore::new());
    let mut config = plain_config();
    // Retries capped at 10 % of the fleet's calls plus one floor of 1/s over 10 s.
    config.retry = RetryConfig::constant(3, Duration::from_millis(1)).budget(BudgetConfig {
        ratio: 0.1,
        min_per_second: 1,
        window: Duration::from_secs(10),
        ..BudgetConfig::default()
    });
    config.fleet = Some(FleetConfig::default().key("budget").quota(false));
    let replicas: Vec<_> = (0..4)
        .map(|i| replica(&format!("budget-{i}"), &store, config.clone()))
        .collect();
    // Let the first syncs answer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every call fails: 4 replicas × 50 calls, each wanting 2 retries.
    for round in 0..50 {
        for replica in &replicas {
            fail(replica).await.unwrap_err();
        }
        if round % 5 == 4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut retries = 0;
    for replica in &replicas {
        retries += replica.counts().await.unwrap().retries;
        assert_eq!(
            replica.health().await.unwrap().fleet.unwrap().budget_shared,
            Some(true)
        );
    }
    // The fleet's allowance: 10 (one floor) + 10 % of 200 calls = 30; four local budgets
    // would have allowed 4 × (10 + 5) = 60. Between syncs a replica sees the others' retries
    // up to 100 ms late: a few more.
    assert!(
        (30..=40).contains(&retries),
        "fleet retries {retries} (one floor: 30; per replica: 60)"
    );
}

#[test]
fn a_services_file_configures_a_fleet_and_names_bad_fields() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.api]
        rate_limit = { rate = 100.0, burst = 10 }
        [services.api.fleet]
        expected_replicas = 4
        timeout = "20ms"
        budget = false
        "#,
    )
    .unwrap();
    let fleet = file.services["api"].fleet.as_ref().unwrap();
    assert_eq!(fleet.expected_replicas, 4);
    assert_eq!(fleet.timeout, Duration::from_millis(20));

    let err =
        ServicesFile::from_toml_str("[services.api.fleet]\nexpected_replicas = 0").unwrap_err();
    assert_eq!(err.field(), Some("services.api.fleet.expected_replicas"));
    // A quota to share needs a rate limit.
    let err = ServicesFile::from_toml_str("[services.api.fleet]\nbudget = false").unwrap_err();
    assert_eq!(err.field(), Some("services.api.fleet.quota"));
}

#[actix::test]
async fn a_fleet_without_a_store_is_refused_by_field() {
    let err = ServiceSupervisor::builder("storeless")
        .config(quota_config(2))
        .start()
        .unwrap_err();
    assert_eq!(err.field(), Some("fleet.redis"));
}
