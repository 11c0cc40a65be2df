//! [`FleetBudget`]: the retry budget of a whole fleet, from the fleet's counts in the store and
//! this replica's counts not yet sent.
//!
//! # Semantics
//!
//! The rule is the local budget's ([`RetryBudget`]), over the
//! fleet's window: a retry is allowed while `retries + 1 ≤ floor + ratio × calls`, where
//! `calls` and `retries` are the fleet's totals at the last sync plus what this replica
//! counted since (sent or not). The floor is the fleet's, not each replica's: a fleet of 50
//! adds one floor of retries to a brownout, not 50.
//!
//! Between syncs each replica decides on counts up to `sync_every` old. Were each to take all
//! the room those counts leave, the fleet would overshoot by what the others take in one
//! `sync_every` (every replica sees the same room). So each takes its share of it,
//! `1 / expected_replicas`, plus all that its own calls add since
//! ([`RetryBudget::allows_share`]): the shares of the same room add up to the room, and the
//! fleet stays within its budget (fewer replicas than expected leave some of the room unused
//! until the next sync, which shows it again).
//!
//! While the store is away ([`synced`](FleetBudget::synced) with an error) the budget is not
//! shared: [`try_retry`](FleetBudget::try_retry) answers `None` and the replica's own budget
//! decides. What it counts then is not sent later (the fleet's window moves on without it).

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::quota::Backoff;
use super::FleetConfig;
use crate::retry::{BudgetConfig, RetryBudget};

/// Calls and retries of a budget window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BudgetCounts {
    /// Calls offered (first attempts).
    pub calls: u64,
    /// Retries sent.
    pub retries: u64,
}

impl BudgetCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: BudgetCounts) {
        self.calls = self.calls.saturating_add(other.calls);
        self.retries = self.retries.saturating_add(other.retries);
    }

    fn plus(mut self, other: BudgetCounts) -> BudgetCounts {
        self.add(other);
        self
    }
}

/// The fleet's retry budget as one replica sees it. See the module docs.
#[derive(Debug, Clone)]
pub struct FleetBudget {
    /// The rule (ratio and floor), applied to the fleet's counts.
    rule: RetryBudget,
    window: Duration,
    /// The fleet's totals at the last sync.
    fleet: BudgetCounts,
    /// Counted since and being sent.
    sending: Option<BudgetCounts>,
    /// Counted since and not sent yet.
    pending: BudgetCounts,
    shared: bool,
    backoff: Backoff,
    sync_every: Duration,
    next_sync: Option<Instant>,
    /// The replicas that share the room the fleet's counts leave between syncs.
    replicas: u32,
}

impl FleetBudget {
    /// The fleet budget of `budget` (assumed validated and on) for `fleet`. Not shared until
    /// its first sync succeeds.
    pub fn new(budget: &BudgetConfig, fleet: &FleetConfig) -> Self {
        FleetBudget {
            rule: RetryBudget::new(budget.clone()),
            window: budget.window,
            fleet: BudgetCounts::default(),
            sending: None,
            pending: BudgetCounts::default(),
            shared: false,
            backoff: Backoff::new(fleet.reconnect_min, fleet.reconnect_max),
            sync_every: fleet.sync_every,
            next_sync: None,
            replicas: fleet.expected_replicas.max(1),
        }
    }

    /// The budget's window (the store keeps the fleet's counts over it).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether the fleet's counts decide (the store answered the last sync).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Counts a call offered (a first attempt).
    pub fn record_call(&mut self) {
        if self.shared {
            self.pending.calls += 1;
        }
    }

    /// A retry from the fleet's budget: `Some(true)` (counted) or `Some(false)` while shared,
    /// `None` when the store is away and the replica's own budget decides.
    pub fn try_retry(&mut self) -> Option<bool> {
        if !self.shared {
            return None;
        }
        let own = self.sending.unwrap_or_default().plus(self.pending);
        let shared = (self.fleet.calls, self.fleet.retries);
        if !self
            .rule
            .allows_share(shared, (own.calls, own.retries), self.replicas)
        {
            return Some(false);
        }
        self.pending.retries += 1;
        Some(true)
    }

    /// The fleet's calls and retries as this replica sees them now.
    pub fn counts(&self) -> BudgetCounts {
        self.fleet
            .plus(self.sending.unwrap_or_default())
            .plus(self.pending)
    }

    /// The counts to send now, if a sync is due (every `sync_every` while shared; after the
    /// backoff while not); the next call is [`synced`](Self::synced) with the store's answer.
    pub fn sync_due(&mut self, now: Instant) -> Option<BudgetCounts> {
        if self.sending.is_some() || self.next_sync.is_some_and(|at| now < at) {
            return None;
        }
        let deposit = std::mem::take(&mut self.pending);
        self.sending = Some(deposit);
        Some(deposit)
    }

