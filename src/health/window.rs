//! [`HealthWindow`]: a bounded ring of recent call samples, queried for [`HealthStats`] and a
//! [`HealthStatus`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::stats::nearest_rank;
use super::{HealthConfig, HealthStats, HealthStatus};

/// One recorded call.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    latency: Duration,
    success: bool,
}

/// The most recent calls to one dependency, bounded by [`HealthConfig::window_size`] samples.
///
/// Recording is O(1) and does not allocate after the first record, which reserves room for
/// exactly `window_size` samples; a window that never recorded anything allocates nothing.
/// Queries ([`HealthWindow::stats`], [`HealthWindow::status`]) take `&mut self` because they
/// sort latencies in a scratch buffer kept inside the window (at most `window_size`
/// durations, reused across queries), so they allocate nothing after warm-up either.
///
/// `now` passed to queries is expected not to go backwards relative to the `now` of records,
/// as with a monotonic clock; a sample recorded "after" the query's `now` counts as fresh.
#[derive(Debug, Clone)]
pub struct HealthWindow {
    config: HealthConfig,
    samples: VecDeque<Sample>,
    scratch: Vec<Duration>,
}

impl HealthWindow {
    /// An empty window. `config` is assumed to have passed [`HealthConfig::validate`].
    pub fn new(config: HealthConfig) -> Self {
        HealthWindow {
            config,
            samples: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// The configuration this window was built with.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Records one call that finished at `now`, evicting the oldest sample when the window
    /// already holds `window_size` samples.
    pub fn record(&mut self, now: Instant, success: bool, latency: Duration) {
        let window_size = self.window_size();
        if self.samples.len() >= window_size {
            self.samples.pop_front();
        } else if self.samples.capacity() == 0 {
            self.samples.reserve_exact(window_size);
        }
        self.samples.push_back(Sample {
            at: now,
            latency,
            success,
        });
    }

    /// Counts, success rate and latency quantiles over the recorded samples that are at most
    /// `max_age` old at `now` (a sample exactly `max_age` old still counts). See
    /// [`HealthStats`] for the quantile method.
    pub fn stats(&mut self, now: Instant) -> HealthStats {
        let failures = self.sort_latencies(now);
        // At most `window_size` samples are kept, so the count always fits in `u32`.
        let calls = u32::try_from(self.scratch.len()).unwrap_or(u32::MAX);
        HealthStats::from_sorted(calls, failures, &self.scratch)
    }

    /// The `percent`-th percentile (nearest rank, as in [`HealthStats`]) of the latencies
    /// counted at `now`, with how many there are; `None` when there are none.
    pub fn latency_percentile(&mut self, now: Instant, percent: u32) -> (u32, Option<Duration>) {
        self.sort_latencies(now);
        let samples = u32::try_from(self.scratch.len()).unwrap_or(u32::MAX);
        (samples, nearest_rank(&self.scratch, percent))
    }

    /// Fills the scratch buffer with the latencies counted at `now`, sorted; returns how many
    /// of those samples failed.
    fn sort_latencies(&mut self, now: Instant) -> u32 {
        let cutoff = self.config.max_age.and_then(|age| now.checked_sub(age));
        self.scratch.clear();
        self.scratch.reserve_exact(self.samples.len());
        let mut failures: u32 = 0;
        for sample in &self.samples {
            if cutoff.is_some_and(|cutoff| sample.at < cutoff) {
                continue;
            }
            self.scratch.push(sample.latency);
            if !sample.success {
                failures += 1;
            }
        }
        self.scratch.sort_unstable();
        failures
    }

    /// The health verdict at `now`: [`HealthConfig::classify`] applied to
    /// [`HealthWindow::stats`].
    pub fn status(&mut self, now: Instant, breaker_open: bool) -> HealthStatus {
        let stats = self.stats(now);
        self.config.classify(&stats, breaker_open)
    }

    /// When [`stats`](Self::stats) will next change with no new sample: the instant right after
    /// the oldest sample still counted at `now` turns older than `max_age`. `None` without a
    /// `max_age`, or when nothing is counted at `now`.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        let max_age = self.config.max_age?;
        let cutoff = now.checked_sub(max_age);
        self.samples
            .iter()
            .find(|sample| cutoff.is_none_or(|cutoff| sample.at >= cutoff))
            .and_then(|sample| sample.at.checked_add(max_age + Duration::from_nanos(1)))
    }

    /// Applies a new configuration (assumed validated), keeping the samples: all of them when
    /// the window grows or keeps its size, the newest `window_size` when it shrinks. New
    /// thresholds and `max_age` apply to the kept samples from the next query.
    pub fn reconfigure(&mut self, config: HealthConfig) {
        self.config = config;
        let window_size = self.window_size();
        while self.samples.len() > window_size {
            self.samples.pop_front();
        }
        if self.samples.capacity() > 0 && self.samples.capacity() < window_size {
            self.samples.reserve_exact(window_size - self.samples.len());
        }
        self.samples.shrink_to(window_size);
    }

    /// Forgets every sample. Allocated buffers are kept for reuse.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.scratch.clear();
    }

