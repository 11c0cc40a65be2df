//! Every refusal is counted once: in the caller's tally, in `CallCounts` and in the exported
//! `warden_calls_rejected_total`. One recorder per test process (this file).

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use warden::observe::{self, PrometheusHandle};
use warden::prelude::*;

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| observe::install_recorder().expect("first recorder of this process"))
}

/// The value of `name{service="…",reason="…"}`, 0 when the series is absent.
fn rejected(service: &str, reason: &str) -> f64 {
    let needle_service = format!("service=\"{service}\"");
    let needle_reason = format!("reason=\"{reason}\"");
    recorder()
        .render()
        .lines()
        .filter(|line| line.starts_with("warden_calls_rejected_total{"))
        .filter(|line| line.contains(&needle_service) && line.contains(&needle_reason))
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

/// Issue 18, item 4: a retry that meets a half-open breaker whose only probe is taken is
/// refused once, and counted once.
#[actix::test]
async fn a_retry_refused_by_a_half_open_breaker_is_counted_once() {
    recorder();
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(1);
    config.breaker.open_duration = OpenDuration {
        base: Duration::from_millis(100),
        ..OpenDuration::default()
    };
    config.retry = RetryConfig::constant(2, Duration::from_millis(200)).without_budget();
    let svc = start("half_open_retry", config);

    // The retrying call: its first attempt fails and opens the breaker (open for 100 ms); its
    // retry is due at 200 ms, after the breaker went half-open.
    let retrying = {
        let svc = svc.clone();
        actix::spawn(async move { fail(&svc).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The probe: admitted at 150 ms (half-open), it holds the only probe slot past 200 ms.
    let probe = {
        let svc = svc.clone();
        actix::spawn(async move { slow(&svc, Duration::from_millis(300)).await })
    };
    let answer = retrying.await.unwrap();
    assert!(
        matches!(answer, Err(CallError::RetryRefused { attempts: 1, .. })),
        "{answer:?}"
    );
    probe.await.unwrap().unwrap();
    settle().await;

    let counts = svc.counts().await.unwrap();
    assert_eq!(counts.failure, 1, "{counts:?}");
    assert_eq!(counts.success, 1, "{counts:?}");
    assert_eq!(counts.retries, 1, "{counts:?}");
    assert_eq!(rejected("half_open_retry", "open"), 1.0);
}

/// A first attempt refused by a half-open breaker with its probe taken: one rejected call,
/// one `rejected{reason="open"}`.
#[actix::test]
async fn a_call_refused_by_a_half_open_breaker_is_counted_once() {
    recorder();
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(1);
    config.breaker.open_duration = OpenDuration {
        base: Duration::from_millis(100),
        ..OpenDuration::default()
    };
    let svc = start("half_open_call", config);

    assert!(fail(&svc).await.is_err());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let probe = {
        let svc = svc.clone();
        actix::spawn(async move { slow(&svc, Duration::from_millis(300)).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let refused = succeed(&svc).await;
    assert!(
        matches!(refused, Err(CallError::Open { .. })),
        "{refused:?}"
    );
    probe.await.unwrap().unwrap();
    settle().await;

    let counts = svc.counts().await.unwrap();
    assert_eq!(counts.rejected_open, 1, "{counts:?}");
    assert_eq!(rejected("half_open_call", "open"), 1.0);
}
