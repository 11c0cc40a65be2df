//! [`Aimd`]: additive increase, multiplicative decrease.

use std::time::{Duration, Instant};

use super::config::AimdConfig;

/// `backoff_ratio` is stored as an integer number of millionths.
const RATIO_SCALE: u64 = 1_000_000;

/// Additive-increase, multiplicative-decrease concurrency limit.
///
/// For each sample, in order:
///
/// 1. `dropped`, or `rtt > latency_threshold`: `limit = floor(limit × backoff_ratio)`;
/// 2. otherwise, when the dependency is busy (`2 × in_flight ≥ limit`): `limit = limit + 1`;
/// 3. otherwise (the caller is not using the limit, so a fast answer proves nothing):
///    unchanged;
///
/// then the limit is clamped to `[min_limit, max_limit]`. `backoff_ratio` is applied in integer
/// arithmetic with a precision of 1e-6, so `0.9 × 10` is exactly 9.
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: u32,
    min: u32,
    max: u32,
    ratio_millionths: u64,
    latency_threshold: Duration,
}

impl Aimd {
    /// A limit at `initial_limit`. `config` is assumed validated ([`AimdConfig::validate`]).
    pub fn new(config: AimdConfig) -> Self {
        let max = config.max_limit.max(1);
        let min = config.min_limit.clamp(1, max);
        Aimd {
            limit: config.initial_limit.clamp(min, max),
            min,
            max,
            ratio_millionths: (config.backoff_ratio.clamp(0.0, 1.0) * RATIO_SCALE as f64).round()
                as u64,
            latency_threshold: config.latency_threshold,
        }
    }

    /// Calls allowed in flight now, within `[min_limit, max_limit]`.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// One call completed after `rtt`, with `in_flight` calls in flight when it started (itself
    /// included); `dropped` when it timed out or was refused for overload. Returns the new
    /// limit when it changed. `now` is not used by this algorithm.
    pub fn on_sample(
        &mut self,
        _now: Instant,
        rtt: Duration,
        in_flight: u32,
        dropped: bool,
    ) -> Option<u32> {
        let old = self.limit;
        let new = if dropped || rtt > self.latency_threshold {
            let scaled = u64::from(old) * self.ratio_millionths / RATIO_SCALE;
            u32::try_from(scaled).unwrap_or(u32::MAX)
        } else if u64::from(in_flight) * 2 >= u64::from(old) {
            old.saturating_add(1)
        } else {
            old
        };
        self.limit = new.clamp(self.min, self.max);
        (self.limit != old).then_some(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aimd(initial: u32, min: u32, max: u32, ratio: f64) -> Aimd {
        Aimd::new(AimdConfig {
            initial_limit: initial,
            min_limit: min,
            max_limit: max,
            backoff_ratio: ratio,
            latency_threshold: Duration::from_millis(100),
        })
    }

    const FAST: Duration = Duration::from_millis(10);

    #[test]
    fn grows_by_one_while_busy_and_fast() {
        let t0 = Instant::now();
        let mut a = aimd(10, 1, 12, 0.9);
        assert_eq!(a.on_sample(t0, FAST, 5, false), Some(11), "5 of 10: busy");
        assert_eq!(a.on_sample(t0, FAST, 5, false), None, "5 of 11: not busy");
        assert_eq!(a.on_sample(t0, FAST, 6, false), Some(12));
        assert_eq!(a.on_sample(t0, FAST, 12, false), None, "at max");
        assert_eq!(a.limit(), 12);
    }

    #[test]
    fn drops_and_slow_samples_back_off_exactly() {
        let t0 = Instant::now();
        let mut a = aimd(10, 2, 100, 0.9);
        assert_eq!(a.on_sample(t0, FAST, 10, true), Some(9));
        // exactly at the threshold is not slow; above it is
        let threshold = Duration::from_millis(100);
        assert_eq!(a.on_sample(t0, threshold, 9, false), Some(10));
        assert_eq!(
            a.on_sample(t0, threshold + Duration::from_nanos(1), 0, false),
            Some(9)
        );
        assert_eq!(a.on_sample(t0, FAST, 0, true), Some(8));
        assert_eq!(a.on_sample(t0, FAST, 0, true), Some(7), "floor(7.2)");
        for _ in 0..10 {
            a.on_sample(t0, FAST, 0, true);
        }
        assert_eq!(a.limit(), 2, "never below min");
        assert_eq!(a.on_sample(t0, FAST, 0, true), None);
    }

    #[test]
    fn ratio_is_exact_for_decimal_values() {
        let t0 = Instant::now();
        // 0.58 × 50 is 28.999… in f64
        let mut a = Aimd::new(AimdConfig {
            initial_limit: 100,
            max_limit: 100,
            backoff_ratio: 0.58,
            ..AimdConfig::default()
        });
        assert_eq!(a.on_sample(t0, FAST, 0, true), Some(58));
        let mut a = aimd(50, 1, 100, 0.58);
        assert_eq!(a.on_sample(t0, FAST, 0, true), Some(29));
    }

    #[test]
    fn bounds_hold_even_with_an_unvalidated_config() {
        let a = aimd(0, 0, 0, 2.0);
        assert_eq!(a.limit(), 1);
        let mut a = aimd(500, 3, 5, 0.5);
        assert_eq!(a.limit(), 5);
        assert_eq!(a.on_sample(Instant::now(), FAST, 0, true), Some(3));
        let mut a = aimd(u32::MAX, 1, u32::MAX, 0.9);
        assert_eq!(a.on_sample(Instant::now(), FAST, u32::MAX, false), None);
    }
}
