//! What a breaker window holds ([`WindowTotals`]), and its public snapshot
//! ([`WindowSnapshot`]): shared by the count and the time windows.

use serde::Serialize;

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
