//! Breaker configuration: trip policies, window, open duration and half-open probing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::open_duration::OpenDuration;
use super::sliding_window::SlidingWindow;
use crate::error::ConfigError;
use crate::mode::PolicyMode;

/// Configuration of one circuit breaker.
///
/// Three trip policies, each optional (at least one must be on): consecutive failures,
/// failure rate and slow-call rate. In TOML a policy is turned off with `"off"`, e.g.
/// `failure_rate_threshold = "off"`.
///
/// ```toml
/// consecutive_failures = 5
/// failure_rate_threshold = 0.5
/// slow_call_rate_threshold = 0.8
/// slow_call_duration = "2s"
/// window = { kind = "time", duration = "10s" }
/// minimum_calls = 20
/// open_duration = { base = "30s", max = "5m", multiplier = 2.0, jitter = 0.1 }
/// half_open_probes = 1
/// half_open_max_wait = "60s"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Trip after this many failures in a row. Default `Some(5)`; `None` turns it off.
    #[serde(with = "crate::off::count")]
    pub consecutive_failures: Option<u32>,
    /// Trip when the window's failure rate is at least this (in `(0, 1]`). Default `Some(0.5)`.
    #[serde(with = "crate::off::rate")]
    pub failure_rate_threshold: Option<f64>,
    /// Trip when the window's slow-call rate is at least this (in `(0, 1]`). Default `None`.
    /// When set, a slow successful probe also counts as a failed probe.
    #[serde(with = "crate::off::rate")]
    pub slow_call_rate_threshold: Option<f64>,
    /// A call taking at least this long is slow. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub slow_call_duration: Duration,
    /// Calls the rates are computed over. Default: the last 100 calls.
    pub window: SlidingWindow,
    /// Rates are evaluated only once the window holds at least this many calls. Default 20.
    /// For a count window the effective minimum is `min(minimum_calls, size)`.
    pub minimum_calls: u32,
    /// How long the breaker stays open. Default: fixed 30 s.
    pub open_duration: OpenDuration,
    /// Probe calls admitted in HalfOpen; all must succeed to close. Default 1.
    pub half_open_probes: u32,
    /// Longest time HalfOpen may wait for a decision before reopening. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub half_open_max_wait: Duration,
    /// `enforce` (the default) or `observe`: trip, probe and recover as configured, but refuse
    /// nothing while open; a call an open breaker would refuse runs, counted
    /// `would_reject{reason="open"}`, and its outcome is not recorded into the breaker (see
    /// [`PolicyMode`]). A breaker forced open by an operator refuses in either mode.
    #[serde(skip_serializing_if = "crate::mode::is_enforce")]
    pub mode: PolicyMode,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: Some(5),
            failure_rate_threshold: Some(0.5),
            slow_call_rate_threshold: None,
            slow_call_duration: Duration::from_secs(5),
            window: SlidingWindow::default(),
            minimum_calls: 20,
            open_duration: OpenDuration::default(),
            half_open_probes: 1,
            half_open_max_wait: Duration::from_secs(60),
            mode: PolicyMode::Enforce,
        }
    }
}

impl BreakerConfig {
    /// Defaults, tripping only on `failures` consecutive failures (rate policies off).
    pub fn consecutive(failures: u32) -> Self {
        BreakerConfig {
            consecutive_failures: Some(failures),
            failure_rate_threshold: None,
            ..BreakerConfig::default()
        }
    }

    /// Also trip when the failure rate over `window` reaches `threshold`, once the window
    /// holds `minimum_calls` calls.
    pub fn failure_rate(
        mut self,
        threshold: f64,
        window: SlidingWindow,
        minimum_calls: u32,
    ) -> Self {
        self.failure_rate_threshold = Some(threshold);
        self.window = window;
        self.minimum_calls = minimum_calls;
        self
    }

    /// Also trip when the rate of calls taking at least `duration` reaches `rate`.
    pub fn slow_calls(mut self, rate: f64, duration: Duration) -> Self {
        self.slow_call_rate_threshold = Some(rate);
        self.slow_call_duration = duration;
        self
    }

