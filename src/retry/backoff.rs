//! [`Backoff`]: the delay schedule between attempts.
//!
//! Schedules follow the AWS Architecture Blog post "Exponential Backoff and Jitter": plain
//! exponential, *full jitter* (uniform in `[0, base * 2^(n-1)]`) and *decorrelated jitter*
//! (uniform in `[base, previous * 3]`). Every delay is capped by `max_delay`, and the
//! arithmetic saturates, so huge retry numbers never overflow or panic.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How long to wait before retry number `n` (1 = the first retry).
///
/// In TOML: `backoff = { kind = "exponential", base = "500ms", factor = 2.0 }`,
/// `{ kind = "constant", delay = "1s" }`, `{ kind = "full_jitter", base = "100ms" }`,
/// `{ kind = "decorrelated_jitter", base = "100ms" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Backoff {
    /// The same delay before every retry. Zero is allowed (retry immediately).
    Constant {
        /// The delay.
        #[serde(with = "humantime_serde")]
        delay: Duration,
    },
    /// `base * factor^(n-1)`: `base`, `base * factor`, `base * factor^2`, ...
    Exponential {
        /// The delay before the first retry. Must be greater than zero.
        #[serde(with = "humantime_serde")]
        base: Duration,
        /// Growth per retry; finite and at least 1.0. Defaults to 2.0 when omitted.
        #[serde(default = "default_factor")]
        factor: f64,
    },
    /// Uniform in `[0, min(max_delay, base * 2^(n-1))]` ("full jitter"): the cap is applied
    /// before drawing, so late retries are spread over the whole `[0, max_delay]` range.
    FullJitter {
        /// The upper bound of the first retry's delay. Must be greater than zero.
        #[serde(with = "humantime_serde")]
        base: Duration,
    },
    /// Uniform in `[base, min(max_delay, previous * 3)]` where `previous` is the delay
    /// before the last retry (`base` for the first retry) ("decorrelated jitter").
    DecorrelatedJitter {
        /// The lower bound of every delay. Must be greater than zero.
        #[serde(with = "humantime_serde")]
        base: Duration,
    },
}

fn default_factor() -> f64 {
    2.0
}

impl Backoff {
    /// The schedule's base delay: `delay` for [`Backoff::Constant`], `base` otherwise.
    pub fn base(&self) -> Duration {
        match *self {
            Backoff::Constant { delay } => delay,
            Backoff::Exponential { base, .. }
            | Backoff::FullJitter { base }
            | Backoff::DecorrelatedJitter { base } => base,
        }
    }

    /// Checks the schedule's own fields; errors name `delay`, `base` or `factor` (the caller
    /// prefixes `backoff.`). A constant delay of zero is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Backoff::Constant { .. } => Ok(()),
            Backoff::Exponential { base, factor } => {
                validate_base(base)?;
                if factor.is_finite() && factor >= 1.0 {
                    Ok(())
                } else {
                    Err(ConfigError::invalid(
                        "factor",
                        "must be a finite number of at least 1",
                    ))
                }
            }
            Backoff::FullJitter { base } | Backoff::DecorrelatedJitter { base } => {
                validate_base(base)
            }
        }
    }

    /// The delay before retry number `retry` (1 = first retry; 0 is treated as 1).
    ///
    /// `previous` is the delay used before the last retry (only
    /// [`Backoff::DecorrelatedJitter`] reads it; pass [`Duration::ZERO`] for the first retry).
    /// The result never exceeds `max_delay`. Only the jitter schedules draw from `rng`.
    pub fn delay(
        &self,
        retry: u32,
        previous: Duration,
        max_delay: Duration,
        rng: &mut SmallRng,
    ) -> Duration {
        let doublings = retry.max(1) - 1;
        match *self {
            Backoff::Constant { delay } => delay.min(max_delay),
            Backoff::Exponential { base, factor } => {
                scaled(base, factor.powi(saturating_i32(doublings)), max_delay)
            }
            Backoff::FullJitter { base } => {
                let cap = scaled(base, 2f64.powi(saturating_i32(doublings)), max_delay);
                uniform(rng, Duration::ZERO, cap)
            }
            Backoff::DecorrelatedJitter { base } => {
                let low = base.min(max_delay);
                let high = previous.max(base).saturating_mul(3).min(max_delay);
                uniform(rng, low, high)
            }
        }
    }
}

fn validate_base(base: Duration) -> Result<(), ConfigError> {
    if base.is_zero() {
        Err(ConfigError::invalid("base", "must be greater than zero"))
    } else {
        Ok(())
    }
}

fn saturating_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// `base * multiplier`, or `cap` when that is larger, infinite or NaN.
fn scaled(base: Duration, multiplier: f64, cap: Duration) -> Duration {
    let nanos = base.as_nanos() as f64 * multiplier;
    if nanos < cap.as_nanos() as f64 {
        // `as u64` saturates; only delays beyond ~584 years lose precision.
        Duration::from_nanos(nanos.round() as u64).min(cap)
    } else {
        cap
    }
}

/// Uniform in `[low, high]` with nanosecond resolution (saturating at ~584 years).
fn uniform(rng: &mut SmallRng, low: Duration, high: Duration) -> Duration {
    let low = saturating_nanos(low);
    let high = saturating_nanos(high);
    if high <= low {
        return Duration::from_nanos(high);
    }
    Duration::from_nanos(rng.random_range(low..=high))
}

fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Delays for retries 1..=count, feeding each delay back as `previous`.
    fn sequence(backoff: &Backoff, count: u32, max_delay: Duration, seed: u64) -> Vec<Duration> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut previous = Duration::ZERO;
        (1..=count)
            .map(|retry| {
                previous = backoff.delay(retry, previous, max_delay, &mut rng);
                previous
            })
            .collect()
    }

    #[test]
    fn constant_repeats_the_delay() {
        let backoff = Backoff::Constant { delay: ms(250) };
        assert_eq!(sequence(&backoff, 3, ms(1000), 0), [ms(250); 3]);
    }

    #[test]
    fn constant_is_capped_and_may_be_zero() {
        let backoff = Backoff::Constant { delay: ms(250) };
        assert_eq!(sequence(&backoff, 2, ms(100), 0), [ms(100); 2]);
        let zero = Backoff::Constant {
            delay: Duration::ZERO,
        };
        assert_eq!(sequence(&zero, 2, ms(100), 0), [Duration::ZERO; 2]);
    }

    #[test]
    fn exponential_doubles_up_to_max_delay() {
        let backoff = Backoff::Exponential {
            base: ms(100),
            factor: 2.0,
        };
        assert_eq!(
            sequence(&backoff, 6, ms(1000), 0),
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
    }

    #[test]
    fn exponential_with_fractional_factor() {
        let backoff = Backoff::Exponential {
            base: ms(100),
            factor: 1.5,
        };
        assert_eq!(
            sequence(&backoff, 4, ms(1000), 0),
            [ms(100), ms(150), ms(225), Duration::from_micros(337_500)]
        );
    }

    #[test]
    fn retry_zero_is_treated_as_the_first_retry() {
        let backoff = Backoff::Exponential {
            base: ms(100),
            factor: 2.0,
        };
        let mut rng = SmallRng::seed_from_u64(0);
        assert_eq!(
            backoff.delay(0, Duration::ZERO, ms(1000), &mut rng),
            ms(100)
        );
    }

    #[test]
    fn huge_retry_numbers_saturate_to_max_delay() {
        let max = Duration::from_secs(10);
        let mut rng = SmallRng::seed_from_u64(1);
        for backoff in [
            Backoff::Exponential {
                base: ms(500),
                factor: 2.0,
            },
            Backoff::Exponential {
                base: Duration::MAX,
                factor: 1.0,
            },
        ] {
            for retry in [64, 1_000, i32::MAX as u32, u32::MAX] {
                assert_eq!(backoff.delay(retry, max, max, &mut rng), max);
            }
        }
        let jitter = Backoff::FullJitter { base: ms(500) };
        let decorrelated = Backoff::DecorrelatedJitter { base: ms(500) };
        for retry in [64, u32::MAX] {
            assert!(jitter.delay(retry, Duration::MAX, max, &mut rng) <= max);
            assert!(decorrelated.delay(retry, Duration::MAX, max, &mut rng) <= max);
        }
    }

    #[test]
    fn full_jitter_is_reproducible_and_within_the_cap() {
        let backoff = Backoff::FullJitter { base: ms(100) };
        let max = ms(1000);
        let first = sequence(&backoff, 8, max, 42);
        assert_eq!(first, sequence(&backoff, 8, max, 42));
        assert_ne!(first, sequence(&backoff, 8, max, 43));
        for (retry, delay) in (1u32..).zip(&first) {
            let cap = (ms(100) * 2u32.pow(retry - 1)).min(max);
            assert!(*delay <= cap, "retry {retry}: {delay:?} > {cap:?}");
        }
    }

    #[test]
    fn full_jitter_caps_before_drawing() {
        // Capping after drawing would pile most late delays onto max_delay exactly.
        let backoff = Backoff::FullJitter { base: ms(100) };
        let max = ms(1000);
        let mut rng = SmallRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..1_000)
            .map(|_| backoff.delay(20, Duration::ZERO, max, &mut rng))
            .collect();
        assert!(delays.iter().all(|d| *d < max));
        let mean = delays.iter().sum::<Duration>() / 1_000;
        assert!(mean > ms(450) && mean < ms(550), "mean {mean:?}");
    }

    #[test]
    fn decorrelated_jitter_stays_within_base_and_three_times_previous() {
        let base = ms(100);
        let max = ms(2000);
        let backoff = Backoff::DecorrelatedJitter { base };
        let first = sequence(&backoff, 20, max, 42);
        assert_eq!(first, sequence(&backoff, 20, max, 42));
        let mut previous = base;
        for delay in &first {
            let high = (previous * 3).min(max);
            assert!(
                *delay >= base && *delay <= high,
                "{delay:?} not in [{base:?}, {high:?}]"
            );
            previous = *delay;
        }
    }

    #[test]
    fn base_reports_the_schedule_base() {
        assert_eq!(Backoff::Constant { delay: ms(7) }.base(), ms(7));
        assert_eq!(
            Backoff::Exponential {
                base: ms(8),
                factor: 3.0
            }
            .base(),
            ms(8)
        );
        assert_eq!(Backoff::FullJitter { base: ms(9) }.base(), ms(9));
        assert_eq!(Backoff::DecorrelatedJitter { base: ms(10) }.base(), ms(10));
    }
}
