//! Time-based sliding window: outcomes of roughly the last `duration`.
//!
//! Granularity: the window is split into 10 buckets, each `duration / 10` wide (at least
//! 1 ms), aligned to the instant of the first recorded call. Totals cover the bucket holding
//! `now` and the 9 before it, so a call stops counting between `0.9 × duration` and
//! `duration` after it was recorded, and never later than `duration`. With a duration under
//! 10 ms the 1 ms minimum width makes the window effectively 10 ms long.

use std::time::{Duration, Instant};

use super::totals::WindowTotals;
use crate::ring::{BucketRing, Tally};

/// Number of buckets a time window is split into.
const BUCKETS: u32 = 10;
/// Narrowest bucket.
const MIN_BUCKET_WIDTH: Duration = Duration::from_millis(1);

/// Counts for one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u64,
    failures: u64,
    slow_calls: u64,
}

impl Tally for Bucket {
    fn add(&mut self, other: &Self) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.slow_calls += other.slow_calls;
    }

    fn remove(&mut self, other: &Self) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow_calls -= other.slow_calls;
    }
}

/// Ten rotating buckets with running totals (the crate's one [`BucketRing`]).
#[derive(Debug, Clone)]
pub(crate) struct TimeWindow {
    ring: BucketRing<Bucket>,
}

impl TimeWindow {
    /// An empty window covering `duration`.
    pub(crate) fn new(duration: Duration) -> Self {
        let width = (duration / BUCKETS).max(MIN_BUCKET_WIDTH);
        TimeWindow {
            ring: BucketRing::new(width, BUCKETS),
        }
    }

    /// Record one outcome at `now`.
    pub(crate) fn record(&mut self, failure: bool, slow: bool, now: Instant) {
        let outcome = Bucket {
            calls: 1,
            failures: u64::from(failure),
            slow_calls: u64::from(slow),
        };
        self.ring.add(now, outcome);
    }

    /// Totals over the buckets that are still inside the window at `now`.
    pub(crate) fn totals(&self, now: Instant) -> WindowTotals {
        let totals = self.ring.totals(now);
        WindowTotals {
            calls: totals.calls,
            failures: totals.failures,
            slow_calls: totals.slow_calls,
        }
    }

    /// Forget every outcome (keeps the allocation for reuse).
    pub(crate) fn clear(&mut self) {
        self.ring.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn totals(w: &TimeWindow, now: Instant) -> (u64, u64, u64) {
        let t = w.totals(now);
        (t.calls, t.failures, t.slow_calls)
    }

    #[test]
    fn takes_no_memory_before_first_record() {
        let t0 = Instant::now();
        let w = TimeWindow::new(Duration::from_secs(60));
        assert_eq!(w.ring.allocated(), 0);
        assert_eq!(totals(&w, t0), (0, 0, 0));
    }

    #[test]
    fn calls_expire_once_their_bucket_leaves_the_window() {
        let t0 = Instant::now();
        let mut w = TimeWindow::new(Duration::from_secs(10)); // 1 s buckets
        w.record(true, false, t0);
        w.record(false, true, t0 + ms(999));
        w.record(true, true, t0 + ms(1000));
        assert_eq!(totals(&w, t0 + ms(1000)), (3, 2, 2));
        // bucket 0 is still inside until 10 s after the origin
        assert_eq!(totals(&w, t0 + ms(9_999)), (3, 2, 2));
        assert_eq!(totals(&w, t0 + ms(10_000)), (1, 1, 1));
        assert_eq!(totals(&w, t0 + ms(11_000)), (0, 0, 0));
        // reading did not mutate: recording later expires the same way
        w.record(false, false, t0 + ms(10_500));
        assert_eq!(totals(&w, t0 + ms(10_500)), (2, 1, 1));
    }

    #[test]
    fn a_gap_longer_than_the_window_clears_all_buckets() {
        let t0 = Instant::now();
        let mut w = TimeWindow::new(Duration::from_secs(1));
        for i in 0..10 {
            w.record(true, false, t0 + ms(i * 100));
        }
        assert_eq!(totals(&w, t0 + ms(950)), (10, 10, 0));
        w.record(false, false, t0 + Duration::from_secs(3600));
        assert_eq!(totals(&w, t0 + Duration::from_secs(3600)), (1, 0, 0));
    }

    #[test]
    fn out_of_order_instants_join_the_newest_bucket() {
        let t0 = Instant::now();
        let mut w = TimeWindow::new(Duration::from_secs(10));
        w.record(false, false, t0 + ms(5_000));
        w.record(true, false, t0); // earlier than origin-relative head
        assert_eq!(totals(&w, t0 + ms(5_000)), (2, 1, 0));
        assert_eq!(totals(&w, t0 + ms(14_999)), (2, 1, 0));
        assert_eq!(totals(&w, t0 + ms(15_000)), (0, 0, 0));
    }

    #[test]
    fn tiny_durations_use_one_millisecond_buckets() {
        let t0 = Instant::now();
        let mut w = TimeWindow::new(Duration::from_micros(50));
        w.record(true, false, t0);
        assert_eq!(totals(&w, t0 + ms(9)), (1, 1, 0));
        assert_eq!(totals(&w, t0 + ms(10)), (0, 0, 0));
    }

    #[test]
    fn clear_restarts_alignment_at_next_record() {
        let t0 = Instant::now();
        let mut w = TimeWindow::new(Duration::from_secs(10));
        w.record(true, true, t0);
        w.clear();
        assert_eq!(totals(&w, t0), (0, 0, 0));
        w.record(true, false, t0 + ms(500));
        assert_eq!(totals(&w, t0 + ms(10_499)), (1, 1, 0));
        assert_eq!(totals(&w, t0 + ms(10_500)), (0, 0, 0));
    }
}
