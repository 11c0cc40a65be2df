//! [`FleetStore`]: the two operations a fleet needs from its shared store, and
//! [`MemoryStore`], the same two in memory (one process: tests, simulations, a single host).
//!
//! Both operations are atomic in the store and timed by the store's clock, so replicas'
//! clocks never have to agree:
//!
//! - [`take`](FleetStore::take): up to `tokens` tokens from a GCRA limit (Generic Cell Rate
//!   Algorithm: the limit is one "theoretical arrival time" per key, one token every
//!   `interval`, at most `burst` tokens ahead). What it cannot grant it answers with the time
//!   until the next token.
//! - [`sync_budget`](FleetStore::sync_budget): adds a replica's calls and retries to the
//!   current tenth of the budget's window and answers the fleet's totals over the window.
//!
//! [`MemoryStore`] is the reference the Redis scripts are tested against.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::budget::BudgetCounts;

/// What a store operation returns: boxed, so a store is a trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The tokens a [`take`](FleetStore::take) granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Tokens granted, at most the number asked for.
    pub tokens: u32,
    /// When fewer were granted than asked: how long until the limit has one more. Zero
    /// otherwise.
    pub retry_after: Duration,
}

/// A store operation that failed: unreachable, timed out, or answered something unexpected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fleet store: {message}")]
pub struct StoreError {
    /// What went wrong, for logs.
    pub message: String,
}

impl StoreError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
        }
    }
}

/// The shared store of a fleet: `RedisStore` (feature `redis`),
/// [`MemoryStore`], or your own. Each operation must be atomic in the store; warden runs it
/// under the fleet's `timeout` and treats an error or a timeout alike (see
/// [`fleet`](super)).
pub trait FleetStore: fmt::Debug + Send + Sync + 'static {
    /// Takes up to `tokens` tokens from the limit `key`: one token every `interval`, at most
    /// `burst` tokens at once after a quiet period.
    fn take<'a>(
        &'a self,
        key: &'a str,
        interval: Duration,
        burst: u32,
        tokens: u32,
    ) -> StoreFuture<'a, Grant>;

    /// Adds `deposit` to the current tenth of the window `window` of the budget `key`, and
    /// answers the totals of the window's ten tenths (the deposit included).
    fn sync_budget<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        deposit: BudgetCounts,
    ) -> StoreFuture<'a, BudgetCounts>;
}

/// One GCRA step: takes up to `tokens` from the limit whose theoretical arrival time is `tat`
/// (a duration on the store's clock), at `now` on the same clock. The Redis script does the
/// same in microseconds.
pub(crate) fn gcra(
    tat: &mut Duration,
    now: Duration,
    interval: Duration,
    burst: u32,
    tokens: u32,
) -> Grant {
    let interval = interval.max(Duration::from_nanos(1));
    let tolerance = interval.saturating_mul(burst);
    if *tat < now {
        *tat = now;
    }
    let room = (now + tolerance).saturating_sub(*tat);
    let available = room.as_nanos() / interval.as_nanos();
    let granted = u32::try_from(available.min(u128::from(tokens))).unwrap_or(tokens);
    *tat += interval.saturating_mul(granted);
    let retry_after = if granted < tokens {
        (*tat + interval).saturating_sub(now + tolerance)
    } else {
        Duration::ZERO
    };
    Grant {
        tokens: granted,
        retry_after,
    }
}

/// A fleet store in memory: every supervisor given the same `MemoryStore` (an `Arc` of it)
/// shares its quotas and budgets. Timed by `tokio::time::Instant`, so it follows a paused
/// clock. [`set_available`](MemoryStore::set_available) makes it fail every operation, as an
/// unreachable store would.
#[derive(Debug)]
pub struct MemoryStore {
    epoch: Instant,
    available: AtomicBool,
    limits: Mutex<HashMap<String, Duration>>,
    budgets: Mutex<HashMap<String, Vec<(u64, BudgetCounts)>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            epoch: Instant::now(),
            available: AtomicBool::new(true),
            limits: Mutex::default(),
            budgets: Mutex::default(),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Makes every operation succeed (`true`) or fail (`false`) from now on.
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    fn check(&self) -> Result<Duration, StoreError> {
        if self.available.load(Ordering::SeqCst) {
            Ok(Instant::now().saturating_duration_since(self.epoch))
        } else {
            Err(StoreError::new("unavailable"))
        }
    }

