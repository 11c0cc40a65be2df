//! The one time-bucket ring behind every sliding time window of warden: the breaker's time
//! window, the throttle's request window and the retry budget.
//!
//! A window of `buckets` buckets, each `width` wide, aligned to the first instant the ring is
//! advanced to. The totals cover the bucket holding `now` and the `buckets - 1` before it, so
//! an event stops counting between `(buckets - 1) × width` and `buckets × width` after it
//! happened. An instant earlier than the latest one seen counts in the newest bucket (clocks
//! read on different threads may arrive out of order).
//!
//! Running totals are kept beside the buckets: adding is O(1), and moving to a new bucket
//! clears at most `buckets` stale ones; while `now` stays inside the newest bucket, advancing
//! is one comparison (the common case on a call's path). No memory is taken before the first
//! event.
//!
//! What is counted is the caller's: any [`Tally`] (calls and failures for the breaker,
//! requests and accepts for the throttle, calls and retries for the budget).

use std::time::{Duration, Instant};

/// Counts that can be added to a bucket and taken off again when the bucket expires.
pub(crate) trait Tally: Copy + Default {
    /// Adds `other` to these counts.
    fn add(&mut self, other: &Self);
    /// Takes `other` (counts added earlier) off these counts.
    fn remove(&mut self, other: &Self);
}

/// `buckets` rotating buckets of counts `C` with their running total. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct BucketRing<C> {
    width_nanos: u128,
    len: u64,
    /// Start of bucket 0: the first instant advanced to after creation or [`clear`](Self::clear).
    origin: Option<Instant>,
    /// Absolute number of the newest bucket.
    head: u64,
    /// Its slot in `ring` (`head % len`, kept so adding needs no division).
    head_slot: usize,
    /// When the newest bucket ends (`None` before the first event, or past the representable
    /// range): until then advancing changes nothing.
    head_ends: Option<Instant>,
    ring: Vec<C>,
    totals: C,
}

impl<C: Tally> BucketRing<C> {
    /// An empty ring of `buckets` buckets (at least 1), each `width` wide (at least 1 ns).
    pub(crate) fn new(width: Duration, buckets: u32) -> Self {
        BucketRing {
            width_nanos: width.as_nanos().max(1),
            len: u64::from(buckets.max(1)),
            origin: None,
            head: 0,
            head_slot: 0,
            head_ends: None,
            ring: Vec::new(),
            totals: C::default(),
        }
    }

    /// Moves the newest bucket to `now`, expiring the buckets that leave the window (and
    /// setting the origin at the first call).
    #[inline]
    pub(crate) fn advance(&mut self, now: Instant) {
        if self.head_ends.is_some_and(|ends| now < ends) {
            return;
        }
        self.move_head(now);
    }

    /// [`advance`](Self::advance) past the newest bucket's end.
    #[inline(never)]
    fn move_head(&mut self, now: Instant) {
        let origin = match self.origin {
            Some(origin) => origin,
            None => {
                self.origin = Some(now);
                self.head = 0;
                self.ring.resize(self.len as usize, C::default());
                now
            }
        };
        let index = self.index_at(now);
        if index - self.head >= self.len {
            self.ring.fill(C::default());
            self.totals = C::default();
        } else {
            for stale in self.head + 1..=index {
                let slot = self.slot(stale);
                let bucket = std::mem::take(&mut self.ring[slot]);
                self.totals.remove(&bucket);
            }
        }
        self.head = index;
        self.head_slot = self.slot(index);
        let ends = u64::try_from(self.width_nanos.saturating_mul(u128::from(index) + 1)).ok();
        self.head_ends = ends.and_then(|nanos| origin.checked_add(Duration::from_nanos(nanos)));
    }

    /// Adds `counts` at `now`.
    #[inline]
    pub(crate) fn add(&mut self, now: Instant, counts: C) {
        self.advance(now);
        self.ring[self.head_slot].add(&counts);
        self.totals.add(&counts);
    }

    /// The totals as of the last [`advance`](Self::advance) or [`add`](Self::add).
    pub(crate) fn current(&self) -> C {
        self.totals
    }

