//! The presets of [`SupervisorConfig`]: [`adaptive`](SupervisorConfig::adaptive),
//! [`database`](SupervisorConfig::database), [`http_api`](SupervisorConfig::http_api) and
//! [`cache`](SupervisorConfig::cache).
//!
//! Starting points for common kinds of dependency, so that a service need not tune a dozen
//! numbers before its first call; each preset's table says what it sets, and any field can be
//! changed afterwards.

use std::time::Duration;

use super::supervisor::SupervisorConfig;
use crate::breaker::{BreakerConfig, OpenDuration, SlidingWindow};
use crate::health::HealthConfig;
use crate::retry::{Backoff, BudgetConfig, RetryConfig};
use crate::throttle::ThrottleConfig;

impl SupervisorConfig {
    /// Preset for brownouts: retries (3 attempts, 50 ms full-jitter backoff) capped at 25 % of
    /// calls by the budget, with no per-second floor, so a brownout never multiplies the load
    /// by more than 1.25; adaptive throttling with k = 5 that sheds load only once the
    /// dependency accepts less than a fifth of what it is sent (below that, retries cannot
    /// pay for themselves); and a breaker that opens only on an outage (95 % of the last 50
    /// calls failing, at least 20). From a cold start, over real HTTP, it keeps 0.989, 0.614
    /// and 0.364 of the calls in 20, 50 and 70 % brownouts — 97–100 % of what 3 attempts at
    /// 1.25 × load allow — and sends fewer attempts than calls in a 90 % one (BENCHMARKS.md,
    /// "Brownouts that cannot flatter").
    ///
    /// | field | value |
    /// |---|---|
    /// | throttle | k 5.0, window 2 min, min 20 requests, at most 90 % refused |
    /// | breaker | 95 % of the last 50 (min 20), open 5 s ×2 up to 1 min |
    /// | retry | 3 attempts, exponential 50 ms full jitter, budget 25 % of calls, no floor |
    pub fn adaptive() -> Self {
        SupervisorConfig {
            throttle: Some(ThrottleConfig {
                k: 5.0,
                ..ThrottleConfig::default()
            }),
            breaker: BreakerConfig {
                consecutive_failures: None,
                failure_rate_threshold: Some(0.95),
                window: SlidingWindow::Count { size: 50 },
                minimum_calls: 20,
                open_duration: OpenDuration::exponential(
                    Duration::from_secs(5),
                    Duration::from_secs(60),
                    2.0,
                ),
                ..BreakerConfig::default()
            },
            retry: RetryConfig {
                budget: BudgetConfig {
                    ratio: 0.25,
                    min_per_second: 0,
                    ..BudgetConfig::default()
                },
                ..RetryConfig::exponential(3, Duration::from_millis(50)).full_jitter()
            },
            ..SupervisorConfig::default()
        }
    }

    /// Preset for a database: short retries with full jitter, a breaker
    /// tripping on 3 consecutive failures (30 s recovery, growing to 5 min on failed probes) or a 50 %
    /// failure rate over the last 50 calls, 32 calls in flight (a pool's worth), degraded above
    /// 500 ms p95.
    ///
    /// | field | value |
    /// |---|---|
    /// | timeout | 5 s |
    /// | retry | 3 attempts, full jitter from 100 ms, max delay 2 s |
    /// | breaker | 3 consecutive failures or 50 % of 50 calls (min 10); open 30 s → 5 min |
    /// | max_in_flight | 32 |
    /// | health | degraded p95 > 500 ms, unhealthy p95 > 2 s |
    pub fn database() -> Self {
        SupervisorConfig {
            timeout: Some(Duration::from_secs(5)),
            max_in_flight: 32,
            retry: RetryConfig {
                max_attempts: 3,
                backoff: Backoff::FullJitter {
                    base: Duration::from_millis(100),
                },
                max_delay: Duration::from_secs(2),
                budget: BudgetConfig::default(),
            },
            breaker: BreakerConfig {
                consecutive_failures: Some(3),
                failure_rate_threshold: Some(0.5),
                window: SlidingWindow::Count { size: 50 },
                minimum_calls: 10,
                open_duration: OpenDuration {
                    base: Duration::from_secs(30),
                    max: Duration::from_secs(300),
                    multiplier: 2.0,
                    jitter: 0.1,
                },
                ..BreakerConfig::default()
            },
            health: HealthConfig {
                degraded_latency: Some(Duration::from_millis(500)),
                unhealthy_latency: Some(Duration::from_secs(2)),
                ..HealthConfig::default()
            },
            ..SupervisorConfig::default()
        }
    }

