//! Observability: metric names and label values (one place), per-service metric handles, and
//! the Prometheus exporter.
//!
//! Everything goes through the `metrics` facade: without an installed recorder the calls are
//! no-ops and `tracing` events still report every transition, retry, timeout and rejection.

mod names;
mod service_metrics;

pub use names::*;
pub(crate) use service_metrics::ServiceMetrics;
