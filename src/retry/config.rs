//! [`RetryConfig`] and [`BudgetConfig`]: how many attempts, which backoff, and how many
//! retries the dependency can absorb.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Backoff;
use crate::error::ConfigError;

/// Retry settings for one dependency.
///
/// Defaults follow Resilience4j: 3 attempts in total, exponential backoff from 500 ms doubling,
/// capped at 10 s, with the default [`BudgetConfig`].
///
/// ```toml
/// max_attempts = 4
/// max_delay = "2s"
/// backoff = { kind = "full_jitter", base = "100ms" }
///
/// [budget]
/// ratio = 0.1
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Total attempts including the first; 1 means no retries. Default 3.
    pub max_attempts: u32,
    /// Delay schedule between attempts. Default `Exponential { base: 500ms, factor: 2.0 }`.
    pub backoff: Backoff,
    /// Upper bound of every delay; a server retry-after hint longer than this stops retrying.
    /// Must be at least the backoff base. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Limit on retries relative to recent calls; `budget = "off"` in TOML turns it off.
    #[serde(with = "budget_or_off")]
    pub budget: BudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            backoff: Backoff::Exponential {
                base: Duration::from_millis(500),
                factor: 2.0,
            },
            max_delay: Duration::from_secs(10),
            budget: BudgetConfig::default(),
        }
    }
}

impl RetryConfig {
    /// Retries off: a single attempt, never retried (other fields at their defaults).
    pub fn off() -> Self {
        RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        }
    }

    /// `attempts` attempts in total with the same `delay` between them.
    pub fn constant(attempts: u32, delay: Duration) -> Self {
        RetryConfig {
            max_attempts: attempts,
            backoff: Backoff::Constant { delay },
            ..RetryConfig::default()
        }
    }

    /// `attempts` attempts in total with delays `base`, `2 * base`, `4 * base`, ...
    pub fn exponential(attempts: u32, base: Duration) -> Self {
        RetryConfig {
            max_attempts: attempts,
            backoff: Backoff::Exponential { base, factor: 2.0 },
            ..RetryConfig::default()
        }
    }

    /// Switches to [`Backoff::FullJitter`] keeping the current base delay.
    pub fn full_jitter(mut self) -> Self {
        self.backoff = Backoff::FullJitter {
            base: self.backoff.base(),
        };
        self
    }

    /// Switches to [`Backoff::DecorrelatedJitter`] keeping the current base delay.
    pub fn decorrelated_jitter(mut self) -> Self {
        self.backoff = Backoff::DecorrelatedJitter {
            base: self.backoff.base(),
        };
        self
    }

    /// Sets [`max_delay`](RetryConfig#structfield.max_delay).
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets the retry budget.
    pub fn budget(mut self, budget: BudgetConfig) -> Self {
        self.budget = budget;
        self
    }

    /// Checks every field; the error names the first offending one (`max_attempts`,
    /// `backoff.base`, `backoff.factor`, `max_delay`, `budget.ratio`, `budget.window`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::invalid("max_attempts", "must be at least 1"));
        }
        self.backoff.validate().map_err(|e| e.within("backoff"))?;
        if self.max_delay.is_zero() {
            return Err(ConfigError::invalid(
                "max_delay",
                "must be greater than zero",
            ));
        }
        if self.max_delay < self.backoff.base() {
            return Err(ConfigError::invalid(
                "max_delay",
                "must be at least the backoff base delay",
            ));
        }
        self.budget.validate().map_err(|e| e.within("budget"))
    }
}

/// Retry budget: how many retries the dependency can absorb, as a floor plus a fraction of
/// recent calls (Finagle's `RetryBudget`).
///
/// Over a sliding `window`, `floor(min_per_second * window_secs + ratio * calls)` retries are
/// allowed. With the defaults (20 % + 10/s over 10 s) an outage of 10 000 calls in 10 s gets
/// at most 100 + 2 000 retries: load amplification is bounded at 1.21.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Whether retries are limited at all. Default true; [`BudgetConfig::off`] (`budget =
    /// "off"` in TOML) turns it off.
    #[serde(skip)]
    pub enabled: bool,
    /// Retries allowed as a fraction of calls (first attempts) in the window; finite, in
    /// `[0, 1]`, used with a precision of 1e-6. Default 0.2.
    pub ratio: f64,
    /// Retries per second always allowed, even without traffic. Default 10.
    pub min_per_second: u32,
    /// Length of the sliding window; at least 1 s. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            enabled: true,
            ratio: 0.2,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