    /// Preset for an external HTTP API: decorrelated-jitter retries that honour `Retry-After`,
    /// an overall deadline, and a breaker over a 30 s time window that also trips on slow calls.
    ///
    /// | field | value |
    /// |---|---|
    /// | timeout / deadline | 10 s per attempt / 30 s overall |
    /// | retry | 3 attempts, decorrelated jitter from 200 ms, max delay 5 s |
    /// | breaker | 5 consecutive failures, or 50 % failures or 50 % calls ≥ 5 s over 30 s (min 20); open 15 s → 2 min |
    /// | max_in_flight | 100 |
    /// | health | degraded p95 > 1 s, unhealthy p95 > 5 s |
    pub fn http_api() -> Self {
        SupervisorConfig {
            timeout: Some(Duration::from_secs(10)),
            deadline: Some(Duration::from_secs(30)),
            max_in_flight: 100,
            retry: RetryConfig {
                max_attempts: 3,
                backoff: Backoff::DecorrelatedJitter {
                    base: Duration::from_millis(200),
                },
                max_delay: Duration::from_secs(5),
                budget: BudgetConfig::default(),
            },
            breaker: BreakerConfig {
                consecutive_failures: Some(5),
                failure_rate_threshold: Some(0.5),
                slow_call_rate_threshold: Some(0.5),
                slow_call_duration: Duration::from_secs(5),
                window: SlidingWindow::Time {
                    duration: Duration::from_secs(30),
                },
                minimum_calls: 20,
                open_duration: OpenDuration {
                    base: Duration::from_secs(15),
                    max: Duration::from_secs(120),
                    multiplier: 2.0,
                    jitter: 0.1,
                },
                ..BreakerConfig::default()
            },
            health: HealthConfig {
                degraded_latency: Some(Duration::from_secs(1)),
                unhealthy_latency: Some(Duration::from_secs(5)),
                ..HealthConfig::default()
            },
            ..SupervisorConfig::default()
        }
    }

    /// Preset for a cache: a cache miss is cheaper than waiting, so a 100 ms timeout, one quick
    /// retry, a breaker that opens fast and recovers fast, and tight latency thresholds.
    ///
    /// | field | value |
    /// |---|---|
    /// | timeout | 100 ms |
    /// | retry | 2 attempts, constant 10 ms |
    /// | breaker | 5 consecutive failures or 50 % of 100 calls (min 20); open 5 s → 30 s |
    /// | max_in_flight | 512 |
    /// | health | degraded p95 > 20 ms, unhealthy p95 > 100 ms |
    pub fn cache() -> Self {
        SupervisorConfig {
            timeout: Some(Duration::from_millis(100)),
            max_in_flight: 512,
            retry: RetryConfig {
                max_attempts: 2,
                backoff: Backoff::Constant {
                    delay: Duration::from_millis(10),
                },
                max_delay: Duration::from_millis(100),
                budget: BudgetConfig::default(),
            },
            breaker: BreakerConfig {
                consecutive_failures: Some(5),
                failure_rate_threshold: Some(0.5),
                window: SlidingWindow::Count { size: 100 },
                minimum_calls: 20,
                open_duration: OpenDuration {
                    base: Duration::from_secs(5),
                    max: Duration::from_secs(30),
                    multiplier: 2.0,
                    jitter: 0.1,
                },
                ..BreakerConfig::default()
            },
            health: HealthConfig {
                degraded_latency: Some(Duration::from_millis(20)),
                unhealthy_latency: Some(Duration::from_millis(100)),
                ..HealthConfig::default()
            },
            ..SupervisorConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_presets_are_valid() {
        SupervisorConfig::default().validate().unwrap();
        SupervisorConfig::database().validate().unwrap();
        SupervisorConfig::http_api().validate().unwrap();
        SupervisorConfig::cache().validate().unwrap();
    }
}
