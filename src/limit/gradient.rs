//! [`Gradient`]: Netflix's gradient2 concurrency limit.

use std::time::{Duration, Instant};

use super::bounds;
use super::config::{GradientConfig, QueueSize};

/// The gradient2 concurrency limit (Netflix `concurrency-limits`).
///
/// It keeps a real-valued estimate of the limit (the limit is its integer part) and two
/// exponential averages of the RTT, in samples: a long-term one over `long_window` samples and
/// a short-term one over `short_window`. An average over `n` samples moves towards each sample
/// by `max(2 / (n + 1), 1 / samples_so_far)`, so it is the plain mean of the first samples.
///
/// For each sample that was not dropped:
///
/// 1. both averages take the sample's RTT;
/// 2. when `long > 2 × short` (latency came back down after a long overload), the long-term
///    average decays by 5 % so it does not hold the limit down for `long_window` samples;
/// 3. when the caller is not using the limit (`2 × in_flight < limit`), the limit stays;
/// 4. otherwise `gradient = clamp(rtt_tolerance × long / short, 0.5, 1.0)` (1 while there is no
///    queueing, down to 0.5 when the short-term RTT is twice the tolerated one), and
///    `estimate ← (1 − smoothing) × estimate + smoothing × (estimate × gradient + queue)` with
///    `queue = queue_size` at the current limit (`sqrt(limit)` by default).
///
/// A dropped sample leaves both averages alone (its RTT measures a timeout or a refusal, not a
/// queue) and shrinks the estimate as a gradient of 0.5 without queue allowance would:
/// `estimate ← estimate × (1 − smoothing / 2)` (× 0.9 with the default smoothing).
///
/// The estimate is clamped to `[min_limit, max_limit]` after every sample, where `max_limit` is
/// lowered to the [ceiling](Gradient::ceiling) if there is one. A latency that
/// stays high becomes the new baseline once the long-term average has caught up with it (on the
/// order of `long_window` samples), and the limit grows again.
#[derive(Debug, Clone)]
pub struct Gradient {
    estimate: f64,
    /// `min_limit`, at most `max`.
    min: f64,
    /// `max_limit`, at most the ceiling.
    max: f64,
    /// The configured bounds, kept so a new ceiling can be applied.
    configured: (u32, u32),
    smoothing: f64,
    rtt_tolerance: f64,
    queue_size: QueueSize,
    long: Average,
    short: Average,
}

impl Gradient {
    /// A limit at `initial_limit` with no RTT seen yet. `config` is assumed validated
    /// ([`GradientConfig::validate`]).
    pub fn new(config: GradientConfig) -> Self {
        let (min, max) = bounds(config.min_limit, config.max_limit, u32::MAX);
        Gradient {
            estimate: f64::from(config.initial_limit.clamp(min, max)),
            min: f64::from(min),
            max: f64::from(max),
            configured: (config.min_limit, config.max_limit),
            smoothing: config.smoothing.clamp(f64::MIN_POSITIVE, 1.0),
            rtt_tolerance: config.rtt_tolerance,
            queue_size: config.queue_size,
            long: Average::new(config.long_window),
            short: Average::new(config.short_window),
        }
    }

    /// The same limit, never above `ceiling` (the calls that can actually be in flight, such
    /// as a bulkhead's `max_in_flight`): see [`set_ceiling`](Gradient::set_ceiling).
    pub fn ceiling(mut self, ceiling: u32) -> Self {
        self.set_ceiling(ceiling);
        self
    }

    /// From now on the estimate stays within `[min_limit, min(max_limit, ceiling)]`
    /// (`min_limit` lowered to that if need be); the current one is brought within at once.
    /// Returns the new limit when it changed.
    ///
    /// Why: with no queueing the estimate grows by the queue allowance per sample, used or
    /// not; above the calls that can be in flight, the first decreases only take it back down
    /// to the usable range, and congestion goes unanswered meanwhile.
    pub fn set_ceiling(&mut self, ceiling: u32) -> Option<u32> {
        let old = self.limit();
        let (min, max) = bounds(self.configured.0, self.configured.1, ceiling);
        (self.min, self.max) = (f64::from(min), f64::from(max));
        self.estimate = self.estimate.clamp(self.min, self.max);
        let new = self.limit();
        (new != old).then_some(new)
    }

    /// Calls allowed in flight now, within `[min_limit, max_limit]` (and the ceiling).
    pub fn limit(&self) -> u32 {
        self.estimate.floor() as u32
    }

    /// The long-term RTT average, once a sample arrived.
    pub fn long_rtt(&self) -> Option<Duration> {
        self.long.duration()
    }

    /// The short-term RTT average, once a sample arrived.
    pub fn short_rtt(&self) -> Option<Duration> {
        self.short.duration()
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
        let old = self.limit();
        if dropped {
            self.estimate *= 1.0 - self.smoothing / 2.0;
        } else {
            let rtt = rtt.as_nanos() as f64;
            let short = self.short.add(rtt);
            let long = self.long.add(rtt);
            if long > 2.0 * short {
                self.long.value *= 0.95;
            }
            if u64::from(in_flight) * 2 >= u64::from(old) {
                let gradient = if short > 0.0 {
                    (self.rtt_tolerance * long / short).clamp(0.5, 1.0)
                } else {
                    1.0
                };
                // (1 − s) × e + s × (e × gradient + queue), written so that gradient 1 with no
                // queue leaves e exactly as it is
                let step = self.estimate * (gradient - 1.0) + self.queue_size.at(old);
                self.estimate += self.smoothing * step;
            }
        }
        self.estimate = self.estimate.clamp(self.min, self.max);
        let new = self.limit();
        (new != old).then_some(new)
    }
}

