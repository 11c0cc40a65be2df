//! [`RetryBudget`]: caps retries at a floor plus a fraction of recent calls, so retries
//! cannot multiply the load on a dependency that is already failing (Finagle `RetryBudget`,
//! tower `TpsBudget`).
//!
//! # Semantics
//!
//! The window of length `window` is split into 10 buckets of `window / 10`, aligned to the
//! first instant the budget sees. `calls` and `retries` are the counts in the current bucket
//! and the 9 before it, so an event leaves the window between `0.9 * window` and `window`
//! after it happened. Then
//!
//! ```text
//! allowed   = floor(min_per_second * window_secs + ratio * calls)
//! try_retry = retries < allowed   (and on success the retry is counted)
//! ```
//!
//! With the defaults (ratio 0.2, 10/s, 10 s) an outage of 10 000 calls in 10 s gets at most
//! 100 + 2 000 retries: the dependency sees at most 1.21 times the offered load.
//!
//! `ratio` is applied with a precision of 1e-6 in integer arithmetic, so `0.29 * 100` allows
//! exactly 29 retries (plain `f64` would give 28.999… → 28). An instant earlier than the
//! latest one seen counts in the newest bucket. Each operation is O(1) amortized (at most 10
//! buckets are cleared when time jumps); the buckets are allocated once, on first use, and a
//! disabled budget never allocates.

use std::time::{Duration, Instant};

use super::BudgetConfig;
use crate::ring::{BucketRing, Tally};

const BUCKETS: u32 = 10;
/// `ratio` is stored as an integer number of millionths.
const RATIO_SCALE: u128 = 1_000_000;
const NANOS_PER_SECOND: u128 = 1_000_000_000;
/// Allowances are compared as integers scaled by this, so both terms stay exact.
const ALLOWANCE_SCALE: u128 = RATIO_SCALE * NANOS_PER_SECOND;

/// Sliding-window retry budget for one dependency. See the module docs for the exact rule.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    enabled: bool,
    bucket_width: Duration,
    /// `min_per_second * window_nanos * RATIO_SCALE`, i.e. the floor times `ALLOWANCE_SCALE`.
    floor_scaled: u128,
    /// `ratio_millionths * NANOS_PER_SECOND`, i.e. the ratio times `ALLOWANCE_SCALE`.
    per_call_scaled: u128,
    /// The crate's one time-bucket ring, boxed: an idle supervisor holds one pointer.
    window: Option<Box<BucketRing<Bucket>>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u64,
    retries: u64,
}

impl Tally for Bucket {
    fn add(&mut self, other: &Self) {
        self.calls += other.calls;
        self.retries += other.retries;
    }

    fn remove(&mut self, other: &Self) {
        self.calls -= other.calls;
        self.retries -= other.retries;
    }
}

impl RetryBudget {
    /// A budget for `config` (assumed validated). Allocates nothing until first used.
    pub fn new(config: BudgetConfig) -> Self {
        let window_nanos = config.window.as_nanos();
        let ratio_millionths = (config.ratio.clamp(0.0, 1.0) * RATIO_SCALE as f64).round() as u128;
        RetryBudget {
            enabled: config.enabled,
            bucket_width: bucket_width(&config),
            floor_scaled: u128::from(config.min_per_second)
                .saturating_mul(window_nanos)
                .saturating_mul(RATIO_SCALE),
            per_call_scaled: ratio_millionths * NANOS_PER_SECOND,
            window: None,
        }
    }

    /// Applies a new configuration (assumed validated). The calls and retries counted are kept
    /// when the window length is unchanged (the new ratio and floor apply to them at once); a
    /// window of another length, or a budget switched off, starts empty. Returns whether the
    /// counts were kept.
    pub fn reconfigure(&mut self, config: BudgetConfig) -> bool {
        let same_window =
            self.enabled && config.enabled && bucket_width(&config) == self.bucket_width;
        let window = if same_window {
            self.window.take()
        } else {
            None
        };
        *self = RetryBudget::new(config);
        self.window = window;
        same_window
    }

