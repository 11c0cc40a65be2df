//! [`Aimd`]: additive increase, multiplicative decrease.

use std::time::{Duration, Instant};

use super::bounds;
use super::config::AimdConfig;

/// `backoff_ratio` is stored as an integer number of millionths.
const RATIO_SCALE: u64 = 1_000_000;

/// Additive-increase, multiplicative-decrease concurrency limit, paced like TCP's congestion
/// avoidance: at most one increase and one decrease per round trip.
///
/// For each sample, in order:
///
/// 1. `dropped`, or `rtt > latency_threshold`: a congestion signal. If the call started
///    (`now − rtt`) after the last decrease, `limit = floor(limit × backoff_ratio)`; a call
///    already in flight when the limit was last lowered reports the same congestion again and
///    changes nothing (without this, the tail of one slow round trip drives the limit to its
///    minimum, one sample at a time);
/// 2. otherwise, when the dependency is busy (`2 × in_flight ≥ limit`): one step of growth;
///    after `limit` such steps (about one round trip with the pipe full) `limit = limit + 1`;
/// 3. otherwise (the caller is not using the limit, so a fast answer proves nothing):
///    unchanged;
///
/// then the limit is clamped to `[min_limit, max_limit]`, where `max_limit` is lowered to the
/// [ceiling](Aimd::ceiling) if there is one (and `min_limit` to `max_limit`). `backoff_ratio`
/// is applied in integer arithmetic with a precision of 1e-6, so `0.9 × 10` is exactly 9.
///
/// (Netflix's concurrency-limits adds 1 per fast sample and backs off on every slow one; in a
/// queueing dependency that doubles the limit each round trip and then collapses it, losing a
/// third of the capacity in a simulated overload — see BENCHMARKS.md, `overload`.)
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: u32,
    /// `min_limit`, at most `max`.
    min: u32,
    /// `max_limit`, at most the ceiling.
    max: u32,
    /// The configured bounds, kept so a new ceiling can be applied.
    configured: (u32, u32),
    ratio_millionths: u64,
    latency_threshold: Duration,
    /// Growth steps since the limit last moved.
    growth: u32,
    /// When the limit was last lowered.
    last_decrease: Option<Instant>,
}

impl Aimd {
    /// A limit at `initial_limit`. `config` is assumed validated ([`AimdConfig::validate`]).
    pub fn new(config: AimdConfig) -> Self {
        let (min, max) = bounds(config.min_limit, config.max_limit, u32::MAX);
        Aimd {
            limit: config.initial_limit.clamp(min, max),
            min,
            max,
            configured: (config.min_limit, config.max_limit),
            ratio_millionths: (config.backoff_ratio.clamp(0.0, 1.0) * RATIO_SCALE as f64).round()
                as u64,
            latency_threshold: config.latency_threshold,
            growth: 0,
            last_decrease: None,
        }
    }

    /// The same limit, never above `ceiling` (the calls that can actually be in flight, such
    /// as a bulkhead's `max_in_flight`): see [`set_ceiling`](Aimd::set_ceiling).
    pub fn ceiling(mut self, ceiling: u32) -> Self {
        self.set_ceiling(ceiling);
        self
    }

    /// From now on the limit stays within `[min_limit, min(max_limit, ceiling)]` (`min_limit`
    /// lowered to that if need be); the current limit is brought within at once. Returns the
    /// new limit when it changed.
    ///
    /// Why: a limit above the calls that can be in flight is never used, yet AIMD keeps
    /// growing it while the dependency is busy; the first decreases then only take it back
    /// down to the usable range, and congestion goes unanswered for several round trips.
    pub fn set_ceiling(&mut self, ceiling: u32) -> Option<u32> {
        let old = self.limit;
        (self.min, self.max) = bounds(self.configured.0, self.configured.1, ceiling);
        self.limit = old.clamp(self.min, self.max);
        if self.limit != old {
            self.growth = 0;
        }
        (self.limit != old).then_some(self.limit)
    }