    fn take_now(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        tokens: u32,
    ) -> Result<Grant, StoreError> {
        let now = self.check()?;
        let mut limits = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
        let tat = limits.entry(key.to_string()).or_insert(now);
        Ok(gcra(tat, now, interval, burst, tokens))
    }

    fn sync_now(
        &self,
        key: &str,
        window: Duration,
        deposit: BudgetCounts,
    ) -> Result<BudgetCounts, StoreError> {
        let now = self.check()?;
        let width = (window / 10).max(Duration::from_nanos(1)).as_nanos();
        let bucket = u64::try_from(now.as_nanos() / width).unwrap_or(u64::MAX);
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let buckets = budgets.entry(key.to_string()).or_default();
        buckets.retain(|(b, _)| b + 10 > bucket);
        match buckets.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, counts)) => counts.add(deposit),
            None => buckets.push((bucket, deposit)),
        }
        Ok(buckets
            .iter()
            .fold(BudgetCounts::default(), |mut total, (_, counts)| {
                total.add(*counts);
                total
            }))
    }
}

impl FleetStore for MemoryStore {
    fn take<'a>(
        &'a self,
        key: &'a str,
        interval: Duration,
        burst: u32,
        tokens: u32,
    ) -> StoreFuture<'a, Grant> {
        let result = self.take_now(key, interval, burst, tokens);
        Box::pin(std::future::ready(result))
    }

    fn sync_budget<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        deposit: BudgetCounts,
    ) -> StoreFuture<'a, BudgetCounts> {
        let result = self.sync_now(key, window, deposit);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn gcra_grants_a_burst_then_one_token_per_interval() {
        let mut tat = Duration::ZERO;
        let start = Duration::from_secs(1);
        // A fresh limit holds `burst` tokens.
        let grant = gcra(&mut tat, start, 10 * MS, 5, 8);
        assert_eq!(grant.tokens, 5);
        assert_eq!(grant.retry_after, 10 * MS);
        // None more until one interval has passed…
        assert_eq!(gcra(&mut tat, start + 9 * MS, 10 * MS, 5, 1).tokens, 0);
        // …then one per interval.
        assert_eq!(gcra(&mut tat, start + 10 * MS, 10 * MS, 5, 3).tokens, 1);
        assert_eq!(gcra(&mut tat, start + 40 * MS, 10 * MS, 5, 9).tokens, 3);
    }

    #[test]
    fn gcra_over_a_long_run_grants_the_rate_plus_the_burst() {
        // Reference model: one token every interval, at most `burst` saved.
        let mut tat = Duration::ZERO;
        let mut granted = 0u64;
        let mut now = Duration::from_secs(5);
        let end = now + Duration::from_secs(10);
        while now < end {
            granted += u64::from(gcra(&mut tat, now, 10 * MS, 20, 7).tokens);
            now += Duration::from_micros(3_700);
        }
        // The burst, then one token per 10 ms after the start, the one due at the end
        // excluded: 20 + 999.
        assert_eq!(granted, 20 + 999);
    }

    #[tokio::test(start_paused = true)]
    async fn a_memory_store_shares_limits_and_budgets_by_key() {
        let store = MemoryStore::new();
        let a = store.take("a", 10 * MS, 2, 5).await.unwrap();
        assert_eq!(a.tokens, 2);
        assert_eq!(store.take("b", 10 * MS, 2, 5).await.unwrap().tokens, 2);
        assert_eq!(store.take("a", 10 * MS, 2, 5).await.unwrap().tokens, 0);

        let window = Duration::from_secs(10);
        let one = BudgetCounts {
            calls: 10,
            retries: 1,
        };
        assert_eq!(store.sync_budget("a", window, one).await.unwrap(), one);
        tokio::time::advance(Duration::from_secs(5)).await;
        let total = store.sync_budget("a", window, one).await.unwrap();
        assert_eq!(
            total,
            BudgetCounts {
                calls: 20,
                retries: 2
            }
        );
        // The first deposit leaves the window 10 s after it was made.
        tokio::time::advance(Duration::from_secs(5)).await;
        let total = store
            .sync_budget("a", window, BudgetCounts::default())
            .await
            .unwrap();
        assert_eq!(total, one);

        store.set_available(false);
        assert!(store.take("a", 10 * MS, 2, 1).await.is_err());
        store.set_available(true);
        assert!(store.take("a", 10 * MS, 2, 1).await.is_ok());
    }
}
