//! [`serve`]: the Prometheus recorder and the status page's routes, served by warden on a
//! thread of its own.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusHandle;

use super::collector::{StatusConfig, StatusPage};
use super::routes::router;
use crate::actors::RegistryHandle;
use crate::observe::exporter::{builder, on_runtime_thread, UPKEEP_INTERVAL};
use crate::observe::{describe_metrics, ExporterError};

/// What [`serve`] started: where it listens, the Prometheus handle and the status page.
/// Dropping it changes nothing: the server runs until the process exits.
#[derive(Debug, Clone)]
pub struct ObserveHandle {
    local_addr: SocketAddr,
    metrics: PrometheusHandle,
    page: StatusPage,
}

impl ObserveHandle {
    /// The address it listens on (the actual port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The Prometheus handle ([`render`](PrometheusHandle::render) is what `/metrics` serves).
    pub fn metrics_handle(&self) -> &PrometheusHandle {
        &self.metrics
    }

    /// The status page (e.g. to [`sample_now`](StatusPage::sample_now) or take a
    /// [`view`](StatusPage::view)).
    pub fn page(&self) -> &StatusPage {
        &self.page
    }
}

/// Installs the global Prometheus recorder and serves `/metrics`, `/status`, `/status.json`
/// and `/health` (see [`router`](super::router)) for `registry` on `addr`, from a dedicated
/// thread. Bind [`DEFAULT_METRICS_ADDR`](crate::observe::DEFAULT_METRICS_ADDR) (loopback)
/// unless you mean to expose it; every route is read-only.
///
/// Call it before spawning services: each supervisor registers its metric series when it
/// starts.
///
/// ```no_run
/// let registry = warden::RegistryHandle::start()?;
/// let observe = warden::status::serve(warden::observe::DEFAULT_METRICS_ADDR, registry.clone())?;
/// println!("status page: http://{}/status", observe.local_addr());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serve(addr: SocketAddr, registry: RegistryHandle) -> Result<ObserveHandle, ExporterError> {
    serve_with(addr, registry, StatusConfig::default())
}

/// [`serve`] with a [`StatusConfig`] (sampling, history, critical services).
pub fn serve_with(
    addr: SocketAddr,
    registry: RegistryHandle,
    config: StatusConfig,
) -> Result<ObserveHandle, ExporterError> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|source| ExporterError::Listen { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ExporterError::Listen { addr, source })?;
    let recorder = builder()?.build_recorder();
    let metrics = recorder.handle();
    // First: another recorder already installed is the likeliest failure, and it must not
    // leave a server running.
    metrics::set_global_recorder(recorder).map_err(|e| ExporterError::Build(e.into()))?;
    describe_metrics();
    // Started here, without waiting for the registry: it may run on this very thread.
    let page = StatusPage::start_detached(registry, config)
        .map_err(|_| ExporterError::RegistryGone)?
        .metrics(metrics.clone());
    let served = page.clone();
    on_runtime_thread("warden-observe", move |runtime, started| {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(source) => {
                    let _ = started.send(Err(ExporterError::Listen { addr, source }));
                    return;
                }
            };
            if started.send(Ok(())).is_err() {
                return;
            }
            let upkeep = served.metrics_handle().cloned();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
                loop {
                    interval.tick().await;
                    if let Some(metrics) = &upkeep {
                        metrics.run_upkeep();
                    }
                }
            });
            let first = served.clone();
            tokio::spawn(async move { first.sample_now().await });
            if let Err(error) = axum::serve(listener, router(served)).await {
                tracing::error!(%error, "the status page's server stopped");
            }
        });
    })?;
    tracing::info!(addr = %local_addr, "serving /metrics, /status, /status.json and /health");
    Ok(ObserveHandle {
        local_addr,
        metrics,
        page,
    })
}
