//! The throttle's sliding window: request and accept counts in rotating time buckets.
//!
//! The crate's one time-bucket ring (as the breaker's time window), with a configurable number of buckets and two
//! counters that are incremented independently (a request when it is admitted, an accept when
//! its outcome arrives).

use std::time::{Duration, Instant};

use crate::ring::{BucketRing, Tally};

/// Requests and accepts in one bucket, or in the whole window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) accepts: u64,
    /// The requests by [criticality](crate::criticality::Criticality), least critical first.
    pub(crate) by_class: [u64; 3],
}

impl Tally for Counts {
    fn add(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.accepts = self.accepts.saturating_add(other.accepts);
        for (mine, theirs) in self.by_class.iter_mut().zip(other.by_class) {
            *mine = mine.saturating_add(theirs);
        }
    }

    fn remove(&mut self, other: &Self) {
        self.requests -= other.requests;
        self.accepts -= other.accepts;
        for (mine, theirs) in self.by_class.iter_mut().zip(other.by_class) {
            *mine -= theirs;
        }
    }
}

/// `buckets` rotating buckets with running totals (the crate's one [`BucketRing`]).
#[derive(Debug, Clone)]
pub(crate) struct RequestWindow {
    ring: BucketRing<Counts>,
}

impl RequestWindow {
    /// An empty window of `buckets` buckets, each `window / buckets` wide (at least 1 ns).
    pub(crate) fn new(window: Duration, buckets: u32) -> Self {
        RequestWindow {
            ring: BucketRing::new(window / buckets.max(1), buckets),
        }
    }

    /// Add `requests` (of the criticality of index `class`) and `accepts` at `now`.
    pub(crate) fn add(&mut self, now: Instant, class: usize, requests: u64, accepts: u64) {
        let mut by_class = [0; 3];
        by_class[class] = requests;
        self.ring.add(
            now,
            Counts {
                requests,
                accepts,
                by_class,
            },
        );
    }

    /// Totals over the buckets still inside the window at `now` (does not mutate).
    pub(crate) fn totals(&self, now: Instant) -> Counts {
        self.ring.totals(now)
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
        assert_eq!(w.ring.allocated(), 0);
        assert_eq!(totals(&w, t0), (0, 0));
    }

    #[test]
    fn events_expire_once_their_bucket_leaves_the_window() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(4), 4); // 1 s buckets
        w.add(t0, 1, 2, 0);
        w.add(t0 + ms(999), 1, 0, 1);
        w.add(t0 + ms(1_000), 1, 1, 1);
        assert_eq!(totals(&w, t0 + ms(1_000)), (3, 2));
        assert_eq!(totals(&w, t0 + ms(3_999)), (3, 2));
        assert_eq!(totals(&w, t0 + ms(4_000)), (1, 1));
        assert_eq!(totals(&w, t0 + ms(5_000)), (0, 0));
        // reading did not mutate: adding later expires the same way
        w.add(t0 + ms(4_500), 1, 1, 0);
        assert_eq!(totals(&w, t0 + ms(4_500)), (2, 1));
    }

    #[test]
    fn a_gap_longer_than_the_window_clears_everything() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(1), 3);
        w.add(t0, 1, 5, 5);
        w.add(t0 + Duration::from_secs(3600), 1, 1, 0);
        assert_eq!(totals(&w, t0 + Duration::from_secs(3600)), (1, 0));
    }

    #[test]
    fn earlier_instants_join_the_newest_bucket() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(10), 10);
        w.add(t0 + ms(5_000), 1, 1, 0);
        w.add(t0, 1, 0, 1);
        assert_eq!(totals(&w, t0 + ms(14_999)), (1, 1));
        assert_eq!(totals(&w, t0 + ms(15_000)), (0, 0));
    }

    #[test]
    fn one_bucket_window_empties_at_each_boundary() {
        let t0 = Instant::now();
        let mut w = RequestWindow::new(Duration::from_secs(2), 1);
        w.add(t0 + ms(100), 1, 3, 1);
        assert_eq!(totals(&w, t0 + ms(2_099)), (3, 1));
        assert_eq!(totals(&w, t0 + ms(2_100)), (0, 0));
    }
}
