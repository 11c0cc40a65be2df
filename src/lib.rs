//! # warden
//!
//! A resilience runtime: every dependency a service calls (a database, an HTTP API, a cache)
//! gets one **supervisor actor** ([`ServiceSupervisor`]) that owns that dependency's
//! [circuit breaker](breaker::Breaker) and [health window](health::HealthWindow). A call runs
//! in the caller's own task under the supervisor's authority: timed out, retried with backoff,
//! jitter and a retry budget, failed fast while the breaker is open; the supervisor tracks
//! success rate and latency and reports through `tracing` and the `metrics` facade.
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
//!     .retry(RetryConfig::exponential(3, Duration::from_millis(500)).full_jitter())
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
//! # The three parts
//!
//! - **The caller's task runs the call.** A [`ServiceHandle`] (cheap to clone, `Send`) runs each
//!   call where it is awaited: it passes the gates, takes a bulkhead slot, invokes the
//!   operation under its time limit, sleeps the backoff and answers. A call that succeeds sends
//!   no message: its outcome is handed over through a lock-free queue.
//! - **The supervisor decides.** One [`ServiceSupervisor`] actor per dependency is the only
//!   writer of its breaker, health window, retry budget, throttle, limits and counts. It
//!   publishes what callers need to admit a call on their own (the breaker state, the
//!   throttle's probability, the limit), drains their reports in batches, and answers the
//!   questions only it can answer: a failed attempt's retry (one round trip), a half-open
//!   probe, a hedge. Every decision it makes or outcome it hears is one signal, turned into
//!   counts, metrics, `tracing` and [events](messages::SupervisorEvent) in one place.
//! - **The [`Registry`]** names the supervisors, spawns them from a TOML
//!   [`ServicesFile`], reloads them without losing state, and reports the health of all.
//!
//! # The order of the patterns, as built
//!
//! | step | where | what happens |
//! |---|---|---|
//! | 1. breaker | caller (published state) | open: refused at once (`Open`); half-open: the supervisor admits the probes |
//! | 2. throttle | caller | closed-state calls shed with the published probability, sheddable calls first (`Throttled`) |
//! | 3. rate limit | caller | a token now, or one reserved and waited for up to `max_wait`, less the reserves of more critical calls (`RateLimited`) |
//! | 4. back-pressure | caller | waits for the supervisor to drain when its hand-off is backed up |
//! | 5. bulkhead | caller | a slot of `max_in_flight` or the adaptive limit, less the reserves of more critical calls (`Overloaded`) |
//! | 6. coalescing | caller | a call whose key is in flight waits for that call's answer |
//! | 7. timeout | caller | each attempt under its timeout and what is left of the deadline (the supervisor's, or a sooner inherited [`Deadline`]) |
//! | 8. hedge | caller, supervisor admits | an idempotent call slower than the hedge delay races another attempt |
//! | 9. health, breaker | supervisor | every attempt recorded: latency, success, trips |
//! | 10. retry | supervisor decides, caller sleeps | attempts left, retry-after hint, deadline, open breaker, budget |
//! | 11. fallback | caller | a failed or refused call with a fallback is answered by it |
//!
//! The order is not a choice, so it cannot be assembled wrong: the timeout bounds one attempt,
//! not the retries; the breaker and the health window see every attempt, retries included;
//! the retry never goes into a breaker that will still be open.
//!
//! # Which tool when
//!
//! | the dependency… | use | it answers |
//! |---|---|---|
//! | fails hard (down, refusing) | [breaker] | fail fast while open, probe to recover |
//! | is slow to answer at all | [timeout and deadline](SupervisorConfig::timeout) | bound each attempt and the whole call |
//! | must not be swamped by this process | [bulkhead](SupervisorConfig::max_in_flight) | a fixed cap of calls in flight |
//! | queues under load (latency grows with concurrency) | [adaptive limit](crate::limit) | the cap found from latency (AIMD, gradient) |
//! | fails a share of calls (brownout) | [throttle] | sheds calls client-side in proportion to what it refuses |
//! | has a quota (requests per second) | [rate limit](crate::ratelimit) | tokens, waits up to `max_wait` |
//! | fails transiently | [retry with a budget](crate::retry) | retries, but never more than a share of calls |
//! | has a slow tail (p99 ≫ p50) | [hedge] | a second attempt after the percentile delay |
//! | has one quota for many replicas | [fleet] | the rate limit and retry budget shared through Redis |
//! | is overloaded, and some calls matter more | [`Criticality`] (and [`criticality::CriticalityConfig`]) | sheddable calls refused first, a share of each capacity kept for critical ones |
//! | is one of many hosts behind one HTTP client | [keyed supervisors](crate::keyed) (with `reqwest`: `reqwest::WardenMiddleware`) | a breaker per host, so one bad host opens only its own |
//! | is one hop of a chain with one budget | [`Deadline`] (and [`deadline::DeadlineHeader`]) | the time left travels to every call below, in-process and over HTTP |
//!
//! # Observe before enforcing
//!
//! The breaker, the throttle, the adaptive concurrency limit and the rate limiter each take a
//! [`PolicyMode`]: `mode = "observe"` (or `.observe()` on their configuration) makes every
//! decision and refuses nothing — a call the policy would have refused runs, counted
//! `would_reject{reason}` (metric `warden_would_reject_total`, [`messages::CallCounts`], an
//! event), and is a *shadow* the policy does not record, so it decides exactly as it would
//! enforcing. Switch it to `enforce` with a reload once its would-be refusals look right; it
//! keeps its state. See [`mode`].
//!
//! The pure cores ([`breaker`], [`health`], [`retry`], [`throttle`], [`limit`], [`ratelimit`],
//! [`hedge`], [`chaos`], and [`fleet`]'s quota and budget) know nothing of actix or tokio: they take `now` as an argument and a
//! seeded RNG, and are usable on their own.
//!
//! # Cargo features
//!
//! - `tower` (on by default): [`tower::WardenLayer`], a `tower::Layer` that runs any
//!   `tower::Service` (a hyper-util client, a tonic channel, an axum sub-service) behind a
//!   supervisor, and reads a request's deadline and criticality from its headers
//!   (`http::Request`). It brings in
//!   only `tower-service`, `tower-layer` and `http`.
//! - `reqwest` (off by default): `reqwest::WardenMiddleware`, a `reqwest-middleware`
//!   middleware that runs each request of a reqwest client under its host's own supervisor
//!   (a [`KeyedHandle`]) or one [`ServiceHandle`]: 5xx and 429 responses are failures, their
//!   `Retry-After` is honoured, only idempotent requests are retried, and the call's deadline
//!   and criticality are sent on in headers. Brings in `reqwest` (default features off), `reqwest-middleware`,
//!   `http`, `async-trait` and `httpdate`.
//! - `fault-injection` (off by default): lets a supervisor inject latency, errors and hangs
//!   into its attempts on purpose, for tests and game days ([`chaos`]). Without it a `faults`
//!   configuration is refused with a [`ConfigError`].
//! - `status-page` (on by default): a live status page, `/status.json` and a readiness route
//!   as an axum `Router` ([`status`]), and [`status::serve`] to serve them with
//!   `/metrics`. Pulls `axum` (default features off).
//! - `redis` (off by default): `fleet::RedisStore`, the [`fleet`]'s shared quota and
//!   retry budget in Redis (the `redis` crate, tokio, no TLS).

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod actors;
mod ambient;
pub mod breaker;
pub mod chaos;
pub mod config;
pub mod criticality;
pub mod deadline;
pub mod error;
pub mod fleet;
mod flights;
pub mod health;
pub mod hedge;
pub mod keyed;
pub mod limit;
pub mod messages;
pub mod mode;
pub mod observe;
mod off;
pub mod outcome;
pub mod ratelimit;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod retry;
mod ring;
#[cfg(feature = "status-page")]
pub mod status;
mod sync;
pub mod throttle;
#[cfg(feature = "tower")]
pub mod tower;

