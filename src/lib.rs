//! # warden
//!
//! A resilience runtime: every dependency a service calls (a database, an HTTP API, a cache)
//! gets one **supervisor actor** ([`ServiceSupervisor`]) that owns that dependency's
//! [circuit breaker](breaker::Breaker) and [health window](health::HealthWindow). Callers send
//! it a [`Call`](messages::Call); the supervisor runs the operation under a timeout, retries it
//! with backoff, jitter and a retry budget, fails fast while the breaker is open, tracks success
//! rate and latency, and reports through `tracing` and the `metrics` facade.
//!
//! ```
//! use std::time::Duration;
//! use warden::prelude::*;
//!
//! #[derive(Debug)]
//! struct DbError;
//!
//! # #[actix::main(crate = "actix")]
//! # async fn main() {
//! let db = ServiceSupervisor::builder("database")
//!     .timeout(Duration::from_secs(5))
//!     .retry(RetryConfig::exponential(3, Duration::from_millis(500)).with_full_jitter())
//!     .breaker(BreakerConfig::consecutive(3).open_for(Duration::from_secs(30)))
//!     .start()
//!     .expect("valid configuration");
//!
//! let rows: Result<u64, CallError<DbError>> = db.call(|| async { Ok(1) }).await;
//! assert_eq!(rows.unwrap(), 1);
//!
//! let health = db.health().await.unwrap();
//! assert!(health.is_healthy());
//! # }
//! ```
//!
//! The order inside the supervisor is fixed — timeout (innermost), health, breaker, retry
//! (outermost) — so it cannot be assembled in the wrong order.
//!
//! The pure cores ([`breaker`], [`health`], [`retry`], and for load control [`throttle`],
//! [`limit`] and [`ratelimit`]) know nothing of actix or tokio: they take `now` as an argument
//! and a seeded RNG, and are usable on their own.
//!
//! # Cargo features
//!
//! - `tower` (on by default): [`tower::WardenLayer`], a `tower::Layer` that runs any
//!   `tower::Service` (a hyper-util client, a tonic channel, an axum sub-service) behind a
//!   supervisor. It brings in only `tower-service` and `tower-layer`.
//! - `fault-injection` (off by default): lets a supervisor inject latency, errors and hangs
//!   into its attempts on purpose, for tests and game days ([`chaos`]). Without it a `faults`
//!   configuration is refused with a [`ConfigError`].
//! - `status-page` (on by default): a live status page, `/status.json` and a readiness route
//!   as an axum `Router` ([`status`]), and [`status::serve`] to serve them with
//!   `/metrics`. Pulls `axum` (default features off).

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod actors;
pub mod breaker;
pub mod chaos;
pub mod config;
mod duration_or_off;
pub mod error;
pub mod health;
pub mod hedge;
pub mod limit;
pub mod messages;
pub mod observe;
pub mod outcome;
pub mod ratelimit;
pub mod retry;
#[cfg(feature = "status-page")]
pub mod status;
mod sync;
pub mod throttle;
#[cfg(feature = "tower")]
pub mod tower;

pub use actors::{Registry, ServiceHandle, ServiceSupervisor, SupervisorBuilder};
pub use config::{ServicesFile, SupervisorConfig};
pub use error::{CallError, ConfigError, FaultsError, SupervisorGone};

/// The types most programs need, in one import.
pub mod prelude {
    pub use crate::actors::{Registry, ServiceHandle, ServiceSupervisor, SupervisorBuilder};
    pub use crate::breaker::{BreakerConfig, BreakerState, OpenDuration, SlidingWindow};
    pub use crate::chaos::FaultConfig;
    pub use crate::config::{ServicesFile, SupervisorConfig};
    pub use crate::error::{CallError, ConfigError};
    pub use crate::health::{HealthConfig, HealthSnapshot, HealthStatus};
    pub use crate::hedge::HedgeConfig;
    pub use crate::limit::ConcurrencyLimitConfig;
    pub use crate::messages::{Call, GetHealth};
    pub use crate::ratelimit::RateLimitConfig;
    pub use crate::retry::{Backoff, BudgetConfig, ErrorClass, RetryConfig};
    pub use crate::throttle::ThrottleConfig;
}
