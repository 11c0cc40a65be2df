//! The breaker's outcome window (count- or time-based) and its public snapshot.

use std::time::Instant;

use serde::Serialize;

use super::count_window::CountWindow;
use super::sliding_window::SlidingWindow;
use super::time_window::TimeWindow;

/// What the breaker's window currently holds, plus the consecutive-failure count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowSnapshot {
    /// Recorded calls (successes and failures) in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failures: u32,
    /// Slow calls (successful or not) in the window.
    pub slow_calls: u32,
    /// `failures / calls`, 0 when the window is empty.
    pub failure_rate: f64,
    /// `slow_calls / calls`, 0 when the window is empty.
    pub slow_call_rate: f64,
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
}

impl WindowSnapshot {
    /// The snapshot of empty windows.
    pub const EMPTY: WindowSnapshot = WindowSnapshot {
        calls: 0,
        failures: 0,
        slow_calls: 0,
        failure_rate: 0.0,
        slow_call_rate: 0.0,
        consecutive_failures: 0,
    };
}

/// Raw counts held by a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowTotals {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow_calls: u64,
}

impl WindowTotals {
    /// `failures / calls`, 0 when empty.
    pub(crate) fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// `slow_calls / calls`, 0 when empty.
    pub(crate) fn slow_call_rate(&self) -> f64 {
        ratio(self.slow_calls, self.calls)
    }

    /// The public snapshot (counts saturate at `u32::MAX`).
    pub(crate) fn snapshot(&self, consecutive_failures: u32) -> WindowSnapshot {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        WindowSnapshot {
            calls: clamp(self.calls),
            failures: clamp(self.failures),
            slow_calls: clamp(self.slow_calls),
            failure_rate: self.failure_rate(),
            slow_call_rate: self.slow_call_rate(),
            consecutive_failures,
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

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