pub use actors::{
    KeyedHandle, Registry, RegistryHandle, ServiceHandle, ServiceSupervisor, SupervisorBuilder,
};
pub use config::{ServicesFile, SupervisorConfig};
pub use criticality::Criticality;
pub use deadline::Deadline;
pub use error::{CallError, ConfigError, ControlError, SupervisorGone};
pub use mode::PolicyMode;

/// The types most programs need, in one import.
pub mod prelude {
    pub use crate::actors::{
        KeyedHandle, Registry, RegistryHandle, ServiceHandle, ServiceSupervisor, SupervisorBuilder,
    };
    pub use crate::breaker::{BreakerConfig, BreakerState, OpenDuration, SlidingWindow};
    pub use crate::chaos::FaultConfig;
    pub use crate::config::{ServicesFile, SupervisorConfig};
    pub use crate::criticality::Criticality;
    pub use crate::deadline::Deadline;
    pub use crate::error::{CallError, ConfigError};
    pub use crate::fleet::FleetConfig;
    pub use crate::health::{HealthConfig, HealthSnapshot, HealthStatus};
    pub use crate::hedge::HedgeConfig;
    pub use crate::keyed::KeyedConfig;
    pub use crate::limit::ConcurrencyLimitConfig;
    pub use crate::messages::{Call, GetHealth};
    pub use crate::mode::PolicyMode;
    pub use crate::ratelimit::RateLimitConfig;
    pub use crate::retry::{Backoff, BudgetConfig, ErrorClass, RetryConfig};
    pub use crate::throttle::ThrottleConfig;
}
