//! [`HealthConfig`]: window bounds and classification thresholds, with validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How a [`HealthWindow`](super::HealthWindow) samples calls and how
/// [`HealthConfig::classify`] judges them.
///
/// TOML example (every key optional, durations human-readable):
///
/// ```toml
/// window_size = 200
/// max_age = "30s"
/// minimum_calls = 20
/// degraded_success_rate = 0.99
/// unhealthy_success_rate = 0.8
/// degraded_latency = "250ms"
/// unhealthy_latency = "2s"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Keep at most this many most recent samples. Default 100. Must be at least 1.
    pub window_size: u32,
    /// Samples older than this, relative to the `now` of the query, are ignored. `None` keeps
    /// samples until the ring overwrites them. Default 60s. Must be greater than zero when set.
    #[serde(with = "crate::off::duration")]
    pub max_age: Option<Duration>,
    /// With fewer samples than this in the window, rates and latencies are not judged and the
    /// status depends on the breaker alone. Default 10. Must be in `1..=window_size`.
    pub minimum_calls: u32,
    /// A success rate strictly below this is [`Degraded`](super::HealthStatus::Degraded).
    /// Default 0.95. Must be finite and in `[0, 1]`.
    pub degraded_success_rate: f64,
    /// A success rate strictly below this is [`Unhealthy`](super::HealthStatus::Unhealthy).
    /// Default 0.5. Must be finite, in `[0, 1]` and not above `degraded_success_rate`.
    pub unhealthy_success_rate: f64,
    /// A p95 latency strictly above this is [`Degraded`](super::HealthStatus::Degraded);
    /// `None` disables the check. Default 1s. Must be greater than zero when set.
    #[serde(with = "crate::off::duration")]
    pub degraded_latency: Option<Duration>,
    /// A p95 latency strictly above this is [`Unhealthy`](super::HealthStatus::Unhealthy);
    /// `None` disables the check. Default 5s. Must be greater than zero when set and not below
    /// `degraded_latency` when both are set.
    #[serde(with = "crate::off::duration")]
    pub unhealthy_latency: Option<Duration>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            window_size: 100,
            max_age: Some(Duration::from_secs(60)),
            minimum_calls: 10,
            degraded_success_rate: 0.95,
            unhealthy_success_rate: 0.5,
            degraded_latency: Some(Duration::from_secs(1)),
            unhealthy_latency: Some(Duration::from_secs(5)),
        }
    }
}

impl HealthConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window_size == 0 {
            return Err(ConfigError::invalid(
                "window_size",
                "must be greater than zero",
            ));
        }
        if self.max_age == Some(Duration::ZERO) {
            return Err(ConfigError::invalid("max_age", "must be greater than zero"));
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::invalid(
                "minimum_calls",
                "must be greater than zero",
            ));
        }
        if self.minimum_calls > self.window_size {
            return Err(ConfigError::invalid(
                "minimum_calls",
                "must not exceed `window_size`",
            ));
        }
        check_rate("degraded_success_rate", self.degraded_success_rate)?;
        check_rate("unhealthy_success_rate", self.unhealthy_success_rate)?;
        if self.unhealthy_success_rate > self.degraded_success_rate {
            return Err(ConfigError::invalid(
                "unhealthy_success_rate",
                "must not exceed `degraded_success_rate`",
            ));
        }
        if self.degraded_latency == Some(Duration::ZERO) {
            return Err(ConfigError::invalid(
                "degraded_latency",
                "must be greater than zero",
            ));
        }
        if self.unhealthy_latency == Some(Duration::ZERO) {
            return Err(ConfigError::invalid(
                "unhealthy_latency",
                "must be greater than zero",
            ));
        }
        if let (Some(degraded), Some(unhealthy)) = (self.degraded_latency, self.unhealthy_latency) {
            if unhealthy < degraded {
                return Err(ConfigError::invalid(
                    "unhealthy_latency",
                    "must not be less than `degraded_latency`",
                ));
            }
        }
        Ok(())
    }
}

