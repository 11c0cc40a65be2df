//! [`HedgeConfig`]: when to hedge, how many hedges, and which calls.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::health::HealthWindow;

/// Most hedges one attempt may start.
const MAX_HEDGES: u32 = 5;

/// Settings of hedging for one supervisor.
///
/// The delay is either fixed (`delay`) or, when `delay` is not set, the `percentile` of the
/// latencies in the supervisor's health window, never below `floor`, once the window holds at
/// least `min_samples` samples (before that, nothing is hedged).
///
/// ```toml
/// [services.search.hedge]
/// percentile = 95        # hedge at the dependency's own p95...
/// floor = "2ms"          # ...but never sooner than 2 ms
/// min_samples = 20
/// max_hedges = 1
/// all_calls = false      # only calls marked `Call::idempotent()`
/// # or a fixed delay:  delay = "30ms"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// A fixed hedge delay. `None` (the default): derived from latency (`percentile`, `floor`,
    /// `min_samples`).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Which percentile of the health window's latencies is the delay, 1 to 99. Default 95.
    pub percentile: u8,
    /// The derived delay is never shorter than this. Default 1 ms.
    #[serde(with = "humantime_serde")]
    pub floor: Duration,
    /// Samples the health window must hold before a delay is derived from it (at least 1).
    /// Default 20.
    pub min_samples: u32,
    /// Hedges one attempt may start, one more after each further delay without an answer,
    /// 1 to 5. Default 1.
    pub max_hedges: u32,
    /// Hedge every call, as if each were marked [`idempotent`](crate::messages::Call::idempotent).
    /// Default `false`: only calls marked idempotent are hedged.
    pub all_calls: bool,
}

impl Default for HedgeConfig {
    /// The dependency's p95, at least 1 ms, after 20 samples; one hedge per attempt; only
    /// idempotent calls.
    fn default() -> Self {
        HedgeConfig {
            delay: None,
            percentile: 95,
            floor: Duration::from_millis(1),
            min_samples: 20,
            max_hedges: 1,
            all_calls: false,
        }
    }
}

impl HedgeConfig {
    /// Hedges after a fixed `delay`.
    pub fn fixed(delay: Duration) -> Self {
        HedgeConfig {
            delay: Some(delay),
            ..HedgeConfig::default()
        }
    }

    /// Hedges at the `percentile` of the dependency's recent latencies (the health window),
    /// never sooner than `floor`.
    pub fn percentile(percentile: u8, floor: Duration) -> Self {
        HedgeConfig {
            percentile,
            floor,
            ..HedgeConfig::default()
        }
    }

    /// Sets how many hedges one attempt may start.
    pub fn max_hedges(mut self, max_hedges: u32) -> Self {
        self.max_hedges = max_hedges;
        self
    }

    /// Sets how many samples the window needs before a delay is derived from it.
    pub fn min_samples(mut self, min_samples: u32) -> Self {
        self.min_samples = min_samples;
        self
    }

    /// Hedges every call, not only the ones marked idempotent.
    pub fn all_calls(mut self) -> Self {
        self.all_calls = true;
        self
    }

    /// Checks every field; the error names the first offending one (`delay`, `percentile`,
    /// `min_samples`, `max_hedges`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.delay.is_some_and(|delay| delay.is_zero()) {
            return Err(ConfigError::invalid(
                "delay",
                "must be longer than zero (leave hedging off instead)",
            ));
        }
        if !(1..=99).contains(&self.percentile) {
            return Err(ConfigError::invalid("percentile", "must be 1 to 99"));
        }
        if self.min_samples == 0 {
            return Err(ConfigError::invalid("min_samples", "must be at least 1"));
        }
        if !(1..=MAX_HEDGES).contains(&self.max_hedges) {
            return Err(ConfigError::invalid(
                "max_hedges",
                format!("must be 1 to {MAX_HEDGES}"),
            ));
        }
        Ok(())
    }

    /// The hedge delay at `now`: the fixed delay, or the configured percentile of `window`'s
    /// latencies (samples at most `max_age` old), at least `floor`. `None` while the window
    /// holds fewer than `min_samples` samples: nothing is hedged until the dependency's latency
    /// is known.
    pub fn delay(&self, window: &mut HealthWindow, now: Instant) -> Option<Duration> {
        if let Some(delay) = self.delay {
            return Some(delay);
        }
        let (samples, latency) = window.latency_percentile(now, u32::from(self.percentile));
        if samples < self.min_samples {
            return None;
        }
        latency.map(|latency| latency.max(self.floor))
    }

    /// Whether the delay depends on the health window (so it moves with the dependency).
    pub fn is_derived(&self) -> bool {
        self.delay.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthConfig;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    fn window(latencies: impl IntoIterator<Item = u64>, at: Instant) -> HealthWindow {
        let mut window = HealthWindow::new(HealthConfig {
            window_size: 100,
            minimum_calls: 1,
            max_age: None,
            ..HealthConfig::default()
        });
        for latency in latencies {
            window.record(at, true, ms(latency));
        }
        window
    }

    #[test]
    fn fixed_delay_ignores_the_window() {
        let now = Instant::now();
        let mut empty = window([], now);
        assert_eq!(
            HedgeConfig::fixed(ms(30)).delay(&mut empty, now),
            Some(ms(30))
        );
    }

    #[test]
    fn derived_delay_is_the_percentile_with_a_floor() {
        let now = Instant::now();
        let mut w = window(1..=100, now);
        assert_eq!(
            HedgeConfig::percentile(95, ms(1)).delay(&mut w, now),
            Some(ms(95))
        );
        assert_eq!(
            HedgeConfig::percentile(50, ms(1)).delay(&mut w, now),
            Some(ms(50))
        );
        assert_eq!(
            HedgeConfig::percentile(50, ms(70)).delay(&mut w, now),
            Some(ms(70))
        );
    }

    #[test]
    fn no_delay_before_min_samples() {
        let now = Instant::now();
        let config = HedgeConfig::default().min_samples(20);
        let mut w = window(1..=19, now);
        assert_eq!(config.delay(&mut w, now), None);
        w.record(now, false, ms(20));
        assert_eq!(config.delay(&mut w, now), Some(ms(19)));
    }

    #[test]
    fn validation_names_the_field() {
        let field = |config: HedgeConfig| config.validate().unwrap_err().field().map(str::to_owned);
        assert_eq!(
            field(HedgeConfig::fixed(Duration::ZERO)).as_deref(),
            Some("delay")
        );
        assert_eq!(
            field(HedgeConfig::percentile(0, ms(1))).as_deref(),
            Some("percentile")
        );
        assert_eq!(
            field(HedgeConfig::percentile(100, ms(1))).as_deref(),
            Some("percentile")
        );
        assert_eq!(
            field(HedgeConfig::default().min_samples(0)).as_deref(),
            Some("min_samples")
        );
        assert_eq!(
            field(HedgeConfig::default().max_hedges(0)).as_deref(),
            Some("max_hedges")
        );
        assert_eq!(
            field(HedgeConfig::default().max_hedges(6)).as_deref(),
            Some("max_hedges")
        );
        assert!(HedgeConfig::default().validate().is_ok());
    }
}
