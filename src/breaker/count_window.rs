//! Count-based sliding window: the last `size` recorded outcomes.

use super::totals::WindowTotals;

/// Flag bit: the outcome was a failure.
const FAILURE: u8 = 1;
/// Flag bit: the outcome was slow.
const SLOW: u8 = 2;

/// A ring of the last `size` outcomes, one byte each, with running totals.
///
/// Recording is O(1). The ring grows by pushing until it holds `size` entries (no memory is
/// taken before the first call), then overwrites its oldest entry.
#[derive(Debug, Clone)]
pub(crate) struct CountWindow {
    size: usize,
    ring: Vec<u8>,
    /// Index of the oldest entry once the ring is full.
    oldest: usize,
    failures: u32,
    slow_calls: u32,
}

impl CountWindow {
    /// An empty window keeping the last `size` outcomes (`size` ≥ 1).
    pub(crate) fn new(size: u32) -> Self {
        CountWindow {
            size: usize::try_from(size).unwrap_or(usize::MAX).max(1),
            ring: Vec::new(),
            oldest: 0,
            failures: 0,
            slow_calls: 0,
        }
    }

    /// Record one outcome, evicting the oldest when full.
    #[inline]
    pub(crate) fn record(&mut self, failure: bool, slow: bool) {
        let flags = if failure { FAILURE } else { 0 } | if slow { SLOW } else { 0 };
        if self.ring.len() < self.size {
            self.ring.push(flags);
        } else {
            let evicted = std::mem::replace(&mut self.ring[self.oldest], flags);
            // (`oldest < size`: the next one, wrapping round.)
            self.oldest += 1;
            if self.oldest == self.size {
                self.oldest = 0;
            }
            self.failures -= u32::from(evicted & FAILURE);
            self.slow_calls -= u32::from((evicted & SLOW) >> 1);
        }
        self.failures += u32::from(flags & FAILURE);
        self.slow_calls += u32::from((flags & SLOW) >> 1);
    }

    /// Totals over the outcomes currently held.
    pub(crate) fn totals(&self) -> WindowTotals {
        WindowTotals {
            calls: u64::try_from(self.ring.len()).unwrap_or(u64::MAX),
            failures: u64::from(self.failures),
            slow_calls: u64::from(self.slow_calls),
        }
    }

    /// Forget every outcome (keeps the allocation for reuse).
    pub(crate) fn clear(&mut self) {
        self.ring.clear();
        self.oldest = 0;
        self.failures = 0;
        self.slow_calls = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(w: &CountWindow) -> (u64, u64, u64) {
        let t = w.totals();
        (t.calls, t.failures, t.slow_calls)
    }

    #[test]
    fn takes_no_memory_before_first_record() {
        let w = CountWindow::new(1_000_000);
        assert_eq!(w.ring.capacity(), 0);
        assert_eq!(totals(&w), (0, 0, 0));
    }

    #[test]
    fn keeps_only_the_last_size_outcomes() {
        let mut w = CountWindow::new(3);
        w.record(true, false);
        w.record(true, true);
        w.record(false, true);
        assert_eq!(totals(&w), (3, 2, 2));
        // evicts the first (fast) failure
        w.record(false, false);
        assert_eq!(totals(&w), (3, 1, 2));
        // evicts the slow failure
        w.record(false, false);
        assert_eq!(totals(&w), (3, 0, 1));
        // evicts the slow success
        w.record(true, false);
        assert_eq!(totals(&w), (3, 1, 0));
        assert_eq!(w.ring.len(), 3);
    }

    #[test]
    fn clear_forgets_everything_and_ring_restarts() {
        let mut w = CountWindow::new(2);
        w.record(true, true);
        w.record(true, true);
        w.record(true, true);
        w.clear();
        assert_eq!(totals(&w), (0, 0, 0));
        w.record(false, false);
        w.record(true, false);
        w.record(false, false);
        assert_eq!(totals(&w), (2, 1, 0));
    }
}
