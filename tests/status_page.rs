//! The status page (`warden::status`): every service appears with its state,
//! transitions carry their reason, history and transitions are bounded, services come and go,
//! readiness follows the critical services, and neither the JSON nor the HTML ever carries an
//! operation's error text — checked on the collector directly (paused clock) and over real
//! sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use warden::actors::RegistryHandle;
use warden::breaker::TransitionReason;
use warden::prelude::*;
use warden::status::{self, render_html, StatusConfig, StatusPage};

/// What the failing dependency's errors carry: must never reach the page.
const MARKER: &str = "SECRET-TOKEN-123";

fn payments_config() -> SupervisorConfig {
    let mut config = plain_config();
    config.breaker.consecutive_failures = Some(3);
    config.breaker.open_duration = OpenDuration::fixed(Duration::from_secs(60));
    config.health.minimum_calls = 1;
    config
}

/// A registry with `payments` (fails with the marker until its breaker opens) and `search`
/// (healthy), and a page sampled on demand only.
async fn setup(config: StatusConfig) -> (RegistryHandle, StatusPage) {
    let registry = warden::RegistryHandle::start().unwrap();
    let page = StatusPage::start(registry.clone(), config.sample_every(None))
        .await
        .unwrap();
    let payments = registry.spawn("payments", payments_config()).await.unwrap();
    let search = registry.spawn("search", plain_config()).await.unwrap();
    for _ in 0..3 {
        payments
            .call(|| async { Err::<(), _>(DepError("SECRET-TOKEN-123 password=hunter2")) })
            .await
            .unwrap_err();
    }
    for _ in 0..5 {
        succeed(&search).await.unwrap();
    }
    payments.counts().await.unwrap();
    search.counts().await.unwrap();
    settle().await;
    page.sample_now().await.unwrap();
    (registry, page)
}

