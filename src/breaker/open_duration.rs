//! How long the breaker stays open: exponential growth with a cap, plus optional jitter.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How long the breaker stays open each time it opens.
///
/// At growth level `n` (0 when the breaker last closed, +1 per failed probe or half-open
/// timeout) the duration is `min(max, base × multiplier^n)`, then multiplied by a uniform
/// factor in `[1 - jitter, 1 + jitter]`, so it never exceeds `max × (1 + jitter)`.
///
/// In TOML: `open_duration = { base = "30s", max = "5m", multiplier = 2.0, jitter = 0.1 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenDuration {
    /// Duration at level 0. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub base: Duration,
    /// Cap before jitter. Default 30 s (no growth).
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Growth factor per level (≥ 1). Default 2.0.
    pub multiplier: f64,
    /// Relative jitter in `[0, 1)`. Default 0.0.
    pub jitter: f64,
}

impl Default for OpenDuration {
    fn default() -> Self {
        OpenDuration::fixed(Duration::from_secs(30))
    }
}

impl OpenDuration {
    /// Always `duration`, no jitter.
    pub fn fixed(duration: Duration) -> Self {
        OpenDuration {
            base: duration,
            max: duration,
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    /// `base`, growing by `multiplier` per level up to `max`, no jitter.
    pub fn exponential(base: Duration, max: Duration, multiplier: f64) -> Self {
        OpenDuration {
            base,
            max,
            multiplier,
            jitter: 0.0,
        }
    }

    /// Check the values; field names are relative (`base`, `max`, ...).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.base.is_zero() {
            return Err(ConfigError::invalid("base", "must be greater than zero"));
        }
        if self.max < self.base {
            return Err(ConfigError::invalid(
                "max",
                "must be greater than or equal to base",
            ));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(ConfigError::invalid(
                "multiplier",
                "must be a finite number of at least 1.0",
            ));
        }
        if !(self.jitter.is_finite() && (0.0..1.0).contains(&self.jitter)) {
            return Err(ConfigError::invalid(
                "jitter",
                "must be at least 0.0 and less than 1.0",
            ));
        }
        Ok(())
    }

    /// The open duration at growth `level`; draws from `rng` only when jitter is non-zero.
    pub(crate) fn at_level(&self, level: u32, rng: &mut SmallRng) -> Duration {
        let exponent = i32::try_from(level).unwrap_or(i32::MAX);
        let max_nanos = self.max.as_nanos() as f64;
        let grown = (self.base.as_nanos() as f64 * self.multiplier.powi(exponent)).min(max_nanos);
        if self.jitter <= 0.0 {
            return if level == 0 {
                self.base
            } else {
                nanos_to_duration(grown).min(self.max)
            };
        }
        let factor = rng.random_range(1.0 - self.jitter..=1.0 + self.jitter);
        let ceiling = nanos_to_duration(max_nanos * (1.0 + self.jitter));
        nanos_to_duration(grown * factor).min(ceiling)
    }
}

/// Round to whole nanoseconds, saturating at `Duration::MAX`.
fn nanos_to_duration(nanos: f64) -> Duration {
    let nanos = nanos.round();
    if nanos < u64::MAX as f64 {
        Duration::from_nanos(nanos as u64)
    } else {
        Duration::try_from_secs_f64(nanos / 1e9).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn grows_by_multiplier_and_caps_at_max() {
        let mut rng = SmallRng::seed_from_u64(1);
        let d = OpenDuration::exponential(secs(30), secs(100), 2.0);
        let levels: Vec<Duration> = (0..5).map(|l| d.at_level(l, &mut rng)).collect();
        assert_eq!(
            levels,
            [secs(30), secs(60), secs(100), secs(100), secs(100)]
        );
        // fractional durations are not truncated
        let d = OpenDuration::exponential(Duration::from_millis(300), secs(10), 1.5);
        assert_eq!(d.at_level(1, &mut rng), Duration::from_millis(450));
    }

    #[test]
    fn huge_levels_and_durations_do_not_overflow() {
        let mut rng = SmallRng::seed_from_u64(1);
        let d = OpenDuration::exponential(secs(1), Duration::MAX, 10.0);
        assert_eq!(d.at_level(u32::MAX, &mut rng), Duration::MAX);
        let d = OpenDuration {
            jitter: 0.5,
            ..OpenDuration::exponential(secs(1), Duration::MAX, 10.0)
        };
        assert!(d.at_level(u32::MAX, &mut rng) > secs(1));
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_reproducible() {
        let d = OpenDuration {
            jitter: 0.2,
            ..OpenDuration::exponential(secs(10), secs(40), 2.0)
        };
        let draw = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..200)
                .map(|i| d.at_level(i % 4, &mut rng))
                .collect::<Vec<_>>()
        };
        let first = draw(42);
        assert_eq!(first, draw(42));
        for (i, got) in first.iter().enumerate() {
            let nominal = [10.0, 20.0, 40.0, 40.0][i % 4];
            let s = got.as_secs_f64();
            assert!(
                s >= nominal * 0.8 - 1e-9 && s <= nominal * 1.2 + 1e-9,
                "{s}"
            );
            assert!(s <= 40.0 * 1.2 + 1e-9);
        }
        // some spread actually happens
        assert!(first.iter().step_by(4).any(|d| *d != secs(10)));
    }

    #[test]
    fn validate_names_each_field() {
        let bad = [
            (
                OpenDuration {
                    base: Duration::ZERO,
                    ..OpenDuration::default()
                },
                "base",
            ),
            (OpenDuration::exponential(secs(10), secs(5), 2.0), "max"),
            (
                OpenDuration::exponential(secs(1), secs(5), 0.5),
                "multiplier",
            ),
            (
                OpenDuration::exponential(secs(1), secs(5), f64::INFINITY),
                "multiplier",
            ),
            (
                OpenDuration {
                    jitter: 1.0,
                    ..OpenDuration::default()
                },
                "jitter",
            ),
            (
                OpenDuration {
                    jitter: -0.1,
                    ..OpenDuration::default()
                },
                "jitter",
            ),
            (
                OpenDuration {
                    jitter: f64::NAN,
                    ..OpenDuration::default()
                },
                "jitter",
            ),
        ];
        for (config, field) in bad {
            assert_eq!(config.validate().unwrap_err().field(), Some(field));
        }
        assert!(OpenDuration::default().validate().is_ok());
    }
}
