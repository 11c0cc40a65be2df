//! The health window through a supervisor: Healthy → Degraded → Unhealthy → Healthy, latency
//! quantiles, and an open breaker meaning Unhealthy.

use crate::common;

use std::time::Duration;

use common::*;
use warden::prelude::*;

fn health_config() -> SupervisorConfig {
    let mut config = plain_config();
    config.health = HealthConfig {
        window_size: 20,
        max_age: None,
        minimum_calls: 10,
        degraded_success_rate: 0.95,
        unhealthy_success_rate: 0.5,
        degraded_latency: Some(Duration::from_millis(200)),
        unhealthy_latency: Some(Duration::from_secs(1)),
    };
    config
}

#[actix::test]
async fn status_moves_healthy_degraded_unhealthy_healthy() {
    pause_aligned().await;
    let svc = start("svc", health_config());
    for _ in 0..20 {
        succeed(&svc).await.unwrap();
    }
    assert_eq!(svc.health().await.unwrap().status, HealthStatus::Healthy);
    for _ in 0..2 {
        fail(&svc).await.unwrap_err();
    }
    // 18 of 20 = 90 %: degraded.
    let snapshot = svc.health().await.unwrap();
    assert_eq!(snapshot.status, HealthStatus::Degraded);
    assert_eq!(snapshot.stats.success_rate, Some(0.9));
    for _ in 0..10 {
        fail(&svc).await.unwrap_err();
    }
    // 8 of 20 = 40 %: unhealthy.
    assert_eq!(svc.health().await.unwrap().status, HealthStatus::Unhealthy);
    for _ in 0..20 {
        succeed(&svc).await.unwrap();
    }
    assert_eq!(svc.health().await.unwrap().status, HealthStatus::Healthy);
}

#[actix::test]
async fn latency_quantiles_and_slow_dependency_degrades() {
    pause_aligned().await;
    let svc = start("svc", health_config());
    for i in 1..=20u64 {
        slow(&svc, Duration::from_millis(i * 10)).await.unwrap();
    }
    let snapshot = svc.health().await.unwrap();
    assert_about(snapshot.stats.p50.unwrap(), Duration::from_millis(100));
    assert_about(snapshot.stats.p95.unwrap(), Duration::from_millis(190));
    assert_about(snapshot.stats.p99.unwrap(), Duration::from_millis(200));
    assert_eq!(snapshot.status, HealthStatus::Healthy);
    for _ in 0..5 {
        slow(&svc, Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(svc.health().await.unwrap().status, HealthStatus::Degraded);
}

#[actix::test]
async fn open_breaker_means_unhealthy_and_snapshot_serializes() {
    pause_aligned().await;
    let mut config = health_config();
    config.breaker.consecutive_failures = Some(1);
    let svc = start("svc", config);
    fail(&svc).await.unwrap_err();
    let snapshot = svc.health().await.unwrap();
    assert_eq!(snapshot.status, HealthStatus::Unhealthy);
    assert_eq!(snapshot.breaker, BreakerState::Open);
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["status"], "unhealthy");
    assert_eq!(json["service"], "svc");
    assert_eq!(json["calls"], 1);
}

#[actix::test]
async fn recovery_reads_unhealthy_then_degraded_while_half_open_then_healthy() {
    pause_aligned().await;
    let mut config = health_config();
    config.breaker.consecutive_failures = Some(1);
    let svc = start("svc", config);
    fail(&svc).await.unwrap_err();
    assert_eq!(svc.health().await.unwrap().status, HealthStatus::Unhealthy);
    // The open period ends: recovery is being tested, not confirmed.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let snapshot = svc.health().await.unwrap();
    assert_eq!(snapshot.breaker, BreakerState::HalfOpen);
    assert_eq!(snapshot.status, HealthStatus::Degraded);
    // The probe succeeds and closes the breaker.
    succeed(&svc).await.unwrap();
    assert_eq!(svc.health().await.unwrap().status, HealthStatus::Healthy);
}
