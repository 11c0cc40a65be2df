//! What a supervisor shares with its handles, so calls run in the callers' tasks: one cell per
//! concept, each with one writer and lock-free (or briefly locked) readers.
//!
//! | cell | written by | read by |
//! |---|---|---|
//! | [`admission`]: breaker state, epoch, end of the open period | supervisor | every call |
//! | [`bulkhead`]: calls in flight, the limit in force (and an observed one) | calls (slots), supervisor (limit) | every call |
//! | [`throttle`]: the adaptive throttle's reject probability | supervisor | closed-state calls |
//! | [`shadow`]: the policies that only observe | supervisor | calls a policy would refuse |
//! | [`rate_limit`]: the token bucket | calls (tokens), supervisor (config, penalty) | every call |
//! | [`settings`]: timeouts, attempts, hedging; the hedge delay | supervisor | every call |
//! | [`faults`]: the faults being injected | supervisor | every attempt |
//! | [`flights`](crate::flights): coalesced calls in flight | coalesced calls | coalesced calls |
//! | [`handoff`]: the callers' [reports](report::Report) | calls | supervisor (in batches) |
//!
//! The lock-free cells are model-checked with loom (`src/actors/loom_tests.rs`).

use std::sync::OnceLock;
use std::time::Duration;

use actix::WeakRecipient;

pub(crate) mod admission;
pub(crate) mod bulkhead;
pub(crate) mod faults;
pub(crate) mod handoff;
pub(crate) mod member;
pub(crate) mod rate_limit;
pub(crate) mod report;
pub(crate) mod settings;
pub(crate) mod shadow;
pub(crate) mod throttle;

use self::admission::AdmissionWord;
use self::bulkhead::Bulkhead;
use self::faults::FaultsCell;
use self::handoff::{Drain, Handoff};
use self::rate_limit::RateLimitCell;
use self::report::Report;
use self::settings::{CallSettings, HedgeDelay, SettingsCell};
use self::shadow::Observing;
use self::throttle::ThrottleGate;
use crate::flights::Flights;
use crate::observe::ServiceMetrics;
use crate::outcome::RejectReason;
use crate::sync::{AtomicU64, Ordering};

/// Shared between a supervisor and every handle to it (see the module docs).
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) admission: AdmissionWord,
    pub(crate) bulkhead: Bulkhead,
    pub(crate) throttle: ThrottleGate,
    pub(crate) rate_limit: RateLimitCell,
    /// The policies that only observe (read on refusal paths only).
    pub(crate) observing: Observing,
    /// The settings a call reads; replaced as a whole on a reload.
    pub(crate) settings: SettingsCell,
    pub(crate) hedge_delay: HedgeDelay,
    pub(crate) faults: FaultsCell,
    /// Coalesced calls in flight, by key (at most one per bulkhead slot).
    pub(crate) flights: Flights,
    /// Callers' reports, drained by the supervisor.
    pub(crate) reports: Handoff<Report>,
    pub(crate) metrics: ServiceMetrics,
    /// Numbers calls for their tracing spans (only read when the span is enabled).
    next_call_id: AtomicU64,
    /// How a producer wakes the supervisor; weak, so the shared state does not keep it alive.
    supervisor: OnceLock<WeakRecipient<Drain>>,
}

impl Published {
    pub(crate) fn new(metrics: ServiceMetrics, max_in_flight: u32, settings: CallSettings) -> Self {
        Published {
            admission: AdmissionWord::default(),
            bulkhead: Bulkhead::new(max_in_flight),
            throttle: ThrottleGate::default(),
            rate_limit: RateLimitCell::default(),
            observing: Observing::default(),
            settings: SettingsCell::new(settings),
            hedge_delay: HedgeDelay::default(),
            faults: FaultsCell::default(),
            flights: Flights::default(),
            reports: Handoff::default(),
            metrics,
            next_call_id: AtomicU64::new(0),
            supervisor: OnceLock::new(),
        }
    }

    /// Tells the shared state where its supervisor runs (once, right after it started).
    pub(crate) fn set_supervisor(&self, drain: WeakRecipient<Drain>) {
        // Set once by the builder; a second call would be a bug, and changes nothing.
        let _ = self.supervisor.set(drain);
    }

    /// Hands `report` to the supervisor without waiting; wakes it when nobody else will.
    pub(crate) fn report(&self, report: Report) {
        if self.reports.push(report) {
            self.wake_supervisor();
        }
    }

    /// Counts a call refused for `reason` and answered with the refusal (no fallback), through
    /// the hand-off's tallies: no allocation, no queue entry.
    pub(crate) fn refuse(&self, reason: RejectReason) {
        if self.reports.tally(tally_of(reason)) {
            self.wake_supervisor();
        }
    }

    /// Counts a call that a policy observing would have refused for `reason`, and that goes
    /// ahead (observe-only mode), through the hand-off's tallies like a refusal.
    pub(crate) fn would_reject(&self, reason: RejectReason) {
        if self.reports.tally(TALLIED.len() + tally_of(reason)) {
            self.wake_supervisor();
        }
    }

    /// Wakes the supervisor to drain the reports (one message per batch window at most).
    fn wake_supervisor(&self) {
        if let Some(drain) = self.supervisor.get().and_then(WeakRecipient::upgrade) {
            // A full mailbox still takes it (`do_send` ignores the capacity), and one message
            // per batch window cannot pile up.
            drain.do_send(Drain);
        }
    }

    /// The hedge delay, when hedging is configured and the delay is known.
    pub(crate) fn hedge_delay(&self) -> Option<Duration> {
        if self.settings.load().max_hedges == 0 {
            return None;
        }
        self.hedge_delay.get()
    }

    /// A number for a call's tracing span.
    pub(crate) fn next_call_id(&self) -> u64 {
        self.next_call_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The refusals a caller counts in a tally, in tally order: the first [`TALLIED`]`.len()`
/// tallies count refusals, the next as many count the same reasons' would-be refusals
/// (observe-only mode).
pub(crate) const TALLIED: [RejectReason; handoff::TALLIES / 2] = [
    RejectReason::Open,
    RejectReason::Throttled,
    RejectReason::RateLimited,
    RejectReason::Overloaded,
];

/// The tally of a caller's refusal (a retry refused by the budget is the supervisor's own).
fn tally_of(reason: RejectReason) -> usize {
    match reason {
        RejectReason::Open | RejectReason::Budget => 0,
        RejectReason::Throttled => 1,
        RejectReason::RateLimited => 2,
        RejectReason::Overloaded => 3,
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    /// `TALLIED` and `tally_of` are the same mapping written twice (one an array the
    /// supervisor walks, the other a match the caller's refusal takes): they must agree.
    #[test]
    fn every_tallied_reason_is_counted_in_its_own_tally() {
        for (tally, reason) in TALLIED.into_iter().enumerate() {
            assert_eq!(tally_of(reason), tally, "{reason:?}");
        }
    }
}
