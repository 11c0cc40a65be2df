//! The retry budget stops a retry storm: during an outage, attempts stay close to calls.

use crate::common;

use std::time::Duration;

use common::*;
use warden::prelude::*;

#[actix::test]
async fn budget_caps_retries_during_an_outage() {
    pause_aligned().await;
    let mut config = plain_config();
    config.retry = RetryConfig::constant(3, Duration::from_millis(1)).budget(BudgetConfig {
        enabled: true,
        ratio: 0.2,
        min_per_second: 1,
        window: Duration::from_secs(10),
    });
    let svc = start("svc", config);
    let hits = Hits::default();
    let mut budget_stops = 0u64;
    // 100 calls within one second, all failing.
    for _ in 0..100 {
        let h = hits.clone();
        let result = svc
            .call(move || {
                h.hit();
                async { Err::<(), _>(DepError("down")) }
            })
            .await;
        if matches!(result, Err(CallError::BudgetExhausted { .. })) {
            budget_stops += 1;
        }
    }
    // Allowed retries: floor(1/s × 10 s + 20 % × 100 calls) = 30, not 200.
    assert_eq!(hits.get(), 130);
    let counts = svc.counts().await.unwrap();
    assert_eq!(counts.retries, 30);
    assert!(budget_stops >= 85, "{budget_stops}");
    assert_eq!(counts.rejected_budget, budget_stops);
}

#[actix::test]
async fn without_budget_every_call_is_retried_fully() {
    pause_aligned().await;
    let mut config = plain_config();
    config.retry = RetryConfig::constant(3, Duration::from_millis(1))
        .budget(warden::retry::BudgetConfig::off());
    let svc = start("svc", config);
    let hits = Hits::default();
    for _ in 0..100 {
        let h = hits.clone();
        svc.call(move || {
            h.hit();
            async { Err::<(), _>(DepError("down")) }
        })
        .await
        .unwrap_err();
    }
    assert_eq!(hits.get(), 300);
}