impl BudgetConfig {
    /// The budget off: retries are limited only by the attempts.
    pub fn off() -> Self {
        BudgetConfig {
            enabled: false,
            ..BudgetConfig::default()
        }
    }

    /// Checks every field (also when disabled); the error names `ratio` or `window`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.ratio.is_finite() && (0.0..=1.0).contains(&self.ratio)) {
            return Err(ConfigError::invalid(
                "ratio",
                "must be a finite number between 0 and 1",
            ));
        }
        if self.window < Duration::from_secs(1) {
            return Err(ConfigError::invalid("window", "must be at least 1s"));
        }
        Ok(())
    }
}

/// `budget`: a table, or `"off"` (the one spelling of off, see `crate::off`).
mod budget_or_off {
    use std::fmt;

    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::BudgetConfig;

    pub(super) fn serialize<S: Serializer>(budget: &BudgetConfig, s: S) -> Result<S::Ok, S::Error> {
        if budget.enabled {
            budget.serialize(s)
        } else {
            s.serialize_str("off")
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BudgetConfig, D::Error> {
        d.deserialize_any(TableOrOff)
    }

    struct TableOrOff;

    impl<'de> Visitor<'de> for TableOrOff {
        type Value = BudgetConfig;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a budget table, or \"off\" to turn it off")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<BudgetConfig, E> {
            if v.eq_ignore_ascii_case("off") {
                Ok(BudgetConfig::off())
            } else {
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }

        // A table keeps its own errors (with their field paths).
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BudgetConfig, A::Error> {
            BudgetConfig::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn invalid_field(config: &RetryConfig) -> String {
        match config.validate() {
            Err(error) => error.field().unwrap_or_default().to_owned(),
            Ok(()) => panic!("accepted {config:?}"),
        }
    }

    #[test]
    fn defaults_are_documented_values() {
        let config = RetryConfig::default();
        assert_eq!(config.max_attempts, 3);
        assert_eq!(
            config.backoff,
            Backoff::Exponential {
                base: ms(500),
                factor: 2.0
            }
        );
        assert_eq!(config.max_delay, Duration::from_secs(10));
        assert_eq!(
            config.budget,
            BudgetConfig {
                enabled: true,
                ratio: 0.2,
                min_per_second: 10,
                window: Duration::from_secs(10),
            }
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn builders_compose() {
        assert_eq!(RetryConfig::off().max_attempts, 1);
        let config = RetryConfig::exponential(5, ms(50))
            .full_jitter()
            .max_delay(Duration::from_secs(1))
            .budget(crate::retry::BudgetConfig::off());
        assert_eq!(config.max_attempts, 5);
        assert_eq!(config.backoff, Backoff::FullJitter { base: ms(50) });
        assert_eq!(config.max_delay, Duration::from_secs(1));
        assert!(!config.budget.enabled);
        assert_eq!(config.validate(), Ok(()));

        let config = RetryConfig::constant(2, ms(30)).decorrelated_jitter();
        assert_eq!(config.backoff, Backoff::DecorrelatedJitter { base: ms(30) });
        let budget = BudgetConfig {
            ratio: 0.5,
            ..BudgetConfig::default()
        };
        assert_eq!(RetryConfig::off().budget(budget.clone()).budget, budget);
    }

    #[test]
    fn validate_names_each_invalid_field() {
        let base = RetryConfig::default();
        let cases = [
            (RetryConfig::off().max_delay(ms(500)), None),
            (RetryConfig::constant(3, Duration::ZERO), None),
            (
                RetryConfig {
                    max_attempts: 0,
                    ..base.clone()
                },
                Some("max_attempts"),
            ),
            (
                RetryConfig::exponential(3, Duration::ZERO),
                Some("backoff.base"),
            ),
            (
                RetryConfig::exponential(3, Duration::ZERO).full_jitter(),
                Some("backoff.base"),
            ),
            (
                RetryConfig::constant(3, Duration::ZERO).decorrelated_jitter(),
                Some("backoff.base"),
            ),
            (
                RetryConfig {
                    backoff: Backoff::Exponential {
                        base: ms(10),
                        factor: 0.5,
                    },
                    ..base.clone()
                },
                Some("backoff.factor"),
            ),
            (
                RetryConfig {
                    backoff: Backoff::Exponential {
                        base: ms(10),
                        factor: f64::NAN,
                    },
                    ..base.clone()
                },
                Some("backoff.factor"),
            ),
            (base.clone().max_delay(Duration::ZERO), Some("max_delay")),
            (base.clone().max_delay(ms(499)), Some("max_delay")),
            (
                RetryConfig::constant(3, ms(20)).max_delay(ms(10)),
                Some("max_delay"),
            ),
            (
                base.clone().budget(BudgetConfig {
                    ratio: 1.5,
                    ..BudgetConfig::default()
                }),
                Some("budget.ratio"),
            ),
            (
                base.clone().budget(BudgetConfig {
                    ratio: -0.1,
                    ..BudgetConfig::off()
                }),
                Some("budget.ratio"),
            ),
            (
                base.clone().budget(BudgetConfig {
                    ratio: f64::INFINITY,
                    ..BudgetConfig::default()
                }),
                Some("budget.ratio"),
            ),
            (
                base.clone().budget(BudgetConfig {
                    window: ms(999),
                    ..BudgetConfig::default()
                }),
                Some("budget.window"),
            ),
        ];
        for (config, expected) in cases {
            match expected {
                None => assert_eq!(config.validate(), Ok(()), "{config:?}"),
                Some(field) => assert_eq!(invalid_field(&config), field, "{config:?}"),
            }
        }
    }

    #[test]
    fn validate_reasons_are_readable() {
        let error = RetryConfig::exponential(3, ms(10))
            .max_delay(ms(5))
            .validate()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid `max_delay`: must be at least the backoff base delay"
        );
        let error = BudgetConfig {
            window: Duration::ZERO,
            ..BudgetConfig::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(error.to_string(), "invalid `window`: must be at least 1s");
    }

    #[test]
    fn toml_deserializes_into_expected_config() {
        let config: RetryConfig = toml::from_str(
            r#"
            max_attempts = 4
            max_delay = "2s"
            backoff = { kind = "full_jitter", base = "100ms" }

            [budget]
            ratio = 0.1
            "#,
        )
        .unwrap();
        assert_eq!(
            config,
            RetryConfig {
                max_attempts: 4,
                backoff: Backoff::FullJitter { base: ms(100) },
                max_delay: Duration::from_secs(2),
                budget: BudgetConfig {
                    ratio: 0.1,
                    ..BudgetConfig::default()
                },
            }
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn toml_backoff_kinds_and_defaults() {
        let config: RetryConfig = toml::from_str("").unwrap();
        assert_eq!(config, RetryConfig::default());
        let config: RetryConfig =
            toml::from_str(r#"backoff = { kind = "exponential", base = "250ms" }"#).unwrap();
        assert_eq!(
            config.backoff,
            Backoff::Exponential {
                base: ms(250),
                factor: 2.0
            }
        );
        let config: RetryConfig =
            toml::from_str(r#"backoff = { kind = "constant", delay = "0s" }"#).unwrap();
        assert_eq!(
            config.backoff,
            Backoff::Constant {
                delay: Duration::ZERO
            }
        );
        let config: RetryConfig = toml::from_str(
            r#"
            backoff = { kind = "decorrelated_jitter", base = "1s" }
            budget = "off"
            "#,
        )
        .unwrap();
        assert_eq!(
            config.backoff,
            Backoff::DecorrelatedJitter {
                base: Duration::from_secs(1)
            }
        );
        assert!(!config.budget.enabled);
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("budget = \"off\""), "{text}");
        assert_eq!(toml::from_str::<RetryConfig>(&text).unwrap(), config);
        let config: RetryConfig = toml::from_str("[budget]\nwindow = \"1m\"").unwrap();
        assert!(config.budget.enabled);
        assert_eq!(config.budget.window, Duration::from_secs(60));
        assert!(toml::from_str::<RetryConfig>("budget = \"none\"").is_err());
        assert!(toml::from_str::<RetryConfig>("[budget]\nenabled = false").is_err());
    }

    #[test]
    fn toml_rejects_unknown_keys() {
        for text in [
            "max_attempt = 3",
            r#"backoff = { kind = "constant", delay = "1s", factor = 2.0 }"#,
            r#"backoff = { kind = "linear", base = "1s" }"#,
            "[budget]\nratio = 0.1\nmin_retries = 3",
        ] {
            assert!(
                toml::from_str::<RetryConfig>(text).is_err(),
                "accepted {text}"
            );
        }
    }

    #[test]
    fn serde_round_trips_through_json() {
        let config = RetryConfig::exponential(4, ms(100)).decorrelated_jitter();
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<RetryConfig>(&json).unwrap(), config);
    }
}
