//! The peer stacks the benchmarks compare warden against, built around any operation, with the
//! configuration every stack shares: 5 s per-attempt timeout, 3 attempts with exponential
//! backoff from `backoff` (×2), a breaker tripping after 5 consecutive failures. Shared by
//! `benches/overhead.rs` and `benches/placement.rs`, so both measure the same stacks.

use std::future::Future;
use std::time::Duration;

/// Timeout of one attempt, every stack.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per call (the first included), every stack with retries.
pub const ATTEMPTS: u32 = 3;
/// First backoff delay (then ×2), every stack with retries.
pub const BACKOFF: Duration = Duration::from_millis(500);
/// Consecutive failures that open every breaker.
pub const TRIP_AFTER: u32 = 5;

/// The error every benchmarked operation may return.
#[derive(Debug, Clone)]
pub struct DepError;

impl std::fmt::Display for DepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dependency failed")
    }
}

impl std::error::Error for DepError {}

/// tower-resilience 0.13: retry → circuit breaker → time limiter.
pub mod tower_resilience_stack {
    use super::*;
    use tower::{Service, ServiceBuilder};
    use tower_resilience::circuitbreaker::{CircuitBreakerError, CircuitBreakerLayer};
    use tower_resilience::retry::RetryLayer;
    use tower_resilience::timelimiter::{TimeLimiterError, TimeLimiterLayer};

    /// Why a call failed.
    pub type StackError = CircuitBreakerError<TimeLimiterError<DepError>>;

    /// The stack around `operation` (invoked once per attempt). Clones share one breaker.
    pub fn build<Op, Fut>(
        operation: Op,
        backoff: Duration,
        open_for: Duration,
    ) -> impl Service<u64, Response = u64, Error = StackError, Future: Send> + Clone + Send + 'static
    where
        Op: Fn() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<u64, DepError>> + Send + 'static,
    {
        let retry = RetryLayer::<u64, u64, StackError>::builder()
            .max_attempts(ATTEMPTS as usize)
            .exponential_backoff(backoff)
            .retry_on(|e: &StackError| !e.is_circuit_open())
            .build();
        let breaker = CircuitBreakerLayer::builder()
            .consecutive_failures(TRIP_AFTER as usize)
            .wait_duration_in_open(open_for)
            .permitted_calls_in_half_open(1)
            .build()
            .expect("valid breaker");
        let time_limiter = TimeLimiterLayer::builder()
            .timeout_duration(TIMEOUT)
            .build();
        ServiceBuilder::new()
            .layer(retry)
            .layer(breaker)
            .layer(time_limiter)
            .service(tower::service_fn(move |_request: u64| operation()))
    }
}

/// backon 1.6 retry → failsafe 1.3 breaker → `tokio::time::timeout`.
pub mod failsafe_backon_stack {
    use super::*;
    use backon::{ExponentialBuilder, Retryable};
    use failsafe::failure_policy::{consecutive_failures, ConsecutiveFailures};
    use failsafe::futures::CircuitBreaker as _;
    use failsafe::{backoff, Config, StateMachine};

    /// The breaker (clones share its state).
    pub type Breaker = StateMachine<ConsecutiveFailures<backoff::Constant>, ()>;

    /// Why a call failed.
    #[derive(Debug)]
    pub enum StackError {
        Rejected,
        TimedOut,
        Dependency,
    }

    /// A breaker opening after `TRIP_AFTER` consecutive failures, for `open_for`.
    pub fn breaker(open_for: Duration) -> Breaker {
        Config::new()
            .failure_policy(consecutive_failures(
                TRIP_AFTER,
                backoff::constant(open_for),
            ))
            .build()
    }

    /// One call: backon retries around the breaker around a tokio timeout around the operation.
    pub async fn call<F, Fut>(
        breaker: &Breaker,
        backoff: Duration,
        operation: F,
    ) -> Result<u64, StackError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<u64, DepError>>,
    {
        (|| async {
            let attempt = async {
                match tokio::time::timeout(TIMEOUT, operation()).await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(_)) => Err(StackError::Dependency),
                    Err(_) => Err(StackError::TimedOut),
                }
            };
            breaker.call(attempt).await.map_err(|e| match e {
                failsafe::Error::Rejected => StackError::Rejected,
                failsafe::Error::Inner(inner) => inner,
            })
        })
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(backoff)
                .with_factor(2.0)
                .with_max_delay(Duration::from_secs(10))
                .with_max_times(ATTEMPTS as usize - 1),
        )
        .sleep(tokio::time::sleep)
        .when(|e| !matches!(e, StackError::Rejected))
        .await
    }
}
