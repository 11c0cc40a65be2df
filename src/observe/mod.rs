//! Observability: metric names and label keys (one place), span and attribute names
//! ([`spans`]), per-service metric handles and the Prometheus exporter. It sits below the
//! engine ([`actors`](crate::actors) reports through it); the live status page, an application
//! on top of the registry, is [`status`](crate::status).
//!
//! Everything goes through the `metrics` facade: without an installed recorder the calls are
//! no-ops and `tracing` events still report every transition, retry, timeout and rejection.

pub(crate) mod exporter;
mod fleet_metrics;
mod keyed_metrics;
mod names;
mod service_metrics;
pub mod spans;

pub use exporter::{
    describe_metrics, install_recorder, serve_metrics, ExporterError, DEFAULT_METRICS_ADDR,
    DURATION_BUCKETS,
};
pub(crate) use fleet_metrics::FleetMetrics;
pub(crate) use keyed_metrics::KeyedMetrics;
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use names::*;
pub(crate) use service_metrics::ServiceMetrics;
