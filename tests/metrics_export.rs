//! The Prometheus exporter's output after scripted scenarios: exact counters, the current state
//! series, histogram counts, bounded label sets. One recorder per test process (this file).

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use warden::observe::{self, PrometheusHandle};
use warden::prelude::*;

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| observe::install_recorder().expect("first recorder of this process"))
}

/// Every sample line of `service`: `name{labels}` (labels sorted, without `service`) → value.
fn samples(service: &str) -> BTreeMap<String, f64> {
    let text = recorder().render();
    let needle = format!("service=\"{service}\"");
    text.lines()
        .filter(|line| !line.starts_with('#') && line.contains(&needle))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            let (name, labels) = series.split_once('{').expect("labelled");
            let mut labels: Vec<&str> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.starts_with("service="))
                .collect();
            labels.sort();
            (
                format!("{name}{{{}}}", labels.join(",")),
                value.parse().expect("number"),
            )
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no series {key} in {samples:#?}"))
}

#[actix::test]
async fn counters_state_series_and_histogram_after_a_scripted_scenario() {
    recorder();
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(3);
    config.retry = RetryConfig::constant(2, Duration::from_millis(10))
        .budget(warden::retry::BudgetConfig::off());
    config.timeout = Some(Duration::from_millis(100));
    let svc = start("scripted", config);

    // 2 successes (one after a retry), then 3 calls timing out on both attempts → open.
    succeed(&svc).await.unwrap();
    let hits = Hits::default();
    let h = hits.clone();
    svc.call(move || {
        let n = h.hit();
        async move {
            if n == 1 {
                Err(DepError("flaky"))
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap();
    // Call 3 times out on both attempts; call 4's first timeout is the third consecutive
    // failure: the breaker opens and its retry is refused (answered `RetryRefused` and counted
    // as the timeout it was); call 5 fails fast on the handle.
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(slow(&svc, Duration::from_secs(1)).await);
    }
    assert!(matches!(
        answers[0],
        Err(CallError::TimedOut { attempts: 2 })
    ));
    assert!(
        matches!(
            answers[1],
            Err(CallError::RetryRefused {
                last: None,
                attempts: 1,
                ..
            })
        ),
        "{answers:?}"
    );
    assert!(matches!(answers[2], Err(CallError::Open { .. })));
    // Two more fast-fails on the handle.
    for _ in 0..2 {
        assert!(matches!(succeed(&svc).await, Err(CallError::Open { .. })));
    }
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.success, counts.timeout, counts.rejected_open),
        (2, 2, 3)
    );
    settle().await;

    let s = samples("scripted");
    assert_eq!(value(&s, "warden_calls_total{outcome=\"success\"}"), 2.0);
    assert_eq!(value(&s, "warden_calls_total{outcome=\"timeout\"}"), 2.0);
    assert_eq!(value(&s, "warden_calls_total{outcome=\"rejected\"}"), 3.0);
    assert_eq!(value(&s, "warden_calls_total{outcome=\"failure\"}"), 0.0);
    assert_eq!(
        value(&s, "warden_retry_attempts_total{reason=\"error\"}"),
        1.0
    );
    assert_eq!(
        value(&s, "warden_retry_attempts_total{reason=\"timeout\"}"),
        1.0
    );
    assert_eq!(value(&s, "warden_timeouts_total{}"), 3.0);
    assert_eq!(
        value(&s, "warden_calls_rejected_total{reason=\"open\"}"),
        4.0
    );
    assert_eq!(value(&s, "warden_circuit_state{state=\"open\"}"), 1.0);
    assert_eq!(value(&s, "warden_circuit_state{state=\"closed\"}"), 0.0);
    assert_eq!(value(&s, "warden_circuit_state{state=\"half_open\"}"), 0.0);
    assert_eq!(
        value(
            &s,
            "warden_circuit_transitions_total{from=\"closed\",to=\"open\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&s, "warden_service_health{status=\"unhealthy\"}"),
        1.0
    );
    assert_eq!(value(&s, "warden_service_health{status=\"healthy\"}"), 0.0);
    assert_eq!(value(&s, "warden_calls_in_flight{}"), 0.0);
    // Histogram: every answered call counted, with real buckets.
    assert_eq!(
        value(
            &s,
            "warden_call_duration_seconds_count{outcome=\"success\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "warden_call_duration_seconds_count{outcome=\"timeout\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "warden_call_duration_seconds_bucket{le=\"0.001\",outcome=\"success\"}"
        ),
        1.0,
        "the first success took no time; the retried one took 10 ms"
    );
    assert_eq!(
        value(
            &s,
            "warden_call_duration_seconds_bucket{le=\"0.025\",outcome=\"success\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "warden_call_duration_seconds_bucket{le=\"0.05\",outcome=\"timeout\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &s,
            "warden_call_duration_seconds_bucket{le=\"0.25\",outcome=\"timeout\"}"
        ),
        2.0,
        "two 100 ms attempts and a 10 ms delay; one 100 ms attempt whose retry was refused"
    );

    // Half-open then closed after the open duration: the state series follow.
    tokio::time::sleep(Duration::from_secs(30)).await;
    succeed(&svc).await.unwrap();
    svc.counts().await.unwrap();
    let s = samples("scripted");
    assert_eq!(value(&s, "warden_circuit_state{state=\"closed\"}"), 1.0);
    assert_eq!(value(&s, "warden_circuit_state{state=\"open\"}"), 0.0);
    assert_eq!(
        value(
            &s,
            "warden_circuit_transitions_total{from=\"half_open\",to=\"closed\"}"
        ),
        1.0
    );
}

#[actix::test]
async fn ten_thousand_distinct_error_messages_create_no_new_series() {
    recorder();
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(1_000_000);
    let svc = start("cardinality", config);
    fail(&svc).await.unwrap_err();
    svc.counts().await.unwrap();
    let before = samples("cardinality").len();
    for i in 0..10_000u32 {
        let message = format!("error number {i} at /users/{i}");
        let result = svc
            .call(move || {
                let message = message.clone();
                async move { Err::<(), String>(message) }
            })
            .await;
        assert!(result.is_err());
    }
    svc.counts().await.unwrap();
    let after = samples("cardinality");
    assert_eq!(after.len(), before, "no per-error series: {after:#?}");
    assert_eq!(
        value(&after, "warden_calls_total{outcome=\"failure\"}"),
        10_001.0
    );
    let text = recorder().render();
    assert!(
        !text.contains("error number"),
        "error text never becomes a label"
    );
}

#[actix::test]
async fn every_family_has_help_and_type() {
    recorder();
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(1);
    let svc = start("described", config.clone());
    fail(&svc).await.unwrap_err();
    svc.counts().await.unwrap();
    // The keyed families exist once a keyed service does.
    let registry = RegistryHandle::start().unwrap();
    config.keyed = Some(KeyedConfig::default());
    let keyed = registry
        .spawn_keyed("described-keyed", config)
        .await
        .unwrap();
    let _ = keyed.call("k", || async { Ok::<(), DepError>(()) }).await;
    // The fleet families exist once a fleet service does.
    let mut fleet = plain_config();
    fleet.rate_limit = Some(RateLimitConfig::per_second(10.0));
    fleet.fleet = Some(FleetConfig::default().budget(false));
    let store = std::sync::Arc::new(warden::fleet::MemoryStore::new());
    let _replica = ServiceSupervisor::builder("described-fleet")
        .config(fleet)
        .fleet_store(store)
        .start()
        .unwrap();
    // Per-key families are rendered by warden beside the recorder's output.
    let text = recorder().render() + &warden::actors::render_key_series(&[keyed]);
    for (name, _) in observe::METRIC_FAMILIES {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} lacks # HELP"
        );
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} lacks # TYPE"
        );
    }
    assert!(text.contains("# TYPE warden_call_duration_seconds histogram"));
}

// Issue 18, item 4: every refusal is counted once — in the caller's tally, in `CallCounts`
// and in `warden_calls_rejected_total`.

/// The value of `name{service="…",reason="…"}`, 0 when the series is absent.
fn rejected_total(service: &str, reason: &str) -> f64 {
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
    config.retry = RetryConfig::constant(2, Duration::from_millis(200))
        .budget(warden::retry::BudgetConfig::off());
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
    assert_eq!(rejected_total("half_open_retry", "open"), 1.0);
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
    assert_eq!(rejected_total("half_open_call", "open"), 1.0);
}

/// The value of `warden_would_reject_total{service="…",reason="…"}`, 0 when absent.
fn would_reject_total(service: &str, reason: &str) -> f64 {
    samples(service)
        .get(&format!("warden_would_reject_total{{reason=\"{reason}\"}}"))
        .copied()
        .unwrap_or(0.0)
}

/// Issue 20, item 3: while the breaker only observes, a call and a retry that meet a half-open
/// breaker with its only probe taken both run, each counted once as a would-be refusal — in
/// `CallCounts`, in `warden_would_reject_total` — and never as a refusal.
#[actix::test]
async fn an_observed_half_open_breaker_counts_each_would_be_refusal_once() {
    recorder();
    pause_aligned().await;
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(1);
    config.breaker.mode = PolicyMode::Observe;
    config.breaker.open_duration = OpenDuration {
        base: Duration::from_millis(100),
        ..OpenDuration::default()
    };
    config.retry = RetryConfig::constant(2, Duration::from_millis(200))
        .budget(warden::retry::BudgetConfig::off());
    let svc = start("observed_half_open", config);

    // Fails twice (the retry too, at 200 ms: the half-open breaker's probe is taken then).
    let retrying = {
        let svc = svc.clone();
        actix::spawn(async move { fail(&svc).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let probe = {
        let svc = svc.clone();
        actix::spawn(async move { slow(&svc, Duration::from_millis(300)).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    // A new call while the probe is out: would have been refused, runs.
    succeed(&svc).await.unwrap();
    let answer = retrying.await.unwrap();
    assert!(
        matches!(answer, Err(CallError::RetriesExhausted { attempts: 2, .. })),
        "{answer:?}"
    );
    probe.await.unwrap().unwrap();
    settle().await;

    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.would_reject_open, counts.rejected_open),
        (2, 0),
        "{counts:?}"
    );
    assert_eq!((counts.failure, counts.success), (1, 2), "{counts:?}");
    assert_eq!(would_reject_total("observed_half_open", "open"), 2.0);
    assert_eq!(rejected_total("observed_half_open", "open"), 0.0);
    // The probe alone decided: it succeeded, the breaker closed; the shadow retry's failure
    // was not recorded into it.
    assert_eq!(
        svc.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
}
