//! Time-based sliding window: outcomes of roughly the last `duration`.
//!
//! Granularity: the window is split into 10 buckets, each `duration / 10` wide (at least
//! 1 ms), aligned to the instant of the first recorded call. Totals cover the bucket holding
//! `now` and the 9 before it, so a call stops counting between `0.9 × duration` and
//! `duration` after it was recorded, and never later than `duration`. With a duration under
//! 10 ms the 1 ms minimum width makes the window effectively 10 ms long.

use std::time::{Duration, Instant};

use super::totals::WindowTotals;

/// Number of buckets a time window is split into.
const BUCKETS: u64 = 10;
/// Narrowest bucket.
const MIN_BUCKET_WIDTH: Duration = Duration::from_millis(1);

/// Counts for one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u64,
    failures: u64,
    slow_calls: u64,
}

/// Ten rotating buckets with running totals. Recording is O(1) amortized (moving to a new
/// bucket clears at most 10 stale ones); no memory is taken before the first call.
#[derive(Debug, Clone)]
pub(crate) struct TimeWindow {
    bucket_nanos: u128,
    /// Start of bucket 0; set by the first record after creation or `clear`.
    origin: Option<Instant>,
    /// Absolute index of the newest bucket in use.
    head: u64,
    buckets: Vec<Bucket>,
    totals: Bucket,
}

impl TimeWindow {
    /// An empty window covering `duration`.
    pub(crate) fn new(duration: Duration) -> Self {
        let width = (duration / 10).max(MIN_BUCKET_WIDTH);
        TimeWindow {
            bucket_nanos: width.as_nanos(),
            origin: None,
            head: 0,
            buckets: Vec::new(),
            totals: Bucket::default(),
        }
    }

    /// Record one outcome at `now`.
    pub(crate) fn record(&mut self, failure: bool, slow: bool, now: Instant) {
        if self.origin.is_none() {
            self.origin = Some(now);
            self.head = 0;
            self.buckets.resize(BUCKETS as usize, Bucket::default());
        }
        let index = self.index_at(now);
        self.advance_to(index);
        let slot = &mut self.buckets[(index % BUCKETS) as usize];
        for counts in [slot, &mut self.totals] {
            counts.calls += 1;
            counts.failures += u64::from(failure);
            counts.slow_calls += u64::from(slow);
        }
    }

    /// Totals over the buckets that are still inside the window at `now`.
    pub(crate) fn totals(&self, now: Instant) -> WindowTotals {
        let mut totals = self.totals;
        let index = self.index_at(now);
        if index - self.head >= BUCKETS {
            totals = Bucket::default();
        } else {
            for stale in self.head + 1..=index {
                let bucket = self.buckets[(stale % BUCKETS) as usize];
                totals.calls -= bucket.calls;
                totals.failures -= bucket.failures;
                totals.slow_calls -= bucket.slow_calls;
            }
        }
        WindowTotals {
            calls: totals.calls,
            failures: totals.failures,
            slow_calls: totals.slow_calls,
        }
    }

    /// Forget every outcome (keeps the allocation for reuse).
    pub(crate) fn clear(&mut self) {
        self.origin = None;
        self.head = 0;
        self.buckets.clear();
        self.totals = Bucket::default();
    }

    /// Absolute bucket index of `now`, never before the head (late `now`s join the head).
    fn index_at(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else {
            return self.head;
        };
        let elapsed = now.saturating_duration_since(origin).as_nanos();
        u64::try_from(elapsed / self.bucket_nanos)
            .unwrap_or(u64::MAX)
            .max(self.head)
    }

    /// Make `index` the head, emptying the buckets it reuses.
    fn advance_to(&mut self, index: u64) {
        if index - self.head >= BUCKETS {
            self.buckets.fill(Bucket::default());
            self.totals = Bucket::default();
        } else {
            for stale in self.head + 1..=index {
                let bucket = std::mem::take(&mut self.buckets[(stale % BUCKETS) as usize]);
                self.totals.calls -= bucket.calls;
                self.totals.failures -= bucket.failures;
                self.totals.slow_calls -= bucket.slow_calls;
            }
        }
        self.head = index;
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
        assert_eq!(w.buckets.capacity(), 0);
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
        assert_eq!(w.bucket_nanos, 1_000_000);
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
