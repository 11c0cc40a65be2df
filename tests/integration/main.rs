//! The integration tests, one binary: each module is what used to be a file `tests/<name>.rs`
//! (one binary each, all linked on every `cargo test`). `cargo test --test integration <module>::`
//! runs one of them.
//!
//! Tests that need a process of their own stay separate binaries in `tests/`: those that install
//! the process-global metrics recorder (`chaos`, `coalescing`, `hedging`, `metrics_export`,
//! `metrics_exporter`, `status_page`: a second install in the same process fails), `soak`
//! (recorder, panic hook, RSS) and `overload` (a counting `#[global_allocator]`, RSS).

// `examples/common/timeline.rs` is loaded twice: by the HTTP example's `app.rs` and by the demo's
// `scenarios.rs` (`demo_scenarios`), as in the examples themselves.
#![allow(clippy::duplicate_mod)]

#[path = "../common/mod.rs"]
mod common;

// The HTTP example's server and client, shared by `http_dependency` and `tower_layer`.
#[path = "../../examples/http_dependency/app.rs"]
mod app;

mod breaker_half_open;
mod breaker_model;
mod breaker_trips;
mod brownout_http;
mod bulkhead;
mod concurrency_limit;
mod config_validation;
mod criticality;
mod criticality_http;
mod dashboard;
#[cfg(feature = "tower")]
mod deadline;
mod demo_scenarios;
mod events;
mod fallback;
mod first_attempt;
mod fleet;
mod health;
mod health_model;
mod http_dependency;
mod keyed;
mod limit_model;
mod observe;
mod panic_isolation;
mod placement;
mod plain_tokio;
mod rate_limit;
mod rate_limit_waiters;
mod ratelimit_model;
mod registry;
mod reload;
mod retry_budget;
mod retry_schedule;
mod supervisor_gone;
mod throttle;
mod throttle_model;
mod timeout;
#[cfg(feature = "tower")]
mod tower_layer;
mod truthful_answers;
