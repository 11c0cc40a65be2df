//! Health window: success rate and latency quantiles over the most recent calls to one
//! dependency, classified into [`HealthStatus::Healthy`], [`HealthStatus::Degraded`] or
//! [`HealthStatus::Unhealthy`].
//!
//! The core is pure: every method that depends on time takes `now: Instant`, nothing here
//! reads the clock. A [`HealthWindow`] records `(at, latency, success)` samples into a ring
//! buffer bounded by [`HealthConfig::window_size`], computes [`HealthStats`] over the samples
//! no older than [`HealthConfig::max_age`], and [`HealthConfig::classify`] turns the stats plus
//! the breaker state into a [`HealthStatus`]. [`HealthSnapshot`] is the serializable report.

mod classify;
mod config;
mod snapshot;
mod stats;
mod status;
mod window;

pub use config::HealthConfig;
pub use snapshot::HealthSnapshot;
pub use stats::HealthStats;
pub use status::HealthStatus;
pub use window::HealthWindow;
