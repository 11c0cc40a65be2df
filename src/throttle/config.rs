//! [`ThrottleConfig`]: the multiplier `k`, the window, and the bounds on rejection.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::mode::PolicyMode;

/// Most buckets a window may be split into.
const MAX_BUCKETS: u32 = 1_000;
/// Narrowest bucket a valid configuration may produce.
const MIN_BUCKET_WIDTH: Duration = Duration::from_millis(1);

/// Settings of one adaptive [`Throttle`](super::Throttle).
///
/// The window of length `window` is split into `buckets` buckets of `window / buckets`
/// (truncated to whole nanoseconds), aligned to the first instant the throttle sees. A request
/// or accept counts while the bucket holding `now` is fewer than `buckets` buckets after the one
/// it was counted in, so it leaves the window between `window − window / buckets` and `window`
/// after it happened. An instant earlier than the latest one seen counts in the newest bucket.
///
/// ```toml
/// k = 2.0
/// window = "2m"
/// buckets = 12
/// minimum_requests = 20
/// max_reject_probability = 0.9
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// How many requests per accept the client may send before it starts rejecting: finite and
    /// at least 1.0. Lower is more aggressive. Default 2.0 (SRE book).
    pub k: f64,
    /// How far back requests and accepts count. Default 2 min.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Buckets the window is split into, 1 to 1000, each at least 1 ms wide. Default 12.
    pub buckets: u32,
    /// Nothing is rejected while the window holds fewer requests than this. Default 20.
    pub minimum_requests: u32,
    /// Upper bound of the reject probability, in `[0, 1]` (0 never rejects). Default 0.9, so
    /// some requests always reach the backend and can see it recover.
    pub max_reject_probability: f64,
    /// `enforce` (the default) or `observe`: the reject probability is computed and published
    /// as configured, but nothing is refused; a call the throttle would refuse runs, counted
    /// `would_reject{reason="throttled"}` (and as a refused request in the throttle's window,
    /// as when enforced), and its attempts are not counted as accepts (see [`PolicyMode`]).
    #[serde(skip_serializing_if = "crate::mode::is_enforce")]
    pub mode: PolicyMode,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            k: 2.0,
            window: Duration::from_secs(120),
            buckets: 12,
            minimum_requests: 20,
            max_reject_probability: 0.9,
            mode: PolicyMode::Enforce,
        }
    }
}

impl ThrottleConfig {
    /// Sets the multiplier `k`.
    pub fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// Sets the window length and the number of buckets it is split into.
    pub fn window(mut self, window: Duration, buckets: u32) -> Self {
        self.window = window;
        self.buckets = buckets;
        self
    }

    /// Enforces the throttle's decisions, or only observes them ([`PolicyMode`]).
    pub fn mode(mut self, mode: PolicyMode) -> Self {
        self.mode = mode;
        self
    }

    /// Only observes: the throttle decides as configured and refuses nothing
    /// ([`PolicyMode::Observe`]).
    pub fn observe(self) -> Self {
        self.mode(PolicyMode::Observe)
    }

    /// Checks every field; the error names the first offending one (`k`, `window`, `buckets`,
    /// `max_reject_probability`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.k.is_finite() && self.k >= 1.0) {
            // Below 1 a backend accepting every request would still be throttled.
            return Err(ConfigError::invalid(
                "k",
                "must be a finite number of at least 1.0",
            ));
        }
        if self.window.is_zero() {
            return Err(ConfigError::invalid("window", "must be greater than zero"));
        }
        if !(1..=MAX_BUCKETS).contains(&self.buckets) {
            return Err(ConfigError::invalid(
                "buckets",
                format!("must be between 1 and {MAX_BUCKETS}"),
            ));
        }
        if self.window / self.buckets < MIN_BUCKET_WIDTH {
            return Err(ConfigError::invalid(
                "buckets",
                "must leave each bucket (window / buckets) at least 1ms wide",
            ));
        }
        if !(self.max_reject_probability.is_finite()
            && (0.0..=1.0).contains(&self.max_reject_probability))
        {
            return Err(ConfigError::invalid(
                "max_reject_probability",
                "must be a finite number between 0 and 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values_and_valid() {
        let c = ThrottleConfig::default();
        assert_eq!(c.k, 2.0);
        assert_eq!(c.window, Duration::from_secs(120));
        assert_eq!(c.buckets, 12);
        assert_eq!(c.minimum_requests, 20);
        assert_eq!(c.max_reject_probability, 0.9);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validate_names_each_invalid_field() {
        let d = ThrottleConfig::default;
        let cases: Vec<(ThrottleConfig, &str)> = vec![
            (d().k(0.99), "k"),
            (d().k(0.0), "k"),
            (d().k(f64::NAN), "k"),
            (d().k(f64::INFINITY), "k"),
            (d().window(Duration::ZERO, 10), "window"),
            (d().window(Duration::from_secs(1), 0), "buckets"),
            (d().window(Duration::from_secs(10), 1_001), "buckets"),
            (d().window(Duration::from_millis(9), 10), "buckets"),
            (
                ThrottleConfig {
                    max_reject_probability: 1.01,
                    ..d()
                },
                "max_reject_probability",
            ),
            (
                ThrottleConfig {
                    max_reject_probability: -0.1,
                    ..d()
                },
                "max_reject_probability",
            ),
            (
                ThrottleConfig {
                    max_reject_probability: f64::NAN,
                    ..d()
                },
                "max_reject_probability",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().expect_err(field);
            assert_eq!(err.field(), Some(field), "{err}");
        }
        for ok in [
            d().k(1.0),
            d().window(Duration::from_millis(10), 10),
            d().window(Duration::from_secs(1000), 1_000),
            ThrottleConfig {
                max_reject_probability: 0.0,
                minimum_requests: 0,
                ..d()
            },
            ThrottleConfig {
                max_reject_probability: 1.0,
                ..d()
            },
        ] {
            assert_eq!(ok.validate(), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn toml_reads_values_fills_defaults_and_rejects_unknown_keys() {
        let c: ThrottleConfig = toml::from_str(
            r#"
            k = 1.5
            window = "30s"
            buckets = 30
            minimum_requests = 5
            max_reject_probability = 0.5
            "#,
        )
        .expect("parses");
        assert_eq!(
            c,
            ThrottleConfig {
                k: 1.5,
                window: Duration::from_secs(30),
                buckets: 30,
                minimum_requests: 5,
                max_reject_probability: 0.5,
                mode: PolicyMode::Enforce,
            }
        );
        assert_eq!(toml::from_str::<ThrottleConfig>("").unwrap(), d());
        for text in ["multiplier = 2.0", "window = \"soon\"", "buckets = -1"] {
            assert!(toml::from_str::<ThrottleConfig>(text).is_err(), "{text}");
        }
        let back: ThrottleConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    fn d() -> ThrottleConfig {
        ThrottleConfig::default()
    }
}