    /// The totals of the buckets still inside the window at `now`, without advancing.
    pub(crate) fn totals(&self, now: Instant) -> C {
        if self.origin.is_none() {
            return C::default();
        }
        let index = self.index_at(now);
        if index - self.head >= self.len {
            return C::default();
        }
        let mut totals = self.totals;
        for stale in self.head + 1..=index {
            totals.remove(&self.ring[self.slot(stale)]);
        }
        totals
    }

    /// Forgets every event (keeps the allocation for reuse).
    pub(crate) fn clear(&mut self) {
        self.origin = None;
        self.head = 0;
        self.head_slot = 0;
        self.head_ends = None;
        self.ring.clear();
        self.totals = C::default();
    }

    /// Bytes the buckets hold on the heap (0 before the first event).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<C>()
    }

    /// Absolute bucket number of `now`, never before the head (late `now`s join the head).
    fn index_at(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else {
            return self.head;
        };
        let elapsed = now.saturating_duration_since(origin).as_nanos();
        u64::try_from(elapsed / self.width_nanos)
            .unwrap_or(u64::MAX)
            .max(self.head)
    }

    fn slot(&self, bucket: u64) -> usize {
        (bucket % self.len) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    struct Count(u64);

    impl Tally for Count {
        fn add(&mut self, other: &Self) {
            self.0 += other.0;
        }
        fn remove(&mut self, other: &Self) {
            self.0 -= other.0;
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The reference: every event kept with its time, counted while its bucket is one of the
    /// `len` newest.
    struct Model {
        origin: Option<Instant>,
        latest: u64,
        events: Vec<(u64, u64)>,
        width: u64,
        len: u64,
    }

    impl Model {
        fn bucket(&mut self, now: Instant) -> u64 {
            let origin = *self.origin.get_or_insert(now);
            let bucket = (now.saturating_duration_since(origin).as_nanos() as u64 / self.width)
                .max(self.latest);
            self.latest = bucket;
            bucket
        }

        fn total(&self, at: u64) -> u64 {
            let live = |bucket: u64| bucket + self.len > at;
            self.events
                .iter()
                .filter(|(b, _)| live(*b))
                .map(|(_, n)| n)
                .sum()
        }
    }

    #[test]
    fn agrees_with_a_model_of_kept_events() {
        let t0 = Instant::now();
        for (width_ms, len) in [(10, 10), (7, 3), (1, 1), (100, 12)] {
            let mut ring = BucketRing::<Count>::new(ms(width_ms), len);
            let mut model = Model {
                origin: None,
                latest: 0,
                events: Vec::new(),
                width: ms(width_ms).as_nanos() as u64,
                len: u64::from(len),
            };
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let mut at = 0_u64;
            for _ in 0..2_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly small steps, sometimes a jump past the window, sometimes back in time.
                match state % 20 {
                    0 => at += width_ms * u64::from(len) * 3,
                    1 => at = at.saturating_sub(width_ms),
                    _ => at += state % (width_ms * 2),
                }
                let now = t0 + ms(at);
                let n = state % 4;
                let bucket = model.bucket(now);
                model.events.push((bucket, n));
                ring.add(now, Count(n));
                assert_eq!(ring.current().0, model.total(bucket));
                let later = now + ms(state % (width_ms * u64::from(len) + 5));
                let later_bucket = (later
                    .saturating_duration_since(model.origin.unwrap())
                    .as_nanos() as u64
                    / model.width)
                    .max(model.latest);
                assert_eq!(ring.totals(later).0, model.total(later_bucket));
            }
        }
    }

    #[test]
    fn takes_no_memory_before_the_first_event_and_clears_to_empty() {
        let t0 = Instant::now();
        let mut ring = BucketRing::<Count>::new(ms(100), 10);
        assert_eq!(ring.allocated(), 0);
        assert_eq!(ring.totals(t0), Count(0));
        ring.add(t0, Count(3));
        assert!(ring.allocated() > 0);
        assert_eq!(ring.totals(t0 + ms(999)), Count(3));
        assert_eq!(ring.totals(t0 + ms(1_000)), Count(0));
        ring.clear();
        assert_eq!(ring.totals(t0), Count(0));
        // After a clear the origin is set again by the next event.
        ring.add(t0 + ms(50), Count(1));
        assert_eq!(ring.totals(t0 + ms(1_049)), Count(1));
        assert_eq!(ring.totals(t0 + ms(1_050)), Count(0));
    }
}