    /// The store's answer to the last sync: the fleet's totals, or an error. Returns the new
    /// sharing state when it changed (`Some(true)`: shared again; `Some(false)`: fell back).
    pub fn synced(
        &mut self,
        now: Instant,
        answer: Result<BudgetCounts, super::StoreError>,
    ) -> Option<bool> {
        let was = self.shared;
        self.sending = None;
        match answer {
            Ok(totals) => {
                self.fleet = totals;
                self.shared = true;
                self.backoff.reset();
                self.next_sync = Some(now + self.sync_every);
            }
            Err(_) => {
                self.shared = false;
                self.fleet = BudgetCounts::default();
                self.pending = BudgetCounts::default();
                self.next_sync = Some(now + self.backoff.next_delay());
            }
        }
        (was != self.shared).then_some(self.shared)
    }

    /// When the next sync is due (`None`: now).
    pub fn next_sync(&self) -> Option<Instant> {
        self.next_sync
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::StoreError;

    fn budget(ratio: f64, min_per_second: u32) -> FleetBudget {
        let config = BudgetConfig {
            ratio,
            min_per_second,
            window: Duration::from_secs(10),
            ..BudgetConfig::default()
        };
        FleetBudget::new(&config, &FleetConfig::default())
    }

    #[tokio::test(start_paused = true)]
    async fn the_fleets_counts_decide_once_synced() {
        let mut fleet = budget(0.1, 0);
        let now = Instant::now();
        assert_eq!(fleet.try_retry(), None, "not shared before the first sync");
        assert_eq!(fleet.sync_due(now), Some(BudgetCounts::default()));
        // The fleet made 100 calls and 9 retries: one more retry fits (10 ≤ 0.1 × 100).
        let answer = Ok(BudgetCounts {
            calls: 100,
            retries: 9,
        });
        assert_eq!(fleet.synced(now, answer), Some(true));
        assert_eq!(fleet.try_retry(), Some(true));
        assert_eq!(fleet.try_retry(), Some(false));
        // Ten more local calls allow one more retry before the next sync.
        for _ in 0..10 {
            fleet.record_call();
        }
        assert_eq!(fleet.try_retry(), Some(true));
        assert_eq!(fleet.sync_due(now), None, "not due before sync_every");
        let later = now + Duration::from_millis(100);
        let sent = fleet.sync_due(later).unwrap();
        assert_eq!(
            sent,
            BudgetCounts {
                calls: 10,
                retries: 2
            }
        );
        // While it is being sent, it still counts.
        assert_eq!(
            fleet.counts(),
            BudgetCounts {
                calls: 110,
                retries: 11
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_sync_falls_back_and_backs_off() {
        let mut fleet = budget(0.1, 1);
        let now = Instant::now();
        fleet.sync_due(now).unwrap();
        fleet.synced(now, Ok(BudgetCounts::default()));
        fleet.record_call();
        let later = now + Duration::from_millis(100);
        fleet.sync_due(later).unwrap();
        assert_eq!(
            fleet.synced(later, Err(StoreError::new("down"))),
            Some(false)
        );
        assert_eq!(fleet.try_retry(), None, "the replica's own budget decides");
        // The first retry of the store waits reconnect_min (100 ms), then doubles.
        assert_eq!(fleet.sync_due(later + Duration::from_millis(99)), None);
        let again = later + Duration::from_millis(100);
        fleet.sync_due(again).unwrap();
        assert_eq!(fleet.synced(again, Err(StoreError::new("down"))), None);
        assert_eq!(fleet.next_sync(), Some(again + Duration::from_millis(200)));
        let back = again + Duration::from_millis(200);
        fleet.sync_due(back).unwrap();
        assert_eq!(fleet.synced(back, Ok(BudgetCounts::default())), Some(true));
        assert_eq!(fleet.try_retry(), Some(true), "the floor: 1/s over 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn replicas_deciding_on_the_same_counts_take_shares_that_add_up_to_the_room() {
        // Four replicas, each synced to the fleet's 400 calls and 30 retries: room for 10 more
        // (40 = 0.1 × 400). Each takes its quarter; together they stay within the budget,
        // where each taking the whole room would have made 40 retries.
        let config = BudgetConfig {
            ratio: 0.1,
            min_per_second: 0,
            window: Duration::from_secs(10),
            ..BudgetConfig::default()
        };
        let fleet = FleetConfig {
            expected_replicas: 4,
            ..FleetConfig::default()
        };
        let now = Instant::now();
        let taken: u64 = (0..4)
            .map(|_| {
                let mut replica = FleetBudget::new(&config, &fleet);
                replica.sync_due(now).unwrap();
                let totals = BudgetCounts {
                    calls: 400,
                    retries: 30,
                };
                replica.synced(now, Ok(totals));
                let mut taken = 0;
                while replica.try_retry() == Some(true) {
                    taken += 1;
                }
                // Its own calls add their whole share: 10 calls, one more retry.
                for _ in 0..10 {
                    replica.record_call();
                }
                assert_eq!(replica.try_retry(), Some(true));
                assert_eq!(replica.try_retry(), Some(false));
                taken
            })
            .sum();
        assert_eq!(taken, 8, "a quarter of 10 each, in whole retries");
    }
}