    fn window_size(&self) -> usize {
        usize::try_from(self.config.window_size).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// Default thresholds, no age limit, small window.
    fn window(window_size: u32, minimum_calls: u32) -> HealthWindow {
        let config = HealthConfig {
            window_size,
            minimum_calls,
            max_age: None,
            ..HealthConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        HealthWindow::new(config)
    }

    fn record_many(w: &mut HealthWindow, at: Instant, count: usize, success: bool, latency: u64) {
        for _ in 0..count {
            w.record(at, success, ms(latency));
        }
    }

    #[test]
    fn counts_and_success_rate_over_known_sequence() {
        let t0 = Instant::now();
        let mut w = window(10, 1);
        for (i, success) in [true, false, true, true, false, true, true, true]
            .into_iter()
            .enumerate()
        {
            w.record(t0 + ms(i as u64), success, ms(10 * (i as u64 + 1)));
        }
        let stats = w.stats(t0 + ms(10));
        assert_eq!(stats.calls, 8);
        assert_eq!(stats.failures, 2);
        assert_eq!(stats.success_rate, Some(0.75));
        // Latencies 10..=80ms: p50 = ceil(4.0) → 40ms, p95 = ceil(7.6) → 80ms.
        assert_eq!(stats.p50, Some(ms(40)));
        assert_eq!(stats.p95, Some(ms(80)));
        assert_eq!(stats.p99, Some(ms(80)));
    }

    #[test]
    fn empty_window_has_empty_stats() {
        let mut w = window(10, 1);
        assert_eq!(w.stats(Instant::now()), HealthStats::EMPTY);
    }

    #[test]
    fn ring_keeps_only_last_window_size_samples() {
        let t0 = Instant::now();
        let mut w = window(5, 1);
        // Latencies 1..=8ms; failures at 1ms and 2ms fall out of the window.
        for i in 1..=8u64 {
            w.record(t0, i > 2, ms(i));
        }
        let stats = w.stats(t0);
        assert_eq!(stats.calls, 5);
        assert_eq!(stats.failures, 0);
        assert_eq!(stats.success_rate, Some(1.0));
        assert_eq!(stats.p50, Some(ms(6)));
        assert_eq!(stats.p99, Some(ms(8)));
        let latencies: Vec<Duration> = w.samples.iter().map(|s| s.latency).collect();
        assert_eq!(latencies, [ms(4), ms(5), ms(6), ms(7), ms(8)]);
    }

    #[test]
    fn max_age_excludes_old_samples() {
        let t0 = Instant::now();
        let mut w = HealthWindow::new(HealthConfig {
            max_age: Some(Duration::from_secs(30)),
            minimum_calls: 1,
            ..HealthConfig::default()
        });
        w.record(t0, false, ms(100));
        w.record(t0 + Duration::from_secs(10), true, ms(20));
        w.record(t0 + Duration::from_secs(20), true, ms(30));

        let at_30s = w.stats(t0 + Duration::from_secs(30));
        assert_eq!(
            (at_30s.calls, at_30s.failures),
            (3, 1),
            "exactly max_age old counts"
        );

        let at_31s = w.stats(t0 + Duration::from_secs(31));
        assert_eq!((at_31s.calls, at_31s.failures), (2, 0));
        assert_eq!(at_31s.success_rate, Some(1.0));
        assert_eq!(at_31s.p99, Some(ms(30)));

        let at_45s = w.stats(t0 + Duration::from_secs(45));
        assert_eq!(at_45s.calls, 1);
        assert_eq!(at_45s.p50, Some(ms(30)));

        assert_eq!(w.stats(t0 + Duration::from_secs(51)), HealthStats::EMPTY);
    }

    #[test]
    fn next_expiry_is_just_after_the_oldest_counted_sample_turns_max_age() {
        let t0 = Instant::now();
        let mut window = HealthWindow::new(HealthConfig {
            max_age: Some(Duration::from_secs(30)),
            ..HealthConfig::default()
        });
        assert_eq!(window.next_expiry(t0), None);
        window.record(t0, true, Duration::from_millis(5));
        window.record(
            t0 + Duration::from_secs(10),
            false,
            Duration::from_millis(5),
        );
        let first = t0 + Duration::from_secs(30) + Duration::from_nanos(1);
        assert_eq!(window.next_expiry(t0), Some(first));
        assert_eq!(window.stats(first).calls, 1);
        let second = first + Duration::from_secs(10);
        assert_eq!(window.next_expiry(first), Some(second));
        assert_eq!(window.stats(second).calls, 0);
        assert_eq!(window.next_expiry(second), None);
        let mut forever = HealthWindow::new(HealthConfig {
            max_age: None,
            ..HealthConfig::default()
        });
        forever.record(t0, true, Duration::ZERO);
        assert_eq!(forever.next_expiry(t0), None);
    }

    #[test]
    fn no_max_age_keeps_samples_forever() {
        let t0 = Instant::now();
        let mut w = window(10, 1);
        w.record(t0, true, ms(1));
        assert_eq!(w.stats(t0 + Duration::from_secs(3600)).calls, 1);
    }

    #[test]
    fn quantiles_exact_on_shuffled_one_to_hundred_ms() {
        let t0 = Instant::now();
        let mut w = window(100, 1);
        let mut latencies: Vec<u64> = (1..=100).collect();
        latencies.shuffle(&mut SmallRng::seed_from_u64(7));
        for latency in latencies {
            w.record(t0, true, ms(latency));
        }
        let stats = w.stats(t0);
        assert_eq!(stats.calls, 100);
        assert_eq!(stats.p50, Some(ms(50)));
        assert_eq!(stats.p95, Some(ms(95)));
        assert_eq!(stats.p99, Some(ms(99)));
    }

    #[test]
    fn quantiles_exact_on_small_windows() {
        let t0 = Instant::now();
        let mut one = window(10, 1);
        one.record(t0, true, ms(42));
        let stats = one.stats(t0);
        assert_eq!(
            (stats.p50, stats.p95, stats.p99),
            (Some(ms(42)), Some(ms(42)), Some(ms(42)))
        );

        let mut three = window(10, 1);
        for latency in [30, 10, 20] {
            three.record(t0, true, ms(latency));
        }
        let stats = three.stats(t0);
        assert_eq!(
            (stats.p50, stats.p95, stats.p99),
            (Some(ms(20)), Some(ms(30)), Some(ms(30)))
        );
    }

    #[test]
    fn quantiles_include_failed_calls() {
        let t0 = Instant::now();
        let mut w = window(10, 1);
        w.record(t0, true, ms(10));
        w.record(t0, false, ms(900));
        let stats = w.stats(t0);
        assert_eq!(stats.p50, Some(ms(10)));
        assert_eq!(stats.p95, Some(ms(900)));
    }

    #[test]
    fn scripted_transitions_healthy_degraded_unhealthy_healthy() {
        let t0 = Instant::now();
        let mut w = window(20, 10);
        let mut statuses = Vec::new();

        record_many(&mut w, t0, 20, true, 10); // 20/20 ok
        statuses.push(w.status(t0, false));
        record_many(&mut w, t0, 2, false, 10); // 18/20 = 0.90
        statuses.push(w.status(t0, false));
        record_many(&mut w, t0, 10, false, 10); // 8/20 = 0.40
        statuses.push(w.status(t0, false));
        record_many(&mut w, t0, 20, true, 10); // 20/20 ok
        statuses.push(w.status(t0, false));

        assert_eq!(
            statuses,
            [
                HealthStatus::Healthy,
                HealthStatus::Degraded,
                HealthStatus::Unhealthy,
                HealthStatus::Healthy,
            ]
        );
    }

    #[test]
    fn unhealthy_window_recovers_when_samples_age_out() {
        let t0 = Instant::now();
        let mut w = HealthWindow::new(HealthConfig {
            max_age: Some(Duration::from_secs(10)),
            ..HealthConfig::default()
        });
        record_many(&mut w, t0, 10, false, 10);
        assert_eq!(w.status(t0, false), HealthStatus::Unhealthy);
        assert_eq!(
            w.status(t0 + Duration::from_secs(11), false),
            HealthStatus::Healthy
        );
    }

    #[test]
    fn minimum_calls_respected() {
        let t0 = Instant::now();
        let mut w = window(20, 10);
        record_many(&mut w, t0, 9, false, 10);
        assert_eq!(w.status(t0, false), HealthStatus::Healthy);
        w.record(t0, false, ms(10));
        assert_eq!(w.status(t0, false), HealthStatus::Unhealthy);
    }

    #[test]
    fn breaker_open_overrides_to_unhealthy() {
        let t0 = Instant::now();
        let mut w = window(20, 10);
        assert_eq!(w.status(t0, true), HealthStatus::Unhealthy);
        record_many(&mut w, t0, 20, true, 1);
        assert_eq!(w.status(t0, false), HealthStatus::Healthy);
        assert_eq!(w.status(t0, true), HealthStatus::Unhealthy);
    }

    #[test]
    fn latency_thresholds_trigger_degraded_and_unhealthy() {
        let t0 = Instant::now();
        let mut w = window(20, 10);
        record_many(&mut w, t0, 20, true, 1000); // p95 = 1s, not above the limit
        assert_eq!(w.status(t0, false), HealthStatus::Healthy);
        record_many(&mut w, t0, 2, true, 1001); // p95 = ceil(19)th of 20 → 1001ms
        assert_eq!(w.stats(t0).p95, Some(ms(1001)));
        assert_eq!(w.status(t0, false), HealthStatus::Degraded);
        record_many(&mut w, t0, 2, true, 5001);
        assert_eq!(w.stats(t0).p95, Some(ms(5001)));
        assert_eq!(w.status(t0, false), HealthStatus::Unhealthy);
        record_many(&mut w, t0, 20, true, 10);
        assert_eq!(w.status(t0, false), HealthStatus::Healthy);
    }

    #[test]
    fn never_recorded_window_allocates_nothing() {
        let mut w = HealthWindow::new(HealthConfig::default());
        let _ = w.stats(Instant::now());
        let _ = w.status(Instant::now(), false);
        w.clear();
        assert_eq!(w.samples.capacity(), 0);
        assert_eq!(w.scratch.capacity(), 0);
    }

    #[test]
    fn memory_bounded_by_window_size() {
        let t0 = Instant::now();
        let mut w = window(100, 1);
        w.record(t0, true, ms(1));
        let capacity = w.samples.capacity();
        assert!(capacity >= 100);
        for i in 0..1000 {
            w.record(t0, i % 3 != 0, ms(i));
            let _ = w.stats(t0);
        }
        assert_eq!(w.samples.len(), 100);
        assert_eq!(
            w.samples.capacity(),
            capacity,
            "no reallocation after first record"
        );
        assert_eq!(w.scratch.len(), 100);
        assert!(w.scratch.capacity() <= capacity);
    }

    #[test]
    fn clear_forgets_samples() {
        let t0 = Instant::now();
        let mut w = window(10, 1);
        record_many(&mut w, t0, 5, false, 10);
        w.clear();
        assert_eq!(w.stats(t0), HealthStats::EMPTY);
        assert_eq!(w.status(t0, false), HealthStatus::Healthy);
        assert_eq!(w.config().window_size, 10);
    }

    #[test]
    fn reconfigure_keeps_the_samples_and_drops_the_oldest_when_shrinking() {
        let t0 = Instant::now();
        let config = HealthConfig {
            window_size: 4,
            ..HealthConfig::default()
        };
        let mut window = HealthWindow::new(config.clone());
        for i in 0..4u64 {
            window.record(t0, i % 2 == 0, Duration::from_millis(i));
        }
        window.reconfigure(HealthConfig {
            window_size: 8,
            ..config.clone()
        });
        assert_eq!(window.stats(t0).calls, 4);
        window.record(t0, true, Duration::ZERO);
        assert_eq!(window.stats(t0).calls, 5);
        // Shrunk to 2: the two newest are kept (a failure at 3 ms, a success).
        window.reconfigure(HealthConfig {
            window_size: 2,
            ..config
        });
        let stats = window.stats(t0);
        assert_eq!(stats.calls, 2);
        assert_eq!(stats.failures, 1);
        window.record(t0, true, Duration::ZERO);
        assert_eq!(window.stats(t0).calls, 2);
    }
}
