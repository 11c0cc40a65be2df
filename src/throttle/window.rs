//! The throttle's sliding window: request and accept counts in rotating time buckets.
//!
//! Same scheme as the breaker's time window, with a configurable number of buckets and two
//! counters that are incremented independently (a request when it is admitted, an accept when
//! its outcome arrives).

use std::time::{Duration, Instant};

/// Requests and accepts in one bucket, or in the whole window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) accepts: u64,
}

/// `buckets` rotating buckets with running totals. Adding is O(1) amortized (moving to a new
/// bucket clears at most `buckets` stale ones); no memory is taken before the first event.
#[derive(Debug, Clone)]
pub(crate) struct RequestWindow {
    bucket_nanos: u128,
    buckets: u64,
    /// Start of bucket 0; set by the first event.
    origin: Option<Instant>,
    /// Absolute index of the newest bucket in use.
    head: u64,
    ring: Vec<Counts>,
    totals: Counts,
}

impl RequestWindow {
    /// An empty window of `buckets` buckets, each `window / buckets` wide (at least 1 ns).
    pub(crate) fn new(window: Duration, buckets: u32) -> Self {
        let buckets = buckets.max(1);
        RequestWindow {
            bucket_nanos: (window / buckets).as_nanos().max(1),
            buckets: u64::from(buckets),
            origin: None,
            head: 0,
            ring: Vec::new(),
            totals: Counts::default(),
        }
    }

    /// Add `requests` and `accepts` at `now`.
    pub(crate) fn add(&mut self, now: Instant, requests: u64, accepts: u64) {
        if self.origin.is_none() {
            self.origin = Some(now);
            self.head = 0;
            self.ring = vec![Counts::default(); self.buckets as usize];
        }
        let index = self.index_at(now);
        self.advance_to(index);
        let slot = (index % self.buckets) as usize;
        for counts in [&mut self.ring[slot], &mut self.totals] {
            counts.requests = counts.requests.saturating_add(requests);
            counts.accepts = counts.accepts.saturating_add(accepts);
        }
    }

    /// Totals over the buckets still inside the window at `now` (does not mutate).
    pub(crate) fn totals(&self, now: Instant) -> Counts {
        let index = self.index_at(now);
        if self.origin.is_none() || index - self.head >= self.buckets {
            return Counts::default();
        }
        let mut totals = self.totals;
        for stale in self.head + 1..=index {
            let bucket = self.ring[(stale % self.buckets) as usize];
            totals.requests -= bucket.requests;
            totals.accepts -= bucket.accepts;
        }
        totals
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
        if index - self.head >= self.buckets {
            self.ring.fill(Counts::default());
            self.totals = Counts::default();
        } else {
            for stale in self.head + 1..=index {
                let bucket = std::mem::take(&mut self.ring[(stale % self.buckets) as usize]);
                self.totals.requests -= bucket.requests;
                self.totals.accepts -= bucket.accepts;
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

    fn totals(w: &RequestWindow, now: Instant) -> (u64, u64) {
        let t = w.totals(now);
        (t.requests, t.accepts)
    }

    #[test]
    fn takes_no_memory_before_first_event() {
        let t0 = Instant::now();
        let w = RequestWindow::new(Duration::from_secs(60), 12);
        assert_eq!(w.ring.capacity(), 0);
        assert_eq!(totals(&w, t0), (0, 0));
    }

    #[test]
    fn events_expire_once_their_bucket_leaves_the_window() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(4), 4); // 1 s buckets
        w.add(t0, 2, 0);
        w.add(t0 + ms(999), 0, 1);
        w.add(t0 + ms(1_000), 1, 1);
        assert_eq!(totals(&w, t0 + ms(1_000)), (3, 2));
        assert_eq!(totals(&w, t0 + ms(3_999)), (3, 2));
        assert_eq!(totals(&w, t0 + ms(4_000)), (1, 1));
        assert_eq!(totals(&w, t0 + ms(5_000)), (0, 0));
        // reading did not mutate: adding later expires the same way
        w.add(t0 + ms(4_500), 1, 0);
        assert_eq!(totals(&w, t0 + ms(4_500)), (2, 1));
    }

    #[test]
    fn a_gap_longer_than_the_window_clears_everything() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(1), 3);
        w.add(t0, 5, 5);
        w.add(t0 + Duration::from_secs(3600), 1, 0);
        assert_eq!(totals(&w, t0 + Duration::from_secs(3600)), (1, 0));
    }

    #[test]
    fn earlier_instants_join_the_newest_bucket() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(10), 10);
        w.add(t0 + ms(5_000), 1, 0);
        w.add(t0, 0, 1);
        assert_eq!(totals(&w, t0 + ms(14_999)), (1, 1));
        assert_eq!(totals(&w, t0 + ms(15_000)), (0, 0));
    }

    #[test]
    fn one_bucket_window_empties_at_each_boundary() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(2), 1);
        w.add(t0 + ms(100), 3, 1);
        assert_eq!(totals(&w, t0 + ms(2_099)), (3, 1));
        assert_eq!(totals(&w, t0 + ms(2_100)), (0, 0));
    }
}