/// Exponential average over about `window` samples, the plain mean while warming up.
#[derive(Debug, Clone)]
struct Average {
    factor: f64,
    samples: u64,
    value: f64,
}

impl Average {
    fn new(window: u32) -> Self {
        Average {
            factor: 2.0 / (f64::from(window.max(1)) + 1.0),
            samples: 0,
            value: 0.0,
        }
    }

    fn add(&mut self, sample: f64) -> f64 {
        self.samples = self.samples.saturating_add(1);
        let weight = self.factor.max(1.0 / self.samples as f64);
        // `value + (sample - value) × weight` keeps a constant input exactly constant.
        self.value += (sample - self.value) * weight;
        self.value
    }

    fn duration(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_nanos(self.value.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn gradient(initial: u32, min: u32, max: u32) -> Gradient {
        Gradient::new(GradientConfig {
            initial_limit: initial,
            min_limit: min,
            max_limit: max,
            ..GradientConfig::default()
        })
    }

    #[test]
    fn averages_are_plain_means_while_warming_up() {
        let mut a = Average::new(5); // factor 1/3
        assert_eq!(a.add(3.0), 3.0);
        assert_eq!(a.add(6.0), 4.5);
        assert_eq!(a.add(9.0), 6.0, "1/3 = 2/(5+1): still the mean");
        assert_eq!(a.add(0.0), 4.0, "then 1/3 weight");
        assert_eq!(a.duration(), Some(Duration::from_nanos(4)));
        assert_eq!(Average::new(1).add(7.0), 7.0);
    }

    #[test]
    fn steady_latency_grows_the_limit_by_the_smoothed_queue() {
        let t0 = Instant::now();
        let mut g = gradient(16, 1, 200);
        // no queueing: gradient 1, estimate 16 + 0.2 × sqrt(16)
        assert_eq!(g.on_sample(t0, ms(10), 16, false), None);
        assert!((g.estimate - 16.8).abs() < 1e-12, "{}", g.estimate);
        assert_eq!(g.on_sample(t0, ms(10), 16, false), Some(17));
        let mut last = g.limit();
        for _ in 0..1_000 {
            g.on_sample(t0, ms(10), g.limit(), false);
            assert!(g.limit() >= last);
            last = g.limit();
        }
        assert_eq!(g.limit(), 200);
        assert_eq!(g.long_rtt(), Some(ms(10)));
    }

    #[test]
    fn queueing_shrinks_the_limit_until_the_new_latency_becomes_the_baseline() {
        let t0 = Instant::now();
        let mut g = gradient(100, 1, 200);
        for _ in 0..50 {
            g.on_sample(t0, ms(10), 100, false);
        }
        let before = g.limit();
        // latency 4× the long-term average: gradient 0.5, the limit shrinks each step
        let mut last = before;
        for _ in 0..20 {
            g.on_sample(t0, ms(40), g.limit(), false);
            assert!(g.limit() <= last);
            last = g.limit();
        }
        assert!(last < before / 2, "{before} -> {last}");
        // sustained, the long-term average catches up: 40 ms is the new normal
        for _ in 0..3_000 {
            g.on_sample(t0, ms(40), g.limit(), false);
        }
        assert_eq!(g.limit(), 200);
    }

    #[test]
    fn app_limited_samples_move_the_averages_but_not_the_limit() {
        let t0 = Instant::now();
        let mut g = gradient(20, 1, 200);
        for rtt in [1, 500, 3, 900] {
            assert_eq!(g.on_sample(t0, ms(rtt), 9, false), None);
        }
        assert_eq!(g.estimate, 20.0);
        assert!(g.short_rtt().is_some_and(|d| d > ms(1)));
    }

    #[test]
    fn drops_shrink_by_half_the_smoothing_and_ignore_the_rtt() {
        let t0 = Instant::now();
        let mut g = gradient(100, 10, 200);
        assert_eq!(g.on_sample(t0, ms(10_000), 0, true), Some(90));
        assert_eq!(g.long_rtt(), None);
        assert_eq!(g.on_sample(t0, ms(1), 0, true), Some(81));
        for _ in 0..100 {
            g.on_sample(t0, ms(1), 0, true);
        }
        assert_eq!(g.limit(), 10, "never below min");
    }

    #[test]
    fn long_average_decays_when_latency_falls_back() {
        let t0 = Instant::now();
        let mut g = Gradient::new(GradientConfig {
            short_window: 1,
            long_window: 100,
            ..GradientConfig::default()
        });
        for _ in 0..100 {
            g.on_sample(t0, ms(100), 20, false);
        }
        let long = g.long_rtt().unwrap();
        g.on_sample(t0, ms(10), 20, false);
        let after = g.long_rtt().unwrap();
        // plain EMA would give 100 - 90 × 2/101 ≈ 98.2 ms; the decay takes 5 % more
        assert!(after < long.mul_f64(0.95), "{long:?} -> {after:?}");
    }

    #[test]
    fn zero_rtt_and_fixed_queue_are_handled() {
        let t0 = Instant::now();
        let mut g = Gradient::new(GradientConfig {
            queue_size: QueueSize::Fixed(0),
            ..GradientConfig::default()
        });
        assert_eq!(g.on_sample(t0, Duration::ZERO, 20, false), None);
        assert_eq!(g.estimate, 20.0, "gradient 1, no queue: a fixed point");
    }
}
