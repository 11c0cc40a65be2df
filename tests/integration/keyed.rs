//! Keyed services: one supervisor per key behind one name, with bounded keys, idle eviction, a
//! cap on open keys, and bounded per-key metric series.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use warden::actors::render_key_series;
use warden::prelude::*;

fn keyed_config(keyed: KeyedConfig) -> SupervisorConfig {
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(3);
    config.keyed = Some(keyed);
    config
}

async fn call(hosts: &KeyedHandle, key: &str, ok: bool) -> Result<(), CallError<DepError>> {
    hosts
        .call(key, move || async move {
            if ok {
                Ok(())
            } else {
                Err(DepError("down"))
            }
        })
        .await
}

/// Lets every key's supervisor record what its calls handed over.
async fn drain_all(hosts: &KeyedHandle, keys: &[String]) {
    for key in keys {
        if let Some(handle) = hosts.key(key) {
            handle.counts().await.unwrap();
        }
    }
}

#[actix::test]
async fn one_bad_key_out_of_ten_trips_only_its_own_breaker() {
    pause_aligned().await;
    let registry = RegistryHandle::start().unwrap();
    let hosts = registry
        .spawn_keyed("hosts", keyed_config(KeyedConfig::default()))
        .await
        .unwrap();
    let keys: Vec<String> = (0..10).map(|i| format!("host-{i}")).collect();
    for round in 0..5 {
        for key in &keys {
            let result = call(&hosts, key, key != "host-3").await;
            if key != "host-3" {
                assert!(result.is_ok(), "{key} round {round}: {result:?}");
            }
        }
        drain_all(&hosts, &keys).await;
    }
    assert_eq!(hosts.key_count(), 10);
    assert_eq!(hosts.open_keys(), 1);
    assert!(hosts.key("host-3").unwrap().is_open());
    for key in keys.iter().filter(|k| *k != "host-3") {
        assert!(!hosts.key(key).unwrap().is_open(), "{key} stays closed");
    }
    // The bad key is refused at once; the others still run.
    assert!(matches!(
        call(&hosts, "host-3", true).await,
        Err(CallError::Open { .. })
    ));
    assert!(call(&hosts, "host-4", true).await.is_ok());
    let snapshot = hosts.snapshot(3);
    assert_eq!((snapshot.keys, snapshot.open_keys), (10, 1));
    assert_eq!(snapshot.top[0].key, "host-3", "the open key first");
    assert_eq!(snapshot.top[0].state, BreakerState::Open);
}

#[actix::test]
async fn keys_beyond_the_cap_share_the_overflow_and_idle_keys_are_dropped() {
    pause_aligned().await;
    let registry = RegistryHandle::start().unwrap();
    let bounds = KeyedConfig::default()
        .max_keys(3)
        .idle_after(Duration::from_secs(10));
    let hosts = registry
        .spawn_keyed("capped", keyed_config(bounds))
        .await
        .unwrap();
    for key in ["a", "b", "c", "d", "e"] {
        call(&hosts, key, true).await.unwrap();
    }
    assert_eq!(hosts.key_count(), 3, "d and e ran under the overflow");
    assert!(hosts.key("d").is_none());
    hosts.overflow().counts().await.unwrap();
    assert_eq!(hosts.overflow().counts().await.unwrap().success, 2);

    // Keep `a` busy; the others go idle. The registry's timer drops them.
    tokio::time::sleep(Duration::from_secs(5)).await;
    call(&hosts, "a", true).await.unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    settle().await;
    assert_eq!(hosts.key_count(), 1, "b and c idle for 12 s, a for 7 s");
    assert!(hosts.key("a").is_some());
    // A dropped key starts afresh on its next call, in a free slot.
    call(&hosts, "b", true).await.unwrap();
    let b = hosts.key("b").expect("b is back");
    assert_eq!(b.counts().await.unwrap().success, 1, "a new supervisor");
}

