//! One quota and one retry budget for a whole fleet of replicas, kept in a shared store
//! (Redis), with each replica falling back to its own share when the store is away.
//!
//! # Why
//!
//! A third-party API allows 1 000 requests a minute to the *fleet*. Fifty replicas with local
//! rate limiters either overrun it (each allowed 1 000) or each get a fiftieth whatever the
//! traffic; and fifty local retry budgets add fifty floors of retries to a brownout. Here the
//! quota and the budget live in one store all replicas share, evaluated atomically there, and
//! a call still pays no store round trip of its own:
//!
//! - **quota** ([`FleetQuota`]): a replica leases a few tokens at a time from a GCRA limit in
//!   the store (one Lua script: atomic, and timed by the store's clock so replicas' clocks do
//!   not matter) and hands them to its calls from memory; the local rate limiter's semantics
//!   are kept (refused with `RateLimited { retry_after }`, or waited for up to `max_wait`);
//! - **budget** ([`FleetBudget`]): a replica deposits its calls and withdraws its retries
//!   locally and syncs the counts with the store every `sync_every`, learning the fleet's
//!   totals over the budget's window; a retry is allowed while the fleet's retries stay under
//!   `floor + ratio × fleet calls`.
//!
//! # When the store is away
//!
//! Every store operation runs under its own short `timeout`. When one fails or times out the
//! replica falls back at once — the quota to a local token bucket of `rate /
//! expected_replicas`, the budget to the replica's own budget (kept warm all along) — counts
//! and publishes it (the [`FleetFallback`](crate::messages::EventKind::FleetFallback) event,
//! `warden_fleet_fallback`, the status page), and tries the store again with a growing backoff
//! (`reconnect_min` doubling up to `reconnect_max`). The first operation that succeeds returns
//! the replica to the shared quota and budget. No call waits on the store beyond its own
//! `max_wait`, and none is lost.
//!
//! # Layout
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`FleetConfig`]: the store, the key, the fleet's size, the timings |
//! | [`quota`] | [`FleetQuota`]: the leased tokens, the local fallback, the backoff (pure) |
//! | [`budget`] | [`FleetBudget`]: the fleet's counts, what is not yet synced (pure) |
//! | [`store`] | [`FleetStore`]: the two store operations; [`MemoryStore`] for tests and simulation |
//! | `redis` | `RedisStore` (feature `redis`): the two operations as Lua scripts |

pub mod budget;
pub mod config;
pub mod quota;
#[cfg(feature = "redis")]
mod redis;
pub mod store;

pub use self::budget::{BudgetCounts, FleetBudget};
pub use self::config::FleetConfig;
pub use self::quota::{FleetQuota, FleetToken, Next, Take, LEASE_TTL};
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
pub use self::store::{FleetStore, Grant, MemoryStore, StoreError, StoreFuture};

/// Whether a replica's quota and budget are shared through the fleet's store now (`true`), or
/// on its own share (`false`: the store is away); `None` for a part the service does not
/// share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FleetStatus {
    /// The rate limit.
    pub quota_shared: Option<bool>,
    /// The retry budget.
    pub budget_shared: Option<bool>,
}

/// The two shared parts of a fleet, as named in events and the `part` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetPart {
    /// The shared rate limit.
    Quota,
    /// The shared retry budget.
    Budget,
}

impl FleetPart {
    /// Its label value: `quota` or `budget`.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetPart::Quota => "quota",
            FleetPart::Budget => "budget",
        }
    }
}
