//! [`HealthStats`]: call counts, success rate and latency quantiles over a health window.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a [`HealthWindow`](super::HealthWindow) saw over its current window.
///
/// Latency quantiles use the nearest-rank method over *all* samples in the window (successes
/// and failures alike): with the `n` latencies sorted ascending, the q-quantile is
/// `sorted[ceil(q * n) - 1]`, computed in exact integer arithmetic. It is always an observed
/// latency, never an interpolation; with 1..=100 ms samples p50 = 50ms, p95 = 95ms,
/// p99 = 99ms, and with a single sample every quantile is that sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthStats {
    /// Samples in the window.
    pub calls: u32,
    /// Samples in the window that failed.
    pub failures: u32,
    /// `(calls - failures) / calls`; `None` when `calls == 0`.
    pub success_rate: Option<f64>,
    /// Median latency; `None` when the window is empty.
    #[serde(with = "humantime_serde")]
    pub p50: Option<Duration>,
    /// 95th percentile latency; `None` when the window is empty.
    #[serde(with = "humantime_serde")]
    pub p95: Option<Duration>,
    /// 99th percentile latency; `None` when the window is empty.
    #[serde(with = "humantime_serde")]
    pub p99: Option<Duration>,
}

impl HealthStats {
    /// Stats of an empty window: no calls, no rate, no quantiles.
    pub const EMPTY: HealthStats = HealthStats {
        calls: 0,
        failures: 0,
        success_rate: None,
        p50: None,
        p95: None,
        p99: None,
    };

    /// Builds stats from counts and the window's latencies, which must already be sorted
    /// ascending (one per call).
    pub(crate) fn from_sorted(calls: u32, failures: u32, sorted_latencies: &[Duration]) -> Self {
        let success_rate = (calls > 0).then(|| f64::from(calls - failures) / f64::from(calls));
        HealthStats {
            calls,
            failures,
            success_rate,
            p50: nearest_rank(sorted_latencies, 50),
            p95: nearest_rank(sorted_latencies, 95),
            p99: nearest_rank(sorted_latencies, 99),
        }
    }
}

/// The `percent`-th percentile of `sorted` by nearest rank: `sorted[ceil(percent * n / 100) - 1]`
/// with the index clamped to `[0, n - 1]`; `None` when `sorted` is empty.
pub(crate) fn nearest_rank(sorted: &[Duration], percent: u32) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (sorted.len() as u64 * u64::from(percent)).div_ceil(100);
    let index = usize::try_from(rank.saturating_sub(1)).map_or(last, |i| i.min(last));
    sorted.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_on_one_to_hundred_ms() {
        let sorted = ms(1..=100);
        assert_eq!(nearest_rank(&sorted, 50), Some(Duration::from_millis(50)));
        assert_eq!(nearest_rank(&sorted, 95), Some(Duration::from_millis(95)));
        assert_eq!(nearest_rank(&sorted, 99), Some(Duration::from_millis(99)));
        assert_eq!(nearest_rank(&sorted, 100), Some(Duration::from_millis(100)));
        assert_eq!(nearest_rank(&sorted, 0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn nearest_rank_on_small_and_empty_inputs() {
        assert_eq!(nearest_rank(&[], 50), None);
        let one = ms([7]);
        for percent in [0, 50, 95, 99, 100] {
            assert_eq!(nearest_rank(&one, percent), Some(Duration::from_millis(7)));
        }
        let three = ms([10, 20, 30]);
        // ceil(1.5) = 2 → 20ms; ceil(2.85) = 3 → 30ms; ceil(2.97) = 3 → 30ms.
        assert_eq!(nearest_rank(&three, 50), Some(Duration::from_millis(20)));
        assert_eq!(nearest_rank(&three, 95), Some(Duration::from_millis(30)));
        assert_eq!(nearest_rank(&three, 99), Some(Duration::from_millis(30)));
        let ten = ms(1..=10);
        // ceil(5) = 5 → 5ms; ceil(9.5) = 10 → 10ms.
        assert_eq!(nearest_rank(&ten, 50), Some(Duration::from_millis(5)));
        assert_eq!(nearest_rank(&ten, 95), Some(Duration::from_millis(10)));
    }

    #[test]
    fn from_sorted_computes_rate_and_handles_empty() {
        assert_eq!(HealthStats::from_sorted(0, 0, &[]), HealthStats::EMPTY);
        let stats = HealthStats::from_sorted(4, 1, &ms([1, 2, 3, 4]));
        assert_eq!(stats.calls, 4);
        assert_eq!(stats.failures, 1);
        assert_eq!(stats.success_rate, Some(0.75));
        assert_eq!(stats.p50, Some(Duration::from_millis(2)));
        assert_eq!(stats.p99, Some(Duration::from_millis(4)));
    }
}