#[actix::test]
async fn a_full_table_drops_its_idle_keys_before_sending_a_new_key_to_the_overflow() {
    pause_aligned().await;
    let registry = RegistryHandle::start().unwrap();
    // A sweep timer far away: only the call path can make room.
    let bounds = KeyedConfig::default()
        .max_keys(2)
        .idle_after(Duration::from_secs(3600));
    let hosts = registry
        .spawn_keyed("full", keyed_config(bounds))
        .await
        .unwrap();
    call(&hosts, "a", true).await.unwrap();
    call(&hosts, "b", true).await.unwrap();
    tokio::time::advance(Duration::from_secs(3599)).await;
    call(&hosts, "c", true).await.unwrap();
    assert!(hosts.key("c").is_none(), "nobody idle yet: overflow");
    tokio::time::advance(Duration::from_secs(2)).await;
    call(&hosts, "c", true).await.unwrap();
    assert!(hosts.key("c").is_some(), "a and b idle: c got a slot");
    assert_eq!(hosts.key_count(), 1);
}

#[actix::test]
async fn eviction_under_concurrent_calls_loses_no_call() {
    pause_aligned().await;
    let registry = RegistryHandle::start().unwrap();
    let bounds = KeyedConfig::default()
        .max_keys(8)
        .idle_after(Duration::from_millis(5));
    let hosts = registry
        .spawn_keyed("churn", keyed_config(bounds))
        .await
        .unwrap();
    let answered = Arc::new(AtomicU32::new(0));
    let mut calls = Vec::new();
    for i in 0..400_u32 {
        let hosts = hosts.clone();
        let answered = Arc::clone(&answered);
        calls.push(actix::spawn(async move {
            // Staggered starts and lengths across 16 keys: keys go idle and are dropped while
            // other calls of theirs start and run.
            tokio::time::sleep(Duration::from_millis(u64::from(i % 37))).await;
            let key = format!("k{}", i % 16);
            let result = hosts
                .call(&key, move || async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(i % 11))).await;
                    Ok::<u32, DepError>(i)
                })
                .await;
            assert_eq!(result.unwrap(), i, "call {i} on {key}");
            answered.fetch_add(1, Ordering::SeqCst);
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(answered.load(Ordering::SeqCst), 400);
    tokio::time::sleep(Duration::from_millis(50)).await;
    settle().await;
    assert_eq!(hosts.key_count(), 0, "every key idle and dropped");
}

#[actix::test]
async fn no_more_than_the_open_share_of_keys_open_at_once() {
    pause_aligned().await;
    let registry = RegistryHandle::start().unwrap();
    let bounds = KeyedConfig::default().max_open_share(0.3);
    let hosts = registry
        .spawn_keyed("ejecting", keyed_config(bounds))
        .await
        .unwrap();
    let keys: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    // Every key fails: without the cap all ten would open.
    for _ in 0..6 {
        for key in &keys {
            let _ = call(&hosts, key, false).await;
            drain_all(&hosts, std::slice::from_ref(key)).await;
        }
    }
    assert_eq!(hosts.open_keys(), 3, "30 % of 10");
    let open = keys
        .iter()
        .filter(|key| hosts.key(key).unwrap().is_open())
        .count();
    assert_eq!(open, 3);
}

#[actix::test]
async fn per_key_series_are_bounded_and_disappear_with_their_key() {
    pause_aligned().await;
    let registry = RegistryHandle::start().unwrap();
    let bounds = KeyedConfig::default()
        .labeled_keys(2)
        .idle_after(Duration::from_secs(1));
    let hosts = registry
        .spawn_keyed("series", keyed_config(bounds))
        .await
        .unwrap();
    for key in ["a", "b", "c", "d"] {
        call(&hosts, key, true).await.unwrap();
    }
    call(&hosts, "c", false).await.unwrap_err();
    let text = render_key_series(std::slice::from_ref(&hosts));
    let series = |text: &str| {
        text.lines()
            .filter(|line| line.starts_with("warden_key_calls_total{"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let calls = series(&text);
    // Two labeled keys and `_other`, three outcomes each.
    assert_eq!(calls.len(), 9, "{text}");
    assert!(text
        .contains(r#"warden_key_calls_total{service="series",key="_other",outcome="success"} 2"#));
    assert!(text
        .contains(r#"warden_key_calls_total{service="series",key="_other",outcome="failure"} 1"#));
    assert!(text.contains("# TYPE warden_key_calls_total counter"));
    assert!(text.contains(r#"warden_key_open{service="series",key="a"} 0"#));

    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(hosts.key_count(), 0);
    let text = render_key_series(std::slice::from_ref(&hosts));
    let calls = series(&text);
    assert_eq!(calls.len(), 3, "only `_other` is left: {text}");
    assert!(!text.contains(r#"key="a""#));
    // `_other` keeps what the dropped unlabeled keys counted: it never goes down.
    assert!(text
        .contains(r#"warden_key_calls_total{service="series",key="_other",outcome="success"} 2"#));
}

#[actix::test]
async fn a_services_file_spawns_a_keyed_service_and_names_bad_bounds() {
    pause_aligned().await;
    let file = ServicesFile::from_toml_str(
        r#"
        [services.hosts]
        timeout = "1s"
        [services.hosts.keyed]
        max_keys = 100
        idle_after = "1m"
        max_open_share = 0.25
        labeled_keys = 10
        [services.db]
        timeout = "1s"
        "#,
    )
    .unwrap();
    let registry = RegistryHandle::start().unwrap();
    let plain = registry.spawn_all(file).await.unwrap();
    assert_eq!(plain.len(), 1, "db is plain");
    let hosts = registry.get_keyed("hosts").await.unwrap().expect("keyed");
    assert_eq!(hosts.snapshot(0).max_keys, 100);
    assert_eq!(registry.keyed_all().await.unwrap().len(), 1);
    // One name, one service.
    let taken = registry.spawn("hosts", SupervisorConfig::default()).await;
    assert!(taken.is_err(), "{taken:?}");

    let err = ServicesFile::from_toml_str("[services.h.keyed]\nmax_open_share = 2.0").unwrap_err();
    assert_eq!(err.field(), Some("services.h.keyed.max_open_share"));
    // Removed: every key's supervisor stops.
    call(&hosts, "x", true).await.unwrap();
    let x = hosts.key("x").unwrap();
    assert!(registry.remove("hosts").await.unwrap());
    x.stopped().await;
    assert!(registry.get_keyed("hosts").await.unwrap().is_none());
}

#[actix::test]
async fn a_reload_reconfigures_every_live_key_and_the_keys_to_come() {
    pause_aligned().await;
    let registry = RegistryHandle::start().unwrap();
    let text = |max_in_flight: u32| {
        format!(
            "[services.hosts]\nmax_in_flight = {max_in_flight}\n[services.hosts.keyed]\nmax_keys = 10\n"
        )
    };
    registry
        .spawn_all(ServicesFile::from_toml_str(&text(8)).unwrap())
        .await
        .unwrap();
    let hosts = registry.get_keyed("hosts").await.unwrap().unwrap();
    call(&hosts, "a", true).await.unwrap();
    assert_eq!(hosts.key("a").unwrap().limit(), 8);
    let same = registry
        .reload(ServicesFile::from_toml_str(&text(8)).unwrap())
        .await
        .unwrap();
    assert_eq!(same.unchanged, ["hosts"]);
    let report = registry
        .reload(ServicesFile::from_toml_str(&text(4)).unwrap())
        .await
        .unwrap();
    assert_eq!(report.changed, ["hosts"]);
    assert_eq!(hosts.key("a").unwrap().limit(), 4, "a live key");
    call(&hosts, "b", true).await.unwrap();
    assert_eq!(hosts.key("b").unwrap().limit(), 4, "a key started after");
    assert_eq!(hosts.overflow().limit(), 4, "the overflow");
}
