//! Queries: health, breaker status and call counts of one supervisor.

use std::time::Duration;

use actix::Message;
use serde::Serialize;

use crate::breaker::{BreakerState, WindowSnapshot};
use crate::health::HealthSnapshot;

/// The supervisor's [`HealthSnapshot`]: status, success rate, latency quantiles.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "HealthSnapshot")]
pub struct GetHealth;

/// The breaker's state and the window it decides on.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "BreakerStatus")]
pub struct GetBreakerStatus;

/// What [`GetBreakerStatus`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakerStatus {
    /// Current state (time-driven transitions applied).
    pub state: BreakerState,
    /// While open: time until a probe is let through.
    pub retry_after: Option<Duration>,
    /// The breaker's sliding window.
    pub window: WindowSnapshot,
}

/// Running totals of the supervisor's answers since it started.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "CallCounts")]
pub struct GetCallCounts;

/// Calls answered by a supervisor since it started, by outcome; plus retries and attempts.
/// Calls its handles refused on their own (breaker open, bulkhead full) count too, so
/// [`total`](Self::total) is every call made through the supervisor's handles (except those
/// answered `SupervisorGone`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// Calls answered with a value.
    pub success: u64,
    /// Calls answered with the operation's error (permanent, retries exhausted, or budget).
    pub failure: u64,
    /// Calls whose last attempt timed out or whose deadline passed.
    pub timeout: u64,
    /// Calls whose operation panicked.
    pub panic: u64,
    /// Calls refused by an open breaker (including the handles' fast path).
    pub rejected_open: u64,
    /// Calls refused by the bulkhead (including the handles' fast path).
    pub rejected_overloaded: u64,
    /// Calls refused by the adaptive throttle.
    pub rejected_throttled: u64,
    /// Calls refused by the rate limiter.
    pub rejected_rate_limited: u64,
    /// Retries refused by the budget.
    pub rejected_budget: u64,
    /// Attempts that ran the operation (first attempts and retries).
    pub attempts: u64,
    /// Retries started.
    pub retries: u64,
    /// Hedges started ([hedged requests](crate::messages::Call::idempotent)); each is also
    /// counted in [`attempts`](Self::attempts).
    pub hedges: u64,
    /// Calls a hedge answered first (the attempt it hedged was cancelled).
    pub hedges_won: u64,
    /// Calls answered by their fallback (after failing or being refused).
    pub fallback: u64,
    /// Calls [coalesced](crate::messages::Call::coalesce) with another call of the same key
    /// already in flight: answered with that call's answer (a value or an error) without
    /// running the operation. A coalesced call answered by its own fallback is counted
    /// [`fallback`](Self::fallback) instead.
    pub coalesced: u64,
    /// Calls their callers dropped before the answer (the attempt in flight was cancelled).
    /// Not in [`total`](Self::total): nobody received an answer.
    pub cancelled: u64,
    /// Calls refused before their first attempt (any reason, answered by the refusal or a
    /// fallback), by [criticality](crate::criticality), least critical first (as
    /// [`Criticality::ALL`](crate::criticality::Criticality::ALL)): where the cut falls under overload.
    pub shed: [u64; 3],
    /// Calls (or retries) an open breaker, or a half-open one with every probe taken, would
    /// have refused, let through because the breaker only observes
    /// ([`PolicyMode::Observe`](crate::mode::PolicyMode)). Each is also counted by how it was
    /// answered, so none is in [`total`](Self::total) twice.
    pub would_reject_open: u64,
    /// Calls above the adaptive concurrency limit, let through because the limit only
    /// observes.
    pub would_reject_overloaded: u64,
    /// Calls the adaptive throttle would have refused, let through because it only observes.
    pub would_reject_throttled: u64,
    /// Calls the rate limiter had no token for in time, let through (without a token) because
    /// it only observes.
    pub would_reject_rate_limited: u64,
}

impl CallCounts {
    /// What happened since `earlier` (an earlier reading of the same supervisor's counts):
    /// every field minus its earlier value.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            success: self.success.saturating_sub(earlier.success),
            failure: self.failure.saturating_sub(earlier.failure),
            timeout: self.timeout.saturating_sub(earlier.timeout),
            panic: self.panic.saturating_sub(earlier.panic),
            rejected_open: self.rejected_open.saturating_sub(earlier.rejected_open),
            rejected_overloaded: self
                .rejected_overloaded
                .saturating_sub(earlier.rejected_overloaded),
            rejected_throttled: self
                .rejected_throttled
                .saturating_sub(earlier.rejected_throttled),
            rejected_rate_limited: self
                .rejected_rate_limited
                .saturating_sub(earlier.rejected_rate_limited),
            rejected_budget: self.rejected_budget.saturating_sub(earlier.rejected_budget),
            attempts: self.attempts.saturating_sub(earlier.attempts),
            retries: self.retries.saturating_sub(earlier.retries),
            hedges: self.hedges.saturating_sub(earlier.hedges),
            hedges_won: self.hedges_won.saturating_sub(earlier.hedges_won),
            fallback: self.fallback.saturating_sub(earlier.fallback),
            coalesced: self.coalesced.saturating_sub(earlier.coalesced),
            cancelled: self.cancelled.saturating_sub(earlier.cancelled),
            shed: std::array::from_fn(|c| self.shed[c].saturating_sub(earlier.shed[c])),
            would_reject_open: self
                .would_reject_open
                .saturating_sub(earlier.would_reject_open),
            would_reject_overloaded: self
                .would_reject_overloaded
                .saturating_sub(earlier.would_reject_overloaded),
            would_reject_throttled: self
                .would_reject_throttled
                .saturating_sub(earlier.would_reject_throttled),
            would_reject_rate_limited: self
                .would_reject_rate_limited
                .saturating_sub(earlier.would_reject_rate_limited),
        }
    }

    /// Calls policies that only observe would have refused (every reason), each let through
    /// and counted by its answer too.
    pub fn would_reject(&self) -> u64 {
        self.would_reject_open
            + self.would_reject_overloaded
            + self.would_reject_throttled
            + self.would_reject_rate_limited
    }

    /// Calls answered, all outcomes.
    pub fn total(&self) -> u64 {
        self.success
            + self.failure
            + self.timeout
            + self.panic
            + self.rejected_open
            + self.rejected_overloaded
            + self.rejected_throttled
            + self.rejected_rate_limited
            + self.fallback
            + self.coalesced
    }
}