    /// Records one call offered to the dependency (a first attempt, not a retry); each call
    /// raises the allowance by `ratio`.
    #[inline]
    pub fn record_call(&mut self, now: Instant) {
        // (`add` advances the window to `now` itself.)
        if let Some(window) = self.window() {
            window.add(
                now,
                Bucket {
                    calls: 1,
                    retries: 0,
                },
            );
        }
    }

    /// Withdraws one retry: true when `retries < allowed` (the retry is then counted), false
    /// when the budget is exhausted. A disabled budget always returns true.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        let (floor, per_call) = (self.floor_scaled, self.per_call_scaled);
        let Some(window) = self.window_at(now) else {
            return true;
        };
        let counts = window.current();
        if !allows(floor, per_call, counts.calls, counts.retries) {
            return false;
        }
        window.add(
            now,
            Bucket {
                calls: 0,
                retries: 1,
            },
        );
        true
    }

    /// Whether one more retry fits in a window that holds `calls` calls and `retries` retries
    /// (the rule of [`try_retry`](Self::try_retry), for counts kept elsewhere: a
    /// [`FleetBudget`](crate::fleet::FleetBudget)'s). Always true when disabled.
    pub fn allows(&self, calls: u64, retries: u64) -> bool {
        !self.enabled || allows(self.floor_scaled, self.per_call_scaled, calls, retries)
    }

    /// Whether one more retry fits for one of `replicas` sharing a window that held
    /// `shared_calls` and `shared_retries` when they last synced, to which this one added
    /// `own_calls` and `own_retries` since: it may take its share (`1 / replicas`) of what the
    /// shared counts left, and all that its own calls add. The others take their shares from
    /// the same counts, so together they stay within the rule ([`allows`](Self::allows)),
    /// where each taking all of what is left would overshoot it by the others' retries. With
    /// one replica it is the rule itself. Always true when disabled.
    pub fn allows_share(&self, shared: (u64, u64), own: (u64, u64), replicas: u32) -> bool {
        if !self.enabled {
            return true;
        }
        let ((shared_calls, shared_retries), (own_calls, own_retries)) = (shared, own);
        // What the shared counts leave: below zero when they overshot already (each replica
        // then carries its share of the debt).
        let scaled = |value: u128| i128::try_from(value).unwrap_or(i128::MAX);
        let allowed = self.floor_scaled.saturating_add(
            self.per_call_scaled
                .saturating_mul(u128::from(shared_calls)),
        );
        let left =
            scaled(allowed).saturating_sub(scaled(u128::from(shared_retries) * ALLOWANCE_SCALE));
        let own_allowed = self.per_call_scaled.saturating_mul(u128::from(own_calls));
        let allowance = (left / i128::from(replicas.max(1))).saturating_add(scaled(own_allowed));
        scaled((u128::from(own_retries) + 1) * ALLOWANCE_SCALE) <= allowance
    }

    /// Retries still allowed in the window at `now` (`u32::MAX` when disabled, saturating).
    pub fn available(&self, now: Instant) -> u32 {
        if !self.enabled {
            return u32::MAX;
        }
        let counts = self
            .window
            .as_ref()
            .map_or_else(Bucket::default, |window| window.totals(now));
        let allowance = self.floor_scaled.saturating_add(
            self.per_call_scaled
                .saturating_mul(u128::from(counts.calls)),
        );
        let allowed = allowance / ALLOWANCE_SCALE;
        u32::try_from(allowed.saturating_sub(u128::from(counts.retries))).unwrap_or(u32::MAX)
    }

    /// The window advanced to `now`, created on first use; `None` when disabled.
    fn window_at(&mut self, now: Instant) -> Option<&mut BucketRing<Bucket>> {
        let window = self.window()?;
        window.advance(now);
        Some(window)
    }

    /// The window, created on first use; `None` when disabled.
    #[inline]
    fn window(&mut self) -> Option<&mut BucketRing<Bucket>> {
        if !self.enabled {
            return None;
        }
        let width = self.bucket_width;
        Some(
            self.window
                .get_or_insert_with(|| Box::new(BucketRing::new(width, BUCKETS))),
        )
    }
}

