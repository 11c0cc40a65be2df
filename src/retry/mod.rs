//! Retry core: when to retry a failed attempt, how long to wait, and whether the dependency
//! can afford another retry at all.
//!
//! The core is pure: nothing here reads the clock or the thread RNG. Time comes in as
//! `now: Instant`, randomness from a seeded [`rand::rngs::SmallRng`].
//!
//! - [`ErrorClass`] is what a classifier says about one error: retryable or not, whether it
//!   counts as a circuit-breaker failure, and an optional server retry-after hint.
//! - [`Backoff`] computes the delay before retry `n` (constant, exponential, full jitter,
//!   decorrelated jitter), always capped by `max_delay`.
//! - [`RetryPolicy`] owns a validated [`RetryConfig`] and an RNG and answers "retry after how
//!   long, or not at all?" from the attempts made and the retry-after hint.
//! - [`RetryBudget`] limits retries to a fraction of recent calls plus a small floor
//!   (Finagle-style), so retries cannot multiply the load on a failing dependency.

mod backoff;
mod budget;
mod classify;
mod config;
mod policy;

pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use classify::ErrorClass;
pub use config::{BudgetConfig, RetryConfig};
pub use policy::RetryPolicy;
