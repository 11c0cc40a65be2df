//! The adaptive concurrency limit in the supervisor: the calls allowed in flight follow the
//! dependency's latency, are published to the handles (refused at once above it), and never
//! exceed `max_in_flight`.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use warden::limit::{AimdConfig, ConcurrencyLimitConfig};
use warden::prelude::*;

/// A queueing dependency: 10 ms while at most 10 requests are inside, then 1 ms more per
/// request beyond that (its capacity is 10 concurrent).
#[derive(Clone, Default)]
struct Queueing {
    inside: Arc<AtomicU32>,
}

impl Queueing {
    async fn serve(self) -> Result<(), DepError> {
        let n = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        let latency = Duration::from_millis(10 + u64::from(n.saturating_sub(10)));
        tokio::time::sleep(latency).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

fn aimd(max_in_flight: u32) -> SupervisorConfig {
    SupervisorConfig {
        max_in_flight,
        concurrency_limit: Some(ConcurrencyLimitConfig::Aimd(AimdConfig {
            initial_limit: 5,
            latency_threshold: Duration::from_millis(15),
            ..AimdConfig::default()
        })),
        ..plain_config()
    }
}

#[actix::test]
async fn the_limit_finds_the_dependencys_capacity_and_sheds_the_excess_at_once() {
    pause_aligned().await;
    let svc = start("queueing", aimd(256));
    let dep = Queueing::default();
    let peak = Arc::new(AtomicU32::new(0));
    // 60 callers for 5 s against a capacity of 10.
    let callers = (0..60).map(|_| {
        let svc = svc.clone();
        let dep = dep.clone();
        let peak = peak.clone();
        actix::spawn(async move {
            let end = tokio::time::Instant::now() + Duration::from_secs(5);
            let (mut ok, mut shed, mut worst) = (0u32, 0u32, Duration::ZERO);
            while tokio::time::Instant::now() < end {
                let started = tokio::time::Instant::now();
                let dep = dep.clone();
                match svc.call(move || dep.clone().serve()).await {
                    Ok(()) => {
                        ok += 1;
                        worst = worst.max(started.elapsed());
                    }
                    Err(CallError::Overloaded) => {
                        shed += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
                peak.fetch_max(svc.in_flight(), Ordering::SeqCst);
            }
            (ok, shed, worst)
        })
    });
    let results: Vec<_> = join_all(callers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ok: u32 = results.iter().map(|r| r.0).sum();
    let shed: u32 = results.iter().map(|r| r.1).sum();
    let worst = results.iter().map(|r| r.2).max().unwrap();
    // The excess was refused at once, and what was admitted stayed near the unloaded latency.
    // Without a limit all 60 would be inside, each call taking 60 ms. The limit reacts to
    // reports drained once per millisecond, so it overshoots a little while it climbs.
    let peak = peak.load(Ordering::SeqCst);
    println!("ok {ok}, shed {shed}, peak in flight {peak}, slowest success {worst:?}");
    assert!(shed > 0 && ok > 0, "ok {ok}, shed {shed}");
    assert!(peak <= 35, "peak in flight {peak}");
    assert!(
        worst <= Duration::from_millis(35),
        "slowest success {worst:?}"
    );
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.success, counts.rejected_overloaded),
        (u64::from(ok), u64::from(shed))
    );
}

#[actix::test]
async fn the_adaptive_limit_never_exceeds_max_in_flight() {
    pause_aligned().await;
    let svc = start("capped", aimd(3));
    let calls = (0..10).map(|_| {
        let svc = svc.clone();
        actix::spawn(async move { slow(&svc, Duration::from_millis(1)).await })
    });
    let answers: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let refused = answers
        .iter()
        .filter(|a| matches!(a, Err(CallError::Overloaded)))
        .count();
    assert_eq!(refused, 7, "3 of 10 admitted at once: {answers:?}");
}

#[test]
fn the_limit_is_configured_in_toml_and_validated_by_field() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.db]
        concurrency_limit = { algorithm = "gradient", min_limit = 2, max_limit = 50 }
        "#,
    )
    .unwrap();
    assert!(matches!(
        file.services["db"].concurrency_limit,
        Some(ConcurrencyLimitConfig::Gradient(_))
    ));
    let error = ServicesFile::from_toml_str(
        r#"
        [services.db]
        concurrency_limit = { algorithm = "aimd", min_limit = 10, max_limit = 5 }
        "#,
    )
    .unwrap_err();
    assert!(
        error
            .field()
            .is_some_and(|f| f.starts_with("services.db.concurrency_limit.")),
        "{error}"
    );
}
