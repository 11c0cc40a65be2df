//! The Prometheus exporter: one call installs the recorder and serves `/metrics` (on loopback by
//! default), or installs it and hands back a handle whose `render()` you serve yourself.
//!
//! Install it **before** starting supervisors: each supervisor registers its series when it
//! starts. Without any recorder, metrics are no-ops and everything still logs through `tracing`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::mpsc;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::names::*;

/// Where [`serve_metrics`] listens unless told otherwise: loopback, port 9464 (the port
/// OpenTelemetry's Prometheus exporter uses). Binding every interface has to be asked for.
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// Bucket bounds (seconds) of [`CALL_DURATION_SECONDS`]: 1 ms to 60 s, dense where dependencies
/// usually answer. Histograms with buckets keep every sample (the exporter's default summaries
/// drop older samples from their quantiles) and aggregate across instances.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How often histogram data is drained into the rendered output.
pub(crate) const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the exporter could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExporterError {
    /// Another recorder is already installed, or the listener could not be built (address in
    /// use, permission denied, …).
    #[error("cannot install the prometheus exporter: {0}")]
    Build(#[from] metrics_exporter_prometheus::BuildError),
    /// The exporter's thread could not be started.
    #[error("cannot start the metrics thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The listener could not be bound (address in use, permission denied, …).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The registry to report on is not running.
    #[error("the registry is not running")]
    RegistryGone,
}

pub(crate) fn builder() -> Result<PrometheusBuilder, ExporterError> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(CALL_DURATION_SECONDS.to_string()),
            &DURATION_BUCKETS,
        )?
        .upkeep_timeout(UPKEEP_INTERVAL))
}

/// Installs the global recorder and serves `GET /metrics` on `addr` from a dedicated thread
/// (so a slow scraper never competes with the supervisors' arbiters). Returns a handle that can
/// also [`render`](PrometheusHandle::render) the same text.
///
/// ```no_run
/// let metrics = warden::observe::serve_metrics(warden::observe::DEFAULT_METRICS_ADDR)?;
/// // start supervisors now …
/// # Ok::<(), warden::observe::ExporterError>(())
/// ```
pub fn serve_metrics(addr: SocketAddr) -> Result<PrometheusHandle, ExporterError> {
    let builder = builder()?.with_http_listener(addr);
    let (recorder, handle) = on_runtime_thread("warden-metrics", move |runtime, started| {
        // `build` binds the listener and spawns the upkeep task: it needs the runtime.
        match runtime.block_on(async { builder.build() }) {
            Ok((recorder, exporter)) => {
                let handle = recorder.handle();
                if started.send(Ok((recorder, handle))).is_ok() {
                    // Serves until the process exits; an error here is a dead listener, and
                    // the HTTP server logs it.
                    let _ = runtime.block_on(exporter);
                }
            }
            Err(e) => {
                let _ = started.send(Err(ExporterError::Build(e)));
            }
        }
    })?;
    metrics::set_global_recorder(recorder).map_err(|e| ExporterError::Build(e.into()))?;
    describe_metrics();
    tracing::info!(%addr, "serving prometheus metrics at /metrics");
    Ok(handle)
}

/// Starts a thread named `name` with a current-thread tokio runtime and runs `run` on it, which
/// sends `Ok` once it is up (or why not) and may then go on serving; answers what it sent.
/// The one way warden starts a background runtime thread (the exporter, the status server).
pub(crate) fn on_runtime_thread<T: Send + 'static>(
    name: &str,
    run: impl FnOnce(&tokio::runtime::Runtime, mpsc::Sender<Result<T, ExporterError>>) + Send + 'static,
) -> Result<T, ExporterError> {
    let (started, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => run(&runtime, started),
                Err(e) => {
                    let _ = started.send(Err(ExporterError::Thread(e)));
                }
            }
        })?;
    receiver.recv().map_err(|_| {
        ExporterError::Thread(std::io::Error::other(format!(
            "thread {name} exited during start"
        )))
    })?
}

/// Installs the global recorder without a listener; serve [`PrometheusHandle::render`] from
/// your own HTTP server. A background thread runs the recorder's upkeep every 5 s.
pub fn install_recorder() -> Result<PrometheusHandle, ExporterError> {
    let handle = builder()?.install_recorder()?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("warden-metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        })?;
    describe_metrics();
    Ok(handle)
}

/// Registers the help text and unit of every family (Prometheus' `# HELP`; `promtool check
/// metrics` requires it). Called by both installers.
pub fn describe_metrics() {
    for (name, help) in METRIC_FAMILIES {
        match name {
            _ if RENDERED_FAMILIES.contains(&name) => {}
            CALL_DURATION_SECONDS => describe_histogram!(name, Unit::Seconds, help),
            CIRCUIT_STATE | SERVICE_HEALTH | CALLS_IN_FLIGHT | THROTTLE_PROBABILITY
            | CONCURRENCY_LIMIT | KEYED_KEYS | KEYED_OPEN_KEYS | FLEET_FALLBACK => {
                describe_gauge!(name, help)
            }
            _ => describe_counter!(name, help),
        }
    }
}