    /// Stay open for `duration` every time (keeps the configured jitter).
    pub fn open_for(mut self, duration: Duration) -> Self {
        self.open_duration.base = duration;
        self.open_duration.max = duration;
        self
    }

    /// Stay open `base`, growing by `multiplier` after each failed probe up to `max` (keeps
    /// the configured jitter).
    pub fn open_exponential(mut self, base: Duration, max: Duration, multiplier: f64) -> Self {
        self.open_duration.base = base;
        self.open_duration.max = max;
        self.open_duration.multiplier = multiplier;
        self
    }

    /// Randomize each open duration by ± `jitter` (relative, in `[0, 1)`).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.open_duration.jitter = jitter;
        self
    }

    /// Admit `probes` probe calls in HalfOpen.
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// Reopen when HalfOpen has not decided within `wait`.
    pub fn half_open_max_wait(mut self, wait: Duration) -> Self {
        self.half_open_max_wait = wait;
        self
    }

    /// Enforces the breaker's decisions, or only observes them ([`PolicyMode`]).
    pub fn mode(mut self, mode: PolicyMode) -> Self {
        self.mode = mode;
        self
    }

    /// Only observes: the breaker decides as configured and refuses nothing
    /// ([`PolicyMode::Observe`]).
    pub fn observe(self) -> Self {
        self.mode(PolicyMode::Observe)
    }

    /// Check every field; the error names the first offending one (`window.size`,
    /// `open_duration.max`, ...).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.consecutive_failures == Some(0) {
            return Err(ConfigError::invalid(
                "consecutive_failures",
                "must be greater than zero",
            ));
        }
        validate_rate("failure_rate_threshold", self.failure_rate_threshold)?;
        validate_rate("slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        if self.consecutive_failures.is_none()
            && self.failure_rate_threshold.is_none()
            && self.slow_call_rate_threshold.is_none()
        {
            return Err(ConfigError::invalid(
                "consecutive_failures",
                "at least one trip policy must be enabled",
            ));
        }
        if self.slow_call_duration.is_zero() {
            return Err(ConfigError::invalid(
                "slow_call_duration",
                "must be greater than zero",
            ));
        }
        self.window.validate().map_err(|e| e.within("window"))?;
        if self.minimum_calls == 0 {
            return Err(ConfigError::invalid(
                "minimum_calls",
                "must be greater than zero",
            ));
        }
        self.open_duration
            .validate()
            .map_err(|e| e.within("open_duration"))?;
        if self.half_open_probes == 0 {
            return Err(ConfigError::invalid(
                "half_open_probes",
                "must be greater than zero",
            ));
        }
        if self.half_open_max_wait.is_zero() {
            return Err(ConfigError::invalid(
                "half_open_max_wait",
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    /// Calls the window must hold before rates are evaluated.
    pub(crate) fn effective_minimum_calls(&self) -> u64 {
        match self.window {
            SlidingWindow::Count { size } => u64::from(self.minimum_calls.min(size)),
            SlidingWindow::Time { .. } => u64::from(self.minimum_calls),
        }
    }
}

fn validate_rate(field: &str, rate: Option<f64>) -> Result<(), ConfigError> {
    match rate {
        Some(x) if !(x.is_finite() && x > 0.0 && x <= 1.0) => Err(ConfigError::invalid(
            field,
            "must be greater than zero and at most 1.0",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn defaults_are_documented_values_and_valid() {
        let c = BreakerConfig::default();
        assert_eq!(c.consecutive_failures, Some(5));
        assert_eq!(c.failure_rate_threshold, Some(0.5));
        assert_eq!(c.slow_call_rate_threshold, None);
        assert_eq!(c.slow_call_duration, secs(5));
        assert_eq!(c.window, SlidingWindow::Count { size: 100 });
        assert_eq!(c.minimum_calls, 20);
        assert_eq!(
            c.open_duration,
            OpenDuration {
                base: secs(30),
                max: secs(30),
                multiplier: 2.0,
                jitter: 0.0
            }
        );
        assert_eq!(c.half_open_probes, 1);
        assert_eq!(c.half_open_max_wait, secs(60));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn builders_compose() {
        let c = BreakerConfig::consecutive(3)
            .failure_rate(0.25, SlidingWindow::Time { duration: secs(10) }, 4)
            .slow_calls(0.8, secs(2))
            .jitter(0.1)
            .open_exponential(secs(1), secs(8), 3.0)
            .half_open_probes(2)
            .half_open_max_wait(secs(9));
        assert_eq!(c.consecutive_failures, Some(3));
        assert_eq!(c.failure_rate_threshold, Some(0.25));
        assert_eq!(c.window, SlidingWindow::Time { duration: secs(10) });
        assert_eq!(c.minimum_calls, 4);
        assert_eq!(c.slow_call_rate_threshold, Some(0.8));
        assert_eq!(c.slow_call_duration, secs(2));
        assert_eq!(
            c.open_duration,
            OpenDuration {
                base: secs(1),
                max: secs(8),
                multiplier: 3.0,
                jitter: 0.1
            }
        );
        assert_eq!((c.half_open_probes, c.half_open_max_wait), (2, secs(9)));
        assert!(c.validate().is_ok());
        let fixed = BreakerConfig::consecutive(1).open_for(secs(7));
        assert_eq!(fixed.failure_rate_threshold, None);
        assert_eq!(
            (fixed.open_duration.base, fixed.open_duration.max),
            (secs(7), secs(7))
        );
    }

    #[test]
    fn validate_names_each_invalid_field() {
        let d = BreakerConfig::default;
        let cases: Vec<(BreakerConfig, &str)> = vec![
            (
                BreakerConfig {
                    consecutive_failures: Some(0),
                    ..d()
                },
                "consecutive_failures",
            ),
            (
                BreakerConfig {
                    failure_rate_threshold: Some(0.0),
                    ..d()
                },
                "failure_rate_threshold",
            ),
            (
                BreakerConfig {
                    failure_rate_threshold: Some(1.5),
                    ..d()
                },
                "failure_rate_threshold",
            ),
            (
                BreakerConfig {
                    failure_rate_threshold: Some(f64::NAN),
                    ..d()
                },
                "failure_rate_threshold",
            ),
            (
                BreakerConfig {
                    slow_call_rate_threshold: Some(-0.1),
                    ..d()
                },
                "slow_call_rate_threshold",
            ),
            (
                BreakerConfig {
                    slow_call_rate_threshold: Some(f64::INFINITY),
                    ..d()
                },
                "slow_call_rate_threshold",
            ),
            (
                BreakerConfig {
                    slow_call_duration: Duration::ZERO,
                    ..d()
                },
                "slow_call_duration",
            ),
            (
                BreakerConfig {
                    window: SlidingWindow::Count { size: 0 },
                    ..d()
                },
                "window.size",
            ),
            (
                BreakerConfig {
                    window: SlidingWindow::Time {
                        duration: Duration::ZERO,
                    },
                    ..d()
                },
                "window.duration",
            ),
            (
                BreakerConfig {
                    minimum_calls: 0,
                    ..d()
                },
                "minimum_calls",
            ),
            (
                BreakerConfig {
                    open_duration: OpenDuration {
                        base: Duration::ZERO,
                        ..OpenDuration::default()
                    },
                    ..d()
                },
                "open_duration.base",
            ),
            (
                d().open_exponential(secs(10), secs(1), 2.0),
                "open_duration.max",
            ),
            (
                d().open_exponential(secs(1), secs(10), 0.9),
                "open_duration.multiplier",
            ),
            (d().jitter(1.0), "open_duration.jitter"),
            (
                BreakerConfig {
                    half_open_probes: 0,
                    ..d()
                },
                "half_open_probes",
            ),
            (
                BreakerConfig {
                    half_open_max_wait: Duration::ZERO,
                    ..d()
                },
                "half_open_max_wait",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().expect_err(field);
            assert_eq!(err.field(), Some(field), "{err}");
        }
        // 1.0 is an allowed rate
        assert!(BreakerConfig {
            failure_rate_threshold: Some(1.0),
            ..d()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn validate_requires_a_trip_policy() {
        let c = BreakerConfig {
            consecutive_failures: None,
            failure_rate_threshold: None,
            slow_call_rate_threshold: None,
            ..BreakerConfig::default()
        };
        let err = c.validate().unwrap_err();
        assert_eq!(
            err,
            ConfigError::invalid(
                "consecutive_failures",
                "at least one trip policy must be enabled"
            )
        );
        let only_slow = BreakerConfig {
            slow_call_rate_threshold: Some(0.5),
            ..c
        };
        assert!(only_slow.validate().is_ok());
    }

    #[test]
    fn toml_deserializes_full_config() {
        let c: BreakerConfig = toml::from_str(
            r#"
            consecutive_failures = 7
            failure_rate_threshold = 0.4
            slow_call_rate_threshold = 1
            slow_call_duration = "1500ms"
            window = { kind = "time", duration = "10s" }
            minimum_calls = 10
            open_duration = { base = "30s", max = "5m", multiplier = 2.0, jitter = 0.1 }
            half_open_probes = 3
            half_open_max_wait = "2m"
            "#,
        )
        .expect("parses");
        assert_eq!(
            c,
            BreakerConfig {
                consecutive_failures: Some(7),
                failure_rate_threshold: Some(0.4),
                slow_call_rate_threshold: Some(1.0),
                slow_call_duration: Duration::from_millis(1500),
                window: SlidingWindow::Time { duration: secs(10) },
                minimum_calls: 10,
                open_duration: OpenDuration {
                    base: secs(30),
                    max: secs(300),
                    multiplier: 2.0,
                    jitter: 0.1
                },
                half_open_probes: 3,
                half_open_max_wait: secs(120),
                mode: PolicyMode::Enforce,
            }
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn toml_missing_keys_take_defaults_and_false_turns_policies_off() {
        let c: BreakerConfig = toml::from_str("").expect("parses");
        assert_eq!(c, BreakerConfig::default());
        let c: BreakerConfig = toml::from_str(
            r#"
            consecutive_failures = "off"
            window = { kind = "count", size = 50 }
            open_duration = { max = "1m" }
            "#,
        )
        .expect("parses");
        assert_eq!(c.consecutive_failures, None);
        assert_eq!(c.failure_rate_threshold, Some(0.5));
        assert_eq!(c.window, SlidingWindow::Count { size: 50 });
        assert_eq!(c.open_duration.base, secs(30));
        assert_eq!(c.open_duration.max, secs(60));
    }

    #[test]
    fn toml_rejects_unknown_keys_and_bad_values() {
        for text in [
            "consecutive_failure = 3",
            r#"window = { kind = "count", size = 5, duration = "1s" }"#,
            r#"window = { kind = "sliding", size = 5 }"#,
            r#"open_duration = { base = "1s", maximum = "2s" }"#,
            "consecutive_failures = true",
            "consecutive_failures = 2.5",
            "consecutive_failures = -1",
            r#"half_open_max_wait = "soon""#,
        ] {
            assert!(toml::from_str::<BreakerConfig>(text).is_err(), "{text}");
        }
        let err = toml::from_str::<BreakerConfig>("consecutive_failure = 3").unwrap_err();
        assert!(err.to_string().contains("consecutive_failure"), "{err}");
    }

    #[test]
    fn serialization_round_trips_including_disabled_policies() {
        let c = BreakerConfig::consecutive(4).jitter(0.25);
        let text = toml::to_string(&c).expect("serializes");
        assert!(text.contains("failure_rate_threshold = \"off\""), "{text}");
        let back: BreakerConfig = toml::from_str(&text).expect("parses");
        assert_eq!(back, c);
        let json = serde_json::to_string(&c).expect("json");
        assert_eq!(
            serde_json::from_str::<BreakerConfig>(&json).expect("json back"),
            c
        );
    }

    #[test]
    fn count_window_caps_the_minimum_calls() {
        let c = BreakerConfig::default().failure_rate(0.5, SlidingWindow::Count { size: 10 }, 20);
        assert_eq!(c.effective_minimum_calls(), 10);
        let c = c.failure_rate(0.5, SlidingWindow::Time { duration: secs(1) }, 20);
        assert_eq!(c.effective_minimum_calls(), 20);
    }
}
