//! Observability: metric names and label values (one place), per-service metric handles, the
//! Prometheus exporter, and (cargo feature `status-page`) a live [status page](status) served
//! next to `/metrics` by [`serve`].
//!
//! Everything goes through the `metrics` facade: without an installed recorder the calls are
//! no-ops and `tracing` events still report every transition, retry, timeout and rejection.

mod exporter;
mod names;
mod service_metrics;
#[cfg(feature = "status-page")]
pub mod status;

pub use exporter::{
    describe_metrics, install_recorder, serve_metrics, ExporterError, DEFAULT_METRICS_ADDR,
    DURATION_BUCKETS,
};
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use names::*;
pub(crate) use service_metrics::ServiceMetrics;
#[cfg(feature = "status-page")]
pub use status::{serve, serve_with, ObserveHandle};
