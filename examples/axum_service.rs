//! A small HTTP API (axum) whose handlers call two dependencies through a warden `Registry`
//! loaded from `examples/axum_service.toml`: `upstream`, a pricing API over HTTP (a loopback
//! server with fault modes, `examples/common/upstream.rs`), and `store`, an in-memory store
//! holding the last price of each quote.
//!
//! ```text
//! GET /quote/{id}   the price from upstream; while it fails or its breaker is open, the store's
//!                   last price (a fallback, "source": "cache"); 503 when there is none
//! GET /livez        liveness: 200 while the process serves HTTP, whatever its dependencies
//! GET /health       readiness: registry.health_all() as JSON; 200 while every critical
//!                   dependency is healthy or degraded, 503 when one is unhealthy
//! GET /status       the live status page (and /status.json)
//! GET /metrics      Prometheus text
//! ```
//!
//! **Liveness vs readiness.** Kubernetes restarts a pod whose liveness probe fails and stops
//! routing traffic to one whose readiness probe fails. Point liveness at `/livez`: a
//! dependency's outage must not restart the pods (a restart cannot fix the dependency, and
//! restarting every replica at once turns an outage into a total one). Point readiness at
//! `/health`: a replica whose critical dependency is down is taken out of rotation until its
//! breaker and health window see the dependency again. Which dependencies are critical is the
//! `CRITICAL` list below (given to `StatusConfig::critical`).
//!
//! ```sh
//! cargo run --example axum_service                      # serves on 127.0.0.1:8080 until ^C
//! cargo run --example axum_service -- --self-test       # drives traffic and faults, checks, exits
//! curl -X POST 'http://127.0.0.1:UPSTREAM/fault?mode=outage'   # port printed at start
//! ```
//!
//! `--serve-for 30s --outage --force-open upstream` is the mode CI's Chromium check uses.

#[path = "common/upstream.rs"]
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Value};
use warden::actors::RegistryHandle;
use warden::messages::Call;
use warden::prelude::*;
use warden::status::{self, StatusConfig, StatusPage};

use upstream::Upstream;

/// The dependencies whose health decides readiness (`/health`).
const CRITICAL: [&str; 2] = ["upstream", "store"];

#[derive(Debug, Parser)]
#[command(about = "An axum service calling two dependencies through warden")]
struct Args {
    /// The services file.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/axum_service.toml"))]
    config: PathBuf,
    /// Where to listen (loopback by default; the self-test uses an ephemeral port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Drive traffic and faults against itself over HTTP, check the answers, exit.
    #[arg(long)]
    self_test: bool,
    /// Serve for this long, then exit (e.g. `30s`); default: until interrupted.
    #[arg(long)]
    serve_for: Option<humantime::Duration>,
    /// Start with the upstream in an outage (its breaker trips on the first calls).
    #[arg(long)]
    outage: bool,
    /// Force this service's breaker open once started.
    #[arg(long)]
    force_open: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The API

/// What the handlers share: the two supervised dependencies.
#[derive(Debug, Clone)]
struct App {
    upstream: ServiceHandle,
    store: ServiceHandle,
    client: reqwest::Client,
    upstream_url: String,
    prices: Arc<Mutex<HashMap<u64, u64>>>,
}

/// The upstream's failure. Its text (the upstream's body) may hold anything, credentials
/// included: it is logged nowhere and never sent to a client or shown on the status page.
#[derive(Debug)]
struct UpstreamError(#[allow(dead_code)] String);

impl App {
    async fn new(registry: &RegistryHandle, upstream_url: String) -> Result<App, String> {
        let get = |name: &'static str| async move {
            registry
                .get(name)
                .await
                .ok()
                .flatten()
                .ok_or(format!("{name} is not configured"))
        };
        Ok(App {
            upstream: get("upstream").await?,
            store: get("store").await?,
            client: reqwest::Client::new(),
            upstream_url,
            prices: Arc::default(),
        })
    }

    /// `GET {upstream}/price/{id}`.
    async fn fetch(&self, id: u64) -> Result<u64, UpstreamError> {
        let url = format!("{}/price/{id}", self.upstream_url);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| UpstreamError(e.to_string()))?;
        let ok = response.status().is_success();
        let body = response
            .text()
            .await
            .map_err(|e| UpstreamError(e.to_string()))?;
        if ok {
            body.trim().parse().map_err(|_| UpstreamError(body))
        } else {
            Err(UpstreamError(body))
        }
    }

    /// The store's last price of `id` (through its supervisor).
    async fn cached(&self, id: u64) -> Option<u64> {
        let prices = Arc::clone(&self.prices);
        let read = move || {
            let prices = Arc::clone(&prices);
            async move { Ok::<_, ()>(prices.lock().unwrap().get(&id).copied()) }
        };
        self.store.call(read).await.ok().flatten()
    }