fn check_rate(field: &str, rate: f64) -> Result<(), ConfigError> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, "must be between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &HealthConfig) -> Option<String> {
        config
            .validate()
            .err()
            .and_then(|e| e.field().map(str::to_owned))
    }

    #[test]
    fn default_is_valid_and_matches_documented_values() {
        let config = HealthConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.window_size, 100);
        assert_eq!(config.max_age, Some(Duration::from_secs(60)));
        assert_eq!(config.minimum_calls, 10);
        assert_eq!(config.degraded_success_rate, 0.95);
        assert_eq!(config.unhealthy_success_rate, 0.5);
        assert_eq!(config.degraded_latency, Some(Duration::from_secs(1)));
        assert_eq!(config.unhealthy_latency, Some(Duration::from_secs(5)));
    }

    #[test]
    fn validate_rejects_each_invalid_field_by_name() {
        let base = HealthConfig::default();
        let cases: Vec<(HealthConfig, &str)> = vec![
            (
                HealthConfig {
                    window_size: 0,
                    ..base.clone()
                },
                "window_size",
            ),
            (
                HealthConfig {
                    max_age: Some(Duration::ZERO),
                    ..base.clone()
                },
                "max_age",
            ),
            (
                HealthConfig {
                    minimum_calls: 0,
                    ..base.clone()
                },
                "minimum_calls",
            ),
            (
                HealthConfig {
                    minimum_calls: 101,
                    ..base.clone()
                },
                "minimum_calls",
            ),
            (
                HealthConfig {
                    degraded_success_rate: 1.5,
                    ..base.clone()
                },
                "degraded_success_rate",
            ),
            (
                HealthConfig {
                    degraded_success_rate: f64::NAN,
                    ..base.clone()
                },
                "degraded_success_rate",
            ),
            (
                HealthConfig {
                    unhealthy_success_rate: -0.1,
                    ..base.clone()
                },
                "unhealthy_success_rate",
            ),
            (
                HealthConfig {
                    unhealthy_success_rate: f64::INFINITY,
                    ..base.clone()
                },
                "unhealthy_success_rate",
            ),
            (
                HealthConfig {
                    unhealthy_success_rate: 0.96,
                    ..base.clone()
                },
                "unhealthy_success_rate",
            ),
            (
                HealthConfig {
                    degraded_latency: Some(Duration::ZERO),
                    ..base.clone()
                },
                "degraded_latency",
            ),
            (
                HealthConfig {
                    unhealthy_latency: Some(Duration::ZERO),
                    ..base.clone()
                },
                "unhealthy_latency",
            ),
            (
                HealthConfig {
                    unhealthy_latency: Some(Duration::from_millis(999)),
                    ..base.clone()
                },
                "unhealthy_latency",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(field_of(&config).as_deref(), Some(field), "{config:?}");
        }
    }

    #[test]
    fn validate_accepts_edge_values() {
        let config = HealthConfig {
            window_size: 1,
            max_age: None,
            minimum_calls: 1,
            degraded_success_rate: 0.0,
            unhealthy_success_rate: 0.0,
            degraded_latency: None,
            unhealthy_latency: Some(Duration::from_nanos(1)),
        };
        assert_eq!(config.validate(), Ok(()));
        let equal_thresholds = HealthConfig {
            degraded_success_rate: 1.0,
            unhealthy_success_rate: 1.0,
            degraded_latency: Some(Duration::from_secs(2)),
            unhealthy_latency: Some(Duration::from_secs(2)),
            ..HealthConfig::default()
        };
        assert_eq!(equal_thresholds.validate(), Ok(()));
    }

    #[test]
    fn validate_error_message_names_field() {
        let config = HealthConfig {
            window_size: 0,
            ..HealthConfig::default()
        };
        let message = config.validate().err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("invalid `window_size`: must be greater than zero")
        );
    }

    #[test]
    fn toml_deserializes_with_human_readable_durations() {
        let text = r#"
            window_size = 50
            max_age = "30s"
            minimum_calls = 5
            unhealthy_success_rate = 0.8
            degraded_latency = "250ms"
        "#;
        let config: HealthConfig = toml::from_str(text).expect("valid toml");
        assert_eq!(
            config,
            HealthConfig {
                window_size: 50,
                max_age: Some(Duration::from_secs(30)),
                minimum_calls: 5,
                unhealthy_success_rate: 0.8,
                degraded_latency: Some(Duration::from_millis(250)),
                ..HealthConfig::default()
            }
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn toml_rejects_unknown_key() {
        let error = toml::from_str::<HealthConfig>("window_sise = 10")
            .expect_err("unknown key must be rejected");
        assert!(error.to_string().contains("window_sise"), "{error}");
    }

    #[test]
    fn empty_toml_gives_defaults() {
        let config: HealthConfig = toml::from_str("").expect("empty toml");
        assert_eq!(config, HealthConfig::default());
    }
}