#[actix::test]
async fn every_service_appears_with_its_state() {
    let (_registry, page) = setup(StatusConfig::default()).await;
    let view = page.view().await.unwrap();
    let states: Vec<_> = view
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.breaker, s.health))
        .collect();
    assert_eq!(
        states,
        [
            ("payments", BreakerState::Open, HealthStatus::Unhealthy),
            ("search", BreakerState::Closed, HealthStatus::Healthy),
        ]
    );
    let search = &view.services[1];
    assert_eq!(search.success_rate, Some(1.0));
    assert_eq!(search.totals.success, 5);
    assert_eq!(search.limit, 256);
    assert!(page.view().await.unwrap().services[0]
        .retry_after_ms
        .is_some());

    let html = render_html(&view);
    assert!(html.contains(r#"data-service="payments" data-breaker="open" data-health="unhealthy""#));
    assert!(html.contains(r#"data-service="search" data-breaker="closed" data-health="healthy""#));
    assert!(html.contains("<table id=\"services\">"));
    for external in ["src=", "<link", "href=\"http", "url(", "@import"] {
        assert!(!html.contains(external), "no external asset: {external}");
    }
}

#[actix::test]
async fn a_service_that_observes_shows_what_it_would_have_refused() {
    let registry = warden::RegistryHandle::start().unwrap();
    let page = StatusPage::start(registry.clone(), StatusConfig::default().sample_every(None))
        .await
        .unwrap();
    let mut config = payments_config();
    config.breaker.mode = PolicyMode::Observe;
    config.concurrency_limit = Some(ConcurrencyLimitConfig::default().observe());
    let dark = registry.spawn("dark", config).await.unwrap();
    for _ in 0..3 {
        fail(&dark).await.unwrap_err();
    }
    // Open, and observing: these run, counted as would-be refusals.
    for _ in 0..2 {
        succeed(&dark).await.unwrap();
    }
    dark.counts().await.unwrap();
    let view = page.view().await.unwrap();
    let service = &view.services[0];
    assert_eq!(service.breaker, BreakerState::Open);
    assert_eq!(service.observing, ["breaker", "concurrency_limit"]);
    assert_eq!(service.observed_limit, Some(20));
    assert_eq!(service.limit, 256);
    assert_eq!(service.totals.would_reject_open, 2);
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["services"][0]["totals"]["would_reject_open"], 2);
    assert_eq!(json["services"][0]["observing"][0], "breaker");
    let html = render_html(&view);
    assert!(
        html.contains("observe: breaker, concurrency limit"),
        "{html}"
    );
    assert!(html.contains("would have refused 2 (2 open)"), "{html}");
    assert!(html.contains("limit 20 observed"), "{html}");

    // A service that enforces everything says nothing of it.
    registry.spawn("lit", plain_config()).await.unwrap();
    let view = page.view().await.unwrap();
    let lit = view.services.iter().find(|s| s.name == "lit").unwrap();
    assert!(lit.observing.is_empty() && lit.observed_limit.is_none());
    let json = serde_json::to_value(lit).unwrap();
    assert!(json.get("observing").is_none() && json.get("observed_limit").is_none());
}

#[actix::test]
async fn transitions_carry_their_reason_and_window() {
    let (_registry, page) = setup(StatusConfig::default()).await;
    let view = page.view().await.unwrap();
    let payments = &view.services[0];
    let last = payments.transitions.first().expect("a transition");
    assert_eq!(
        (last.from, last.to, last.reason),
        (
            BreakerState::Closed,
            BreakerState::Open,
            TransitionReason::ConsecutiveFailures
        )
    );
    assert_eq!(last.window.consecutive_failures, 3);
    assert_eq!(last.open_for_ms, Some(60_000));
    assert_eq!(last.summary, "3 consecutive failures; open for 1m");
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(
        json["services"][0]["transitions"][0]["reason"],
        "consecutive_failures"
    );
    assert!(render_html(&view).contains("3 consecutive failures; open for 1m"));
    assert!(view.services[1].transitions.is_empty());
}

#[actix::test]
async fn json_and_html_never_carry_error_text() {
    let (_registry, page) = setup(StatusConfig::default()).await;
    let view = page.view().await.unwrap();
    let json = serde_json::to_string(&view).unwrap();
    assert!(
        !json.contains(MARKER) && !json.contains("hunter2"),
        "{json}"
    );
    let html = render_html(&view);
    assert!(!html.contains(MARKER) && !html.contains("hunter2"));
    let health = serde_json::to_string(&page.readiness().await.unwrap()).unwrap();
    assert!(!health.contains(MARKER));
}

#[actix::test]
async fn history_and_transitions_are_bounded() {
    let (registry, page) = setup(StatusConfig::default().history(5).transitions(2)).await;
    for _ in 0..20 {
        page.sample_now().await.unwrap();
    }
    let search = registry.get("search").await.unwrap().unwrap();
    for _ in 0..5 {
        search.force_open().await.unwrap();
        search.reset().await.unwrap();
    }
    settle().await;
    let view = page.view().await.unwrap();
    for service in &view.services {
        assert_eq!(service.history.len(), 5, "{}", service.name);
        assert!(service.transitions.len() <= 2, "{}", service.name);
    }
    let search = &view.services[1];
    assert_eq!(search.transitions.len(), 2);
    assert_eq!(search.transitions[0].reason, TransitionReason::Reset);
    assert_eq!(search.transitions[1].reason, TransitionReason::ForcedOpen);
}

#[actix::test]
async fn calls_per_second_come_from_the_counts_between_samples() {
    pause_aligned().await;
    let (registry, page) = setup(StatusConfig::default()).await;
    let search = registry.get("search").await.unwrap().unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    page.sample_now().await.unwrap();
    assert_eq!(
        page.view().await.unwrap().services[1].calls_per_sec,
        Some(0.0)
    );
    for _ in 0..20 {
        succeed(&search).await.unwrap();
    }
    search.counts().await.unwrap();
    settle().await;
    tokio::time::advance(Duration::from_secs(5)).await;
    page.sample_now().await.unwrap();
    let view = page.view().await.unwrap();
    assert_eq!(view.services[1].calls_per_sec, Some(4.0));
    assert_eq!(view.services[1].history.len(), 3);
}

#[actix::test]
async fn services_added_later_appear_and_removed_ones_disappear() {
    let (registry, page) = setup(StatusConfig::default()).await;
    registry.spawn("cache", plain_config()).await.unwrap();
    let names = |view: warden::status::StatusView| {
        view.services
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(page.view().await.unwrap()),
        ["cache", "payments", "search"]
    );
    assert!(registry.remove("payments").await.unwrap());
    page.sample_now().await.unwrap();
    assert_eq!(names(page.view().await.unwrap()), ["cache", "search"]);
}

#[actix::test]
async fn readiness_follows_the_critical_services() {
    let (registry, page) = setup(StatusConfig::default()).await;
    let all = page.readiness().await.unwrap();
    assert!(
        !all.ready,
        "payments is unhealthy and every service is critical"
    );

    let only_search = StatusPage::start(
        registry.clone(),
        StatusConfig::default()
            .sample_every(None)
            .critical(["search"]),
    )
    .await
    .unwrap();
    let readiness = only_search.readiness().await.unwrap();
    assert!(readiness.ready);
    assert!(readiness
        .services
        .iter()
        .any(|s| s.health.service == "payments" && !s.critical));

    let missing = StatusPage::start(
        registry,
        StatusConfig::default()
            .sample_every(None)
            .critical(["search", "ledger"]),
    )
    .await
    .unwrap();
    let readiness = missing.readiness().await.unwrap();
    assert!(!readiness.ready);
    assert_eq!(readiness.missing, ["ledger"]);
}

/// Serves `router` on an ephemeral loopback port.
async fn serve_router(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

#[actix::test]
async fn routes_over_http_are_read_only_and_carry_no_error_text() {
    let (registry, page) = setup(StatusConfig::default()).await;
    let addr = serve_router(status::router(page)).await;

    let (code, kind, html) = get(addr, "/status").await;
    assert_eq!((code, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert!(html.contains("data-breaker=\"open\"") && !html.contains(MARKER));

    let (code, kind, json) = get(addr, "/status.json").await;
    assert_eq!((code, kind.as_str()), (200, "application/json"));
    assert!(!json.contains(MARKER));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["services"][0]["breaker"], "open");
    assert_eq!(json["services"][1]["breaker"], "closed");

    let (code, _, health) = get(addr, "/health").await;
    assert_eq!(code, 503, "{health}");
    assert!(!health.contains(MARKER));
    registry
        .get("payments")
        .await
        .unwrap()
        .unwrap()
        .reset()
        .await
        .unwrap();
    let (code, _, _) = get(addr, "/health").await;
    assert_eq!(code, 200);

    // No recorder given to this page, and no control route at all.
    assert_eq!(get(addr, "/metrics").await.0, 404);
    let client = reqwest::Client::new();
    for path in ["/status", "/status.json", "/health"] {
        let response = client
            .post(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{path}");
    }
    assert_eq!(get(addr, "/reset").await.0, 404);
}

#[actix::test]
async fn serve_installs_the_recorder_and_serves_every_route() {
    let registry = warden::RegistryHandle::start().unwrap();
    let observe = warden::status::serve("127.0.0.1:0".parse().unwrap(), registry.clone()).unwrap();
    assert!(observe.local_addr().ip().is_loopback());
    registry.spawn("payments", payments_config()).await.unwrap();
    let addr = observe.local_addr();
    let (code, _, metrics) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("warden_circuit_state"), "{metrics}");
    let (code, _, html) = get(addr, "/status").await;
    assert_eq!(code, 200);
    assert!(html.contains("data-service=\"payments\""));
    assert_eq!(get(addr, "/health").await.0, 200);
    assert_eq!(get(addr, "/status.json").await.0, 200);

    // A keyed service: its keys on the page, in the JSON, in /health, and per-key series.
    let hosts = registry
        .spawn_keyed("hosts", payments_config())
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = hosts
            .call("bad.example", || async { Err::<(), _>(DepError("down")) })
            .await;
    }
    hosts
        .call("good.example", || async { Ok::<(), DepError>(()) })
        .await
        .unwrap();
    hosts.key("bad.example").unwrap().counts().await.unwrap();
    let (_, _, json) = get(addr, "/status.json").await;
    let view: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keyed = &view["keyed"][0];
    assert_eq!(keyed["service"], "hosts");
    assert_eq!(
        (keyed["keys"].as_u64(), keyed["open_keys"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        keyed["top"][0]["key"], "bad.example",
        "the open key first: {keyed}"
    );
    assert_eq!(keyed["top"][0]["state"], "open");
    let (_, _, health) = get(addr, "/health").await;
    assert!(health.contains(r#""open_keys":1"#), "{health}");
    let (_, _, html) = get(addr, "/status").await;
    assert!(html.contains("hosts: 2 of 1024 keys, 1 open"), "{html}");
    let (_, _, metrics) = get(addr, "/metrics").await;
    for series in [
        r#"warden_key_calls_total{service="hosts",key="bad.example",outcome="failure"} 3"#,
        r#"warden_key_open{service="hosts",key="bad.example"} 1"#,
        r#"warden_key_open{service="hosts",key="good.example"} 0"#,
        r#"warden_keyed_keys{service="hosts"} 2"#,
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    // The keys' counts add up under the service's own name, with no per-key label.
    assert!(metrics.contains(r#"warden_calls_total{service="hosts",outcome="success"} 1"#));
    assert!(
        !metrics.contains(r#"service="hosts/"#),
        "no per-key service label"
    );
}

#[actix::test]
async fn the_collector_samples_on_its_own_and_keeps_a_bounded_ring() {
    pause_aligned().await;
    let registry = warden::RegistryHandle::start().unwrap();
    registry.spawn("search", plain_config()).await.unwrap();
    let config = StatusConfig::default()
        .sample_every(Some(Duration::from_secs(1)))
        .history(4);
    let page = StatusPage::start(registry, config).await.unwrap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        settle().await;
    }
    let history = &page.view().await.unwrap().services[0].history;
    assert_eq!(history.len(), 4, "the ring keeps the last 4 of 11 samples");
    assert!(history.iter().all(|point| point.calls_per_sec == Some(0.0)));
}
