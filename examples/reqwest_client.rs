//! A `reqwest` client behind warden: every request runs under its host's own supervisor
//! (breaker, retries with backoff and budget, `Retry-After`, deadline), through
//! `warden::reqwest::WardenMiddleware` in a `reqwest-middleware` stack.
//!
//! It starts two loopback servers of its own, so it runs offline in about a second:
//! `inventory`, which answers 503 to its first two requests, and `payments`, which is down
//! (always 500).
//!
//! `cargo run --features reqwest --example reqwest_client`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use reqwest_middleware::ClientBuilder;
use warden::prelude::*;
use warden::reqwest::{WardenError, WardenMiddleware};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let inventory = serve(inventory_app()).await?;
    let payments =
        serve(Router::new().fallback(|| async { StatusCode::INTERNAL_SERVER_ERROR })).await?;

    // One supervisor per host, each started from this configuration on the host's first request.
    let registry = RegistryHandle::start()?;
    let config = SupervisorConfig {
        timeout: Some(Duration::from_secs(2)),
        retry: RetryConfig::exponential(3, Duration::from_millis(20)),
        breaker: BreakerConfig::consecutive(3).open_for(Duration::from_secs(30)),
        ..SupervisorConfig::default()
    };
    let hosts = registry.spawn_keyed("http", config).await?;
    let client = ClientBuilder::new(reqwest::Client::builder().no_proxy().build()?)
        .with(WardenMiddleware::keyed(hosts.clone()))
        .build();

    // 1. Two 503s, retried: the caller sees the 200.
    let response = client
        .get(format!("http://{inventory}/items/7"))
        .send()
        .await?;
    println!(
        "inventory: {} {:?}",
        response.status(),
        response.text().await?
    );

    // 2. The deadline travels: inside a 300 ms budget the server is told what is left.
    let response = Deadline::after(Duration::from_millis(300))
        .scope(client.get(format!("http://{inventory}/items/8")).send())
        .await?;
    println!("inventory, 300 ms budget: {:?}", response.text().await?);

    // 3. A host that is down: three failed attempts open its breaker...
    let response = client
        .get(format!("http://{payments}/charges"))
        .send()
        .await?;
    println!(
        "payments: {} (the last response, after 3 attempts)",
        response.status()
    );
    // ...and the next request is refused at once, without reaching it.
    let error = client
        .get(format!("http://{payments}/charges"))
        .send()
        .await
        .expect_err("the breaker is open");
    let refused = matches!(
        WardenError::of(&error).map(WardenError::call_error),
        Some(CallError::Open { .. })
    );
    println!("payments again: {error} (refused by the breaker: {refused})");

    // 4. One breaker per host: inventory's is still closed.
    for (name, addr) in [("inventory", inventory), ("payments", payments)] {
        let handle = hosts
            .key(&addr.to_string())
            .expect("started by its first request");
        let counts = handle.counts().await?;
        println!(
            "{name} ({addr}): open = {}, calls ok {} / failed {} / refused {}, attempts {}",
            handle.is_open(),
            counts.success,
            counts.failure,
            counts.rejected_open,
            counts.attempts,
        );
    }
    assert!(refused && !hosts.key(&inventory.to_string()).unwrap().is_open());
    Ok(())
}

/// 503 to the first two requests, then 200 with the deadline header it was sent.
fn inventory_app() -> Router {
    let requests = Arc::new(AtomicU32::new(0));
    Router::new().route(
        "/items/{id}",
        get(move |headers: HeaderMap| async move {
            if requests.fetch_add(1, Ordering::Relaxed) < 2 {
                return (StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            let deadline = headers
                .get("grpc-timeout")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("none");
            (StatusCode::OK, format!("item, grpc-timeout: {deadline}"))
        }),
    )
}

/// Serves `app` on a free port of 127.0.0.1.
async fn serve(app: Router) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
