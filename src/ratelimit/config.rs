//! [`RateLimitConfig`]: rate, burst and the longest wait a call accepts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::mode::PolicyMode;

/// Lowest rate accepted: one call per about 31.7 years (keeps the interval within `u64` ns).
const MIN_RATE: f64 = 1e-9;
/// Highest rate accepted: one call per nanosecond.
const MAX_RATE: f64 = 1e9;

/// Settings of one [`RateLimiter`](super::RateLimiter).
///
/// ```toml
/// rate = 50.0        # tokens per second
/// burst = 10         # bucket size
/// max_wait = "200ms" # reserve a token up to this far ahead; "0s" refuses at once
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Tokens per second, between 1e-9 and 1e9. Default 100. Applied as an interval of
    /// `round(1e9 / rate)` whole nanoseconds per token.
    pub rate: f64,
    /// Most tokens the bucket holds (calls that may go at once after a quiet period), at
    /// least 1. Default 100. The bucket starts full.
    pub burst: u32,
    /// Longest wait for a token a call accepts; 0 refuses at once when the bucket is empty.
    /// Default 0.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// When a failed attempt's error carries a retry-after hint (a 429's `Retry-After`, given
    /// by the classifier), the rate is multiplied by this until the hint ends, and the saved
    /// burst is dropped: in `[0, 1]`, where 1 ignores hints and 0 stops calls until then.
    /// Default 0.5.
    pub retry_after_factor: f64,
    /// `enforce` (the default) or `observe`: tokens are taken as configured, but nothing is
    /// refused and nothing waits; a call with no token in time runs without one, counted
    /// `would_reject{reason="rate_limited"}`, and a call that would wait for its token goes at
    /// once (its token still taken, so the bucket decides as when enforced; a fleet call
    /// waiting for a lease goes at once without one, not counted) (see [`PolicyMode`]).
    #[serde(skip_serializing_if = "crate::mode::is_enforce")]
    pub mode: PolicyMode,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            rate: 100.0,
            burst: 100,
            max_wait: Duration::ZERO,
            retry_after_factor: 0.5,
            mode: PolicyMode::Enforce,
        }
    }
}

impl RateLimitConfig {
    /// `rate` tokens per second with a burst of one second's worth (at least 1), no waiting.
    pub fn per_second(rate: f64) -> Self {
        RateLimitConfig {
            rate,
            burst: if rate.is_finite() {
                rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
            } else {
                1
            },
            max_wait: Duration::ZERO,
            retry_after_factor: 0.5,
            mode: PolicyMode::Enforce,
        }
    }

    /// Sets the bucket size.
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Sets the longest wait for a reserved token.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets the factor the rate is multiplied by while a retry-after hint lasts.
    pub fn retry_after_factor(mut self, factor: f64) -> Self {
        self.retry_after_factor = factor;
        self
    }

    /// Enforces the rate limit, or only observes it ([`PolicyMode`]).
    pub fn mode(mut self, mode: PolicyMode) -> Self {
        self.mode = mode;
        self
    }

    /// Only observes: tokens are taken as configured, nothing is refused or waited for
    /// ([`PolicyMode::Observe`]).
    pub fn observe(self) -> Self {
        self.mode(PolicyMode::Observe)
    }

    /// Checks every field; the error names `rate`, `burst` or `retry_after_factor`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&self.rate)) {
            return Err(ConfigError::invalid(
                "rate",
                "must be a number of tokens per second between 1e-9 and 1e9",
            ));
        }
        if self.burst == 0 {
            return Err(ConfigError::invalid("burst", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.retry_after_factor) {
            return Err(ConfigError::invalid(
                "retry_after_factor",
                "must be a number in [0, 1]",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_builders() {
        let c = RateLimitConfig::default();
        assert_eq!((c.rate, c.burst, c.max_wait), (100.0, 100, Duration::ZERO));
        assert_eq!(c.validate(), Ok(()));
        let c = RateLimitConfig::per_second(2.5).max_wait(Duration::from_millis(300));
        assert_eq!((c.rate, c.burst), (2.5, 3));
        assert_eq!(c.max_wait, Duration::from_millis(300));
        assert_eq!(RateLimitConfig::per_second(0.1).burst, 1);
        assert_eq!(RateLimitConfig::per_second(5.0).burst(1).burst, 1);
    }

    #[test]
    fn validate_names_each_invalid_field() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-10, 2e9] {
            let err = RateLimitConfig::per_second(rate).validate().unwrap_err();
            assert_eq!(err.field(), Some("rate"), "{rate}");
        }
        for rate in [1e-9, 0.5, 1e9] {
            assert_eq!(
                RateLimitConfig::per_second(rate).validate(),
                Ok(()),
                "{rate}"
            );
        }
        let err = RateLimitConfig::default().burst(0).validate().unwrap_err();
        assert_eq!(err.field(), Some("burst"));
    }

    #[test]
    fn toml_round_trips_and_rejects_unknown_keys() {
        let c: RateLimitConfig =
            toml::from_str("rate = 50.0\nburst = 10\nmax_wait = \"200ms\"").unwrap();
        assert_eq!(
            c,
            RateLimitConfig {
                rate: 50.0,
                burst: 10,
                max_wait: Duration::from_millis(200),
                retry_after_factor: 0.5,
                mode: PolicyMode::Enforce,
            }
        );
        assert_eq!(
            toml::from_str::<RateLimitConfig>("").unwrap(),
            RateLimitConfig::default()
        );
        let back: RateLimitConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        for text in ["rate_per_second = 5.0", "burst = -1", "max_wait = 5"] {
            assert!(toml::from_str::<RateLimitConfig>(text).is_err(), "{text}");
        }
    }
}
