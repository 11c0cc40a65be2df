//! [`HealthConfig::classify`]: turning window stats and breaker state into a [`HealthStatus`].

use std::time::Duration;

use super::{HealthConfig, HealthStats, HealthStatus};

impl HealthConfig {
    /// The health verdict for `stats`.
    ///
    /// - An open breaker is [`HealthStatus::Unhealthy`] regardless of the stats.
    /// - With fewer than `minimum_calls` samples there is not enough evidence:
    ///   [`HealthStatus::Healthy`].
    /// - Otherwise the worse of two verdicts: success rate (below `unhealthy_success_rate` →
    ///   Unhealthy, below `degraded_success_rate` → Degraded) and p95 latency (above
    ///   `unhealthy_latency` → Unhealthy, above `degraded_latency` → Degraded). Thresholds are
    ///   strict: a rate equal to a threshold or a p95 equal to a latency limit does not trip it.
    pub fn classify(&self, stats: &HealthStats, breaker_open: bool) -> HealthStatus {
        if breaker_open {
            return HealthStatus::Unhealthy;
        }
        if stats.calls < self.minimum_calls {
            return HealthStatus::Healthy;
        }
        self.rate_verdict(stats.success_rate)
            .max(self.latency_verdict(stats.p95))
    }

    fn rate_verdict(&self, success_rate: Option<f64>) -> HealthStatus {
        match success_rate {
            Some(rate) if rate < self.unhealthy_success_rate => HealthStatus::Unhealthy,
            Some(rate) if rate < self.degraded_success_rate => HealthStatus::Degraded,
            _ => HealthStatus::Healthy,
        }
    }

    fn latency_verdict(&self, p95: Option<Duration>) -> HealthStatus {
        let exceeds = |limit: Option<Duration>| matches!((p95, limit), (Some(p), Some(l)) if p > l);
        if exceeds(self.unhealthy_latency) {
            HealthStatus::Unhealthy
        } else if exceeds(self.degraded_latency) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(calls: u32, failures: u32, p95_ms: u64) -> HealthStats {
        HealthStats {
            calls,
            failures,
            success_rate: Some(f64::from(calls - failures) / f64::from(calls)),
            p50: Some(Duration::from_millis(p95_ms)),
            p95: Some(Duration::from_millis(p95_ms)),
            p99: Some(Duration::from_millis(p95_ms)),
        }
    }

    #[test]
    fn success_rate_thresholds_are_strict() {
        let config = HealthConfig::default();
        assert_eq!(
            config.classify(&stats(100, 0, 10), false),
            HealthStatus::Healthy
        );
        assert_eq!(
            config.classify(&stats(100, 5, 10), false),
            HealthStatus::Healthy
        );
        assert_eq!(
            config.classify(&stats(100, 6, 10), false),
            HealthStatus::Degraded
        );
        assert_eq!(
            config.classify(&stats(100, 50, 10), false),
            HealthStatus::Degraded
        );
        assert_eq!(
            config.classify(&stats(100, 51, 10), false),
            HealthStatus::Unhealthy
        );
        assert_eq!(
            config.classify(&stats(100, 100, 10), false),
            HealthStatus::Unhealthy
        );
    }

    #[test]
    fn latency_thresholds_trigger_degraded_and_unhealthy() {
        let config = HealthConfig::default();
        assert_eq!(
            config.classify(&stats(100, 0, 1000), false),
            HealthStatus::Healthy
        );
        assert_eq!(
            config.classify(&stats(100, 0, 1001), false),
            HealthStatus::Degraded
        );
        assert_eq!(
            config.classify(&stats(100, 0, 5000), false),
            HealthStatus::Degraded
        );
        assert_eq!(
            config.classify(&stats(100, 0, 5001), false),
            HealthStatus::Unhealthy
        );
    }

    #[test]
    fn worse_of_rate_and_latency_wins() {
        let config = HealthConfig::default();
        // Degraded rate, unhealthy latency.
        assert_eq!(
            config.classify(&stats(100, 10, 6000), false),
            HealthStatus::Unhealthy
        );
        // Unhealthy rate, healthy latency.
        assert_eq!(
            config.classify(&stats(100, 60, 10), false),
            HealthStatus::Unhealthy
        );
        // Healthy rate, degraded latency.
        assert_eq!(
            config.classify(&stats(100, 0, 2000), false),
            HealthStatus::Degraded
        );
    }

    #[test]
    fn disabled_latency_thresholds_never_trip() {
        let config = HealthConfig {
            degraded_latency: None,
            unhealthy_latency: None,
            ..HealthConfig::default()
        };
        assert_eq!(
            config.classify(&stats(100, 0, 60_000), false),
            HealthStatus::Healthy
        );
    }

    #[test]
    fn minimum_calls_and_breaker_override() {
        let config = HealthConfig::default();
        let few_bad = stats(9, 9, 60_000);
        assert_eq!(config.classify(&few_bad, false), HealthStatus::Healthy);
        assert_eq!(config.classify(&few_bad, true), HealthStatus::Unhealthy);
        assert_eq!(
            config.classify(&stats(10, 10, 10), false),
            HealthStatus::Unhealthy
        );
        assert_eq!(
            config.classify(&stats(100, 0, 1), true),
            HealthStatus::Unhealthy
        );
        assert_eq!(
            config.classify(&HealthStats::EMPTY, false),
            HealthStatus::Healthy
        );
        assert_eq!(
            config.classify(&HealthStats::EMPTY, true),
            HealthStatus::Unhealthy
        );
    }
}