    async fn remember(&self, id: u64, price: u64) {
        let prices = Arc::clone(&self.prices);
        let write = move || {
            let prices = Arc::clone(&prices);
            async move { Ok::<_, ()>(prices.lock().unwrap().insert(id, price)) }
        };
        let _ = self.store.call(write).await;
    }
}

/// `GET /quote/{id}`: upstream first, the store's last price as the fallback.
async fn quote(State(app): State<App>, Path(id): Path<u64>) -> (StatusCode, Json<Value>) {
    let fetch = app.clone();
    let fallback = app.clone();
    let call = Call::new(move || {
        let app = fetch.clone();
        async move { app.fetch(id).await.map(|price| (price, "upstream")) }
    })
    .fallback_async(move |error| async move {
        match fallback.cached(id).await {
            Some(price) => Ok((price, "cache")),
            None => Err(error),
        }
    });
    match app.upstream.send(call).await {
        Ok((price, source)) => {
            if source == "upstream" {
                app.remember(id, price).await;
            }
            (
                StatusCode::OK,
                Json(json!({ "id": id, "price": price, "source": source })),
            )
        }
        // Refused (breaker open, overloaded) or failed, and nothing cached: say which, never
        // the upstream's error text.
        Err(error) => {
            let reason = if error.is_rejection() {
                "upstream refused (breaker open or overloaded)"
            } else {
                "upstream failed"
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "id": id, "error": reason })),
            )
        }
    }
}

fn routes(app: App, page: StatusPage) -> Router {
    Router::new()
        .route("/quote/{id}", get(quote))
        .route("/livez", get(|| async { "ok\n" }))
        .with_state(app)
        .merge(status::router(page)) // /health, /status, /status.json, /metrics
}

// ---------------------------------------------------------------------------------------------
// Start-up

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match runtime
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(run(args)))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("axum_service: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reloads the services file on every SIGHUP (see `RegistryHandle::reload`).
#[cfg(unix)]
async fn reload_on_sighup(registry: warden::actors::RegistryHandle, path: PathBuf) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        eprintln!("axum_service: cannot listen for SIGHUP; reload disabled");
        return;
    };
    while hangups.recv().await.is_some() {
        let file = match ServicesFile::from_toml_file(&path) {
            Ok(file) => file,
            Err(e) => {
                eprintln!("axum_service: reload refused, nothing changed: {e}");
                continue;
            }
        };
        match registry.reload(file).await {
            Ok(report) => eprintln!("axum_service: reloaded {}: {report:?}", path.display()),
            Err(e) => eprintln!("axum_service: reload refused, nothing changed: {e}"),
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // The recorder first: each supervisor registers its series when it starts.
    let metrics = warden::observe::install_recorder().map_err(|e| e.to_string())?;
    let upstream = Upstream::spawn()
        .await
        .map_err(|e| format!("cannot start the upstream: {e}"))?;
    let file = ServicesFile::from_toml_file(&args.config).map_err(|e| e.to_string())?;
    let registry = RegistryHandle::start().map_err(|e| e.to_string())?;
    registry.spawn_all(file).await.map_err(|e| e.to_string())?;
    // `kill -HUP <pid>` re-reads the file and applies it without losing breaker state or
    // health windows; an invalid file is reported and changes nothing.
    #[cfg(unix)]
    tokio::spawn(reload_on_sighup(registry.clone(), args.config.clone()));

    let app = App::new(&registry, upstream.url()).await?;
    let page = StatusPage::start(
        registry.clone(),
        StatusConfig::default()
            .critical(CRITICAL)
            .sample_every(Some(Duration::from_secs(1)))
            .history(300),
    )
    .await
    .map_err(|e| e.to_string())?
    .metrics(metrics);
    let addr = if args.self_test {
        "127.0.0.1:0".parse().unwrap()
    } else {
        args.addr
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, routes(app, page.clone())).await });
    println!(
        "listening on http://{addr} (status page: http://{addr}/status; upstream: {})",
        upstream.url()
    );

    if args.self_test {
        return self_test::run(addr, &upstream).await;
    }
    let client = self_test::Client::new(addr, &upstream);
    if args.outage {
        client.trip_upstream().await?;
    }
    if let Some(name) = &args.force_open {
        let handle = registry
            .get(name)
            .await
            .ok()
            .flatten()
            .ok_or(format!("no service `{name}`"))?;
        handle.force_open().await.map_err(|e| e.to_string())?;
    }
    // Some traffic over quotes 0..5, so the page has rates to show.
    tokio::spawn(async move {
        for id in (0..5).cycle() {
            let _ = client.get(&format!("/quote/{id}")).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    println!("ready");
    match args.serve_for {
        Some(duration) => tokio::time::sleep(duration.into()).await,
        None => std::future::pending().await,
    }
    Ok(())
}

#[path = "axum_service/self_test.rs"]
mod self_test;
