//! The breaker's outcome window: count- or time-based, as configured.

use std::time::Instant;

use super::count_window::CountWindow;
use super::sliding_window::SlidingWindow;
use super::time_window::TimeWindow;
#[cfg(test)]
use super::totals::WindowSnapshot;
use super::totals::WindowTotals;

/// The window kind chosen by configuration.
#[derive(Debug, Clone)]
pub(crate) enum OutcomeWindow {
    /// Last N calls.
    Count(CountWindow),
    /// Calls of the last duration.
    Time(TimeWindow),
}

impl OutcomeWindow {
    /// An empty window of the configured kind.
    pub(crate) fn new(config: &SlidingWindow) -> Self {
        match *config {
            SlidingWindow::Count { size } => OutcomeWindow::Count(CountWindow::new(size)),
            SlidingWindow::Time { duration } => OutcomeWindow::Time(TimeWindow::new(duration)),
        }
    }

    /// Record one outcome at `now`.
    #[inline]
    pub(crate) fn record(&mut self, failure: bool, slow: bool, now: Instant) {
        match self {
            OutcomeWindow::Count(w) => w.record(failure, slow),
            OutcomeWindow::Time(w) => w.record(failure, slow, now),
        }
    }

    /// Totals as of `now`.
    pub(crate) fn totals(&self, now: Instant) -> WindowTotals {
        match self {
            OutcomeWindow::Count(w) => w.totals(),
            OutcomeWindow::Time(w) => w.totals(now),
        }
    }

    /// Forget every outcome.
    pub(crate) fn clear(&mut self) {
        match self {
            OutcomeWindow::Count(w) => w.clear(),
            OutcomeWindow::Time(w) => w.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn snapshot_rates_are_zero_when_empty_and_ratios_otherwise() {
        let t0 = Instant::now();
        let mut w = OutcomeWindow::new(&SlidingWindow::Count { size: 10 });
        assert_eq!(w.totals(t0).snapshot(0), WindowSnapshot::EMPTY);
        w.record(true, false, t0);
        w.record(false, true, t0);
        w.record(false, false, t0);
        w.record(true, true, t0);
        let s = w.totals(t0).snapshot(1);
        assert_eq!((s.calls, s.failures, s.slow_calls), (4, 2, 2));
        assert_eq!((s.failure_rate, s.slow_call_rate), (0.5, 0.5));
        assert_eq!(s.consecutive_failures, 1);
    }

    #[test]
    fn dispatches_to_time_window() {
        let t0 = Instant::now();
        let mut w = OutcomeWindow::new(&SlidingWindow::Time {
            duration: Duration::from_secs(1),
        });
        w.record(true, false, t0);
        assert_eq!(w.totals(t0).calls, 1);
        assert_eq!(w.totals(t0 + Duration::from_secs(1)).calls, 0);
        w.clear();
        assert_eq!(w.totals(t0).calls, 0);
    }
}