    /// Calls allowed in flight now, within `[min_limit, max_limit]` (and the ceiling).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// One call completed at `now` after `rtt`, with `in_flight` calls in flight when it started
    /// (itself included); `dropped` when it timed out or was refused for overload. Returns the
    /// new limit when it changed.
    pub fn on_sample(
        &mut self,
        now: Instant,
        rtt: Duration,
        in_flight: u32,
        dropped: bool,
    ) -> Option<u32> {
        let old = self.limit;
        if dropped || rtt > self.latency_threshold {
            let started = now.checked_sub(rtt);
            let seen = self
                .last_decrease
                .is_some_and(|at| started.is_none_or(|started| started < at));
            if seen {
                return None;
            }
            let scaled = u64::from(old) * self.ratio_millionths / RATIO_SCALE;
            self.limit = u32::try_from(scaled)
                .unwrap_or(u32::MAX)
                .clamp(self.min, self.max);
            self.last_decrease = Some(now);
            self.growth = 0;
        } else if u64::from(in_flight) * 2 >= u64::from(old) {
            self.growth = self.growth.saturating_add(1);
            if self.growth >= old {
                self.growth = 0;
                self.limit = old.saturating_add(1).clamp(self.min, self.max);
            }
        }
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
            mode: crate::mode::PolicyMode::Enforce,
        })
    }

    const FAST: Duration = Duration::from_millis(10);

    /// Feeds `n` busy fast samples one second apart; returns the last answer.
    fn grow(a: &mut Aimd, t: &mut Instant, n: u32, in_flight: u32) -> Option<u32> {
        let mut last = None;
        for _ in 0..n {
            *t += Duration::from_secs(1);
            last = a.on_sample(*t, FAST, in_flight, false);
        }
        last
    }

    #[test]
    fn grows_by_one_per_limit_busy_fast_samples() {
        let mut t = Instant::now();
        let mut a = aimd(10, 1, 12, 0.9);
        assert_eq!(grow(&mut a, &mut t, 9, 5), None, "9 of 10 steps");
        assert_eq!(grow(&mut a, &mut t, 1, 5), Some(11), "5 of 10: busy");
        assert_eq!(grow(&mut a, &mut t, 20, 5), None, "5 of 11: not busy");
        assert_eq!(grow(&mut a, &mut t, 11, 6), Some(12));
        assert_eq!(grow(&mut a, &mut t, 30, 12), None, "at max");
        assert_eq!(a.limit(), 12);
    }

    #[test]
    fn drops_and_slow_samples_back_off_exactly() {
        let mut t = Instant::now();
        let mut next = || {
            t += Duration::from_secs(1);
            t
        };
        let mut a = aimd(10, 2, 100, 0.9);
        assert_eq!(a.on_sample(next(), FAST, 10, true), Some(9));
        // exactly at the threshold is not slow; above it is
        let threshold = Duration::from_millis(100);
        assert_eq!(a.on_sample(next(), threshold, 9, false), None);
        assert_eq!(
            a.on_sample(next(), threshold + Duration::from_nanos(1), 0, false),
            Some(8)
        );
        assert_eq!(a.on_sample(next(), FAST, 0, true), Some(7), "floor(7.2)");
        for _ in 0..10 {
            a.on_sample(next(), FAST, 0, true);
        }
        assert_eq!(a.limit(), 2, "never below min");
        assert_eq!(a.on_sample(next(), FAST, 0, true), None);
    }

    #[test]
    fn one_round_trip_of_congestion_lowers_the_limit_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = aimd(20, 1, 100, 0.5);
        assert_eq!(a.on_sample(t0, ms(30), 20, true), Some(10));
        // Calls that were in flight when it was lowered report the same congestion.
        for i in 1..20 {
            assert_eq!(a.on_sample(t0 + ms(i), ms(30), 20, true), None);
        }
        // A call started after the decrease may lower it again.
        assert_eq!(a.on_sample(t0 + ms(31), ms(30), 10, true), Some(5));
        // Growth steps are counted from the last move.
        let mut t = t0 + ms(100);
        assert_eq!(grow(&mut a, &mut t, 4, 5), None);
        assert_eq!(grow(&mut a, &mut t, 1, 5), Some(6));
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