/// The budget's rule: `retries + 1 ≤ floor + ratio × calls`, in the scaled integers.
fn allows(floor_scaled: u128, per_call_scaled: u128, calls: u64, retries: u64) -> bool {
    let allowance = floor_scaled.saturating_add(per_call_scaled.saturating_mul(u128::from(calls)));
    (u128::from(retries) + 1) * ALLOWANCE_SCALE <= allowance
}

/// A tenth of the window (at least 1 ns).
fn bucket_width(config: &BudgetConfig) -> Duration {
    Duration::from_nanos(saturating_u64(config.window.as_nanos() / u128::from(BUCKETS)).max(1))
}

fn saturating_u64(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_one_is_the_rule_itself() {
        let budget = RetryBudget::new(BudgetConfig {
            ratio: 0.2,
            min_per_second: 1,
            window: Duration::from_secs(10),
            ..BudgetConfig::default()
        });
        for shared_calls in [0, 7, 50, 333] {
            for shared_retries in [0, 3, 20, 80] {
                for own_calls in [0, 1, 9, 40] {
                    for own_retries in [0, 2, 11] {
                        assert_eq!(
                            budget.allows_share(
                                (shared_calls, shared_retries),
                                (own_calls, own_retries),
                                1
                            ),
                            budget.allows(shared_calls + own_calls, shared_retries + own_retries),
                            "{shared_calls} {shared_retries} {own_calls} {own_retries}"
                        );
                    }
                }
            }
        }
    }
    use std::time::Duration;

    fn budget_with(ratio: f64, min_per_second: u32, window_secs: u64) -> RetryBudget {
        RetryBudget::new(BudgetConfig {
            enabled: true,
            ratio,
            min_per_second,
            window: Duration::from_secs(window_secs),
        })
    }

    fn retries_allowed(budget: &mut RetryBudget, now: Instant) -> u32 {
        let mut count = 0;
        while budget.try_retry(now) {
            count += 1;
            assert!(count <= 1_000_000, "budget never ran out");
        }
        count
    }

    #[test]
    fn ratio_allows_exactly_twenty_percent_of_calls() {
        let t0 = Instant::now();
        let mut budget = budget_with(0.2, 0, 10);
        assert_eq!(budget.available(t0), 0);
        assert!(!budget.try_retry(t0));
        for _ in 0..100 {
            budget.record_call(t0);
        }
        assert_eq!(budget.available(t0), 20);
        for _ in 0..20 {
            assert!(budget.try_retry(t0));
        }
        assert!(!budget.try_retry(t0));
        assert_eq!(budget.available(t0), 0);
    }

    #[test]
    fn floor_only_allows_min_per_second_times_window() {
        let t0 = Instant::now();
        let mut budget = budget_with(0.0, 5, 10);
        assert_eq!(budget.available(t0), 50);
        assert_eq!(retries_allowed(&mut budget, t0), 50);
        budget.record_call(t0);
        assert!(!budget.try_retry(t0));
    }

    #[test]
    fn defaults_bound_amplification_during_an_outage() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(BudgetConfig::default());
        let mut retries = 0;
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_micros(i * 999);
            budget.record_call(now);
            retries += u32::from(budget.try_retry(now));
        }
        assert_eq!(retries, 100 + 2_000);
    }

    #[test]
    fn retries_return_after_the_window_passes() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let mut budget = budget_with(0.0, 1, 10);
        assert_eq!(retries_allowed(&mut budget, t0), 10);
        let almost = t0 + window - Duration::from_nanos(1);
        assert_eq!(budget.available(almost), 0);
        assert!(!budget.try_retry(almost));
        assert_eq!(budget.available(t0 + window), 10);
        assert_eq!(retries_allowed(&mut budget, t0 + window), 10);
    }

    #[test]
    fn buckets_expire_one_by_one() {
        let t0 = Instant::now();
        let mut budget = budget_with(0.5, 0, 10);
        for second in 0..10 {
            for _ in 0..10 {
                budget.record_call(t0 + Duration::from_secs(second));
            }
        }
        // 100 calls in the window: 50 retries allowed.
        assert_eq!(budget.available(t0 + Duration::from_secs(9)), 50);
        // Each second one bucket of 10 calls leaves the window.
        let expected = [45, 40, 35, 30, 25, 20, 15, 10, 5, 0, 0];
        for (i, want) in expected.into_iter().enumerate() {
            let now = t0 + Duration::from_secs(10 + i as u64);
            assert_eq!(budget.available(now), want, "at {}s", 10 + i);
        }
        // Advancing for real gives the same count as peeking.
        assert_eq!(
            retries_allowed(&mut budget, t0 + Duration::from_secs(13)),
            30
        );
    }

    #[test]
    fn counted_retries_expire_with_their_bucket() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut budget = budget_with(0.0, 1, 10);
        assert!(budget.try_retry(t0));
        assert_eq!(retries_allowed(&mut budget, t0 + 5 * second), 9);
        assert_eq!(budget.available(t0 + 9 * second), 0);
        assert_eq!(budget.available(t0 + 10 * second), 1);
        assert_eq!(budget.available(t0 + 15 * second), 10);
    }

    #[test]
    fn ratio_is_exact_for_decimal_values() {
        let t0 = Instant::now();
        let mut budget = budget_with(0.29, 0, 10);
        for _ in 0..100 {
            budget.record_call(t0);
        }
        assert_eq!(retries_allowed(&mut budget, t0), 29);
    }

    #[test]
    fn disabled_budget_always_allows_and_never_allocates() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(BudgetConfig::off());
        for _ in 0..1_000 {
            budget.record_call(t0);
            assert!(budget.try_retry(t0));
            assert!(budget.try_retry(t0));
        }
        assert_eq!(budget.available(t0), u32::MAX);
        assert!(budget.window.is_none());
    }

    #[test]
    fn buckets_are_allocated_on_first_use() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(BudgetConfig::default());
        assert!(budget.window.is_none());
        assert_eq!(budget.available(t0), 100);
        assert!(budget.window.is_none());
        budget.record_call(t0);
        assert!(budget.window.is_some());
    }

    #[test]
    fn earlier_instants_count_in_the_newest_bucket() {
        let t0 = Instant::now();
        let mut budget = budget_with(1.0, 0, 10);
        budget.record_call(t0 + Duration::from_secs(5));
        budget.record_call(t0);
        assert!(budget.try_retry(t0));
        assert_eq!(budget.available(t0 + Duration::from_secs(5)), 1);
        // Both calls and the retry sit in the 5 s bucket and leave together.
        assert_eq!(budget.available(t0 + Duration::from_secs(14)), 1);
        assert_eq!(budget.available(t0 + Duration::from_secs(15)), 0);
        assert!(!budget.try_retry(t0 + Duration::from_secs(15)));
    }

    #[test]
    fn huge_time_jumps_and_limits_do_not_overflow() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(BudgetConfig {
            enabled: true,
            ratio: 1.0,
            min_per_second: u32::MAX,
            window: Duration::MAX,
        });
        assert_eq!(budget.available(t0), u32::MAX);
        budget.record_call(t0);
        assert!(budget.try_retry(t0));
        let later = t0 + Duration::from_secs(100 * 365 * 24 * 3600);
        assert!(budget.try_retry(later));

        let mut small = budget_with(0.0, 1, 1);
        assert!(small.try_retry(t0));
        assert!(!small.try_retry(t0));
        assert!(small.try_retry(later));
    }

    #[test]
    fn reconfigure_keeps_the_counts_of_a_window_of_the_same_length() {
        let t0 = Instant::now();
        let config = BudgetConfig {
            enabled: true,
            ratio: 0.1,
            min_per_second: 0,
            window: Duration::from_secs(10),
        };
        let mut budget = RetryBudget::new(config.clone());
        for _ in 0..20 {
            budget.record_call(t0);
        }
        assert_eq!(budget.available(t0), 2);
        assert!(budget.reconfigure(BudgetConfig {
            ratio: 0.5,
            ..config.clone()
        }));
        assert_eq!(
            budget.available(t0),
            10,
            "20 calls kept, counted at the new ratio"
        );
        assert!(budget.try_retry(t0));
        assert_eq!(budget.available(t0), 9);
        assert!(!budget.reconfigure(BudgetConfig {
            ratio: 0.5,
            window: Duration::from_secs(20),
            ..config
        }));
        assert_eq!(budget.available(t0), 0, "another length starts empty");
    }
}
