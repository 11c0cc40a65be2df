//! What a supervisor shares with its handles, so calls run in the callers' tasks: one cell per
//! concept, each with one writer and lock-free (or briefly locked) readers.
//!
//! | cell | written by | read by |
//! |---|---|---|
//! | [`admission`]: breaker state, epoch, end of the open period | supervisor | every call |
//! | [`bulkhead`]: calls in flight, the limit in force (and an observed one) | calls (slots), supervisor (limit) | every call |
//! | [`criticality`]: the shares of each capacity reserved for more critical calls | supervisor | every call |
//! | [`throttle`]: the adaptive throttle's reject probability, per criticality | supervisor | closed-state calls |
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
pub(crate) mod criticality;
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
use self::criticality::Reserves;
use self::faults::FaultsCell;
use self::handoff::{Drain, Handoff};
use self::rate_limit::RateLimitCell;
use self::report::Report;
use self::settings::{CallSettings, HedgeDelay, SettingsCell};
use self::shadow::Observing;
use self::throttle::ThrottleGate;
use crate::criticality::Criticality;
use crate::flights::Flights;
use crate::observe::ServiceMetrics;
use crate::outcome::RejectReason;
use crate::sync::{AtomicU64, Ordering};

/// Shared between a supervisor and every handle to it (see the module docs).
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) admission: AdmissionWord,
    pub(crate) bulkhead: Bulkhead,
    pub(crate) reserves: Reserves,
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
            reserves: Reserves::default(),
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
    #[inline]
    pub(crate) fn report(&self, report: Report) {
        if self.reports.push(report) {
            self.wake_supervisor();
        }
    }

    /// Counts a call of `criticality` refused for `reason` and answered with the refusal (no
    /// fallback), through the hand-off's tallies: no allocation, no queue entry.
    pub(crate) fn refuse(&self, reason: RejectReason, criticality: Criticality) {
        if self.reports.tally(tally_of(reason, criticality)) {
            self.wake_supervisor();
        }
    }

    /// Counts a call of `criticality` that a policy observing would have refused for `reason`,
    /// and that goes ahead (observe-only mode), through the hand-off's tallies like a refusal.
    /// Only a would-be throttling keeps the class (the throttle's window counts refusals by
    /// class, and must count these as enforcing would).
    pub(crate) fn would_reject(&self, reason: RejectReason, criticality: Criticality) {
        if self.reports.tally(would_reject_tally(reason, criticality)) {
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

/// The refusals a caller counts in a tally, and of which criticality, in tally order.
pub(crate) const TALLIED: [(RejectReason, Criticality); REFUSAL_TALLIES] = {
    const REASONS: [RejectReason; 4] = [
        RejectReason::Open,
        RejectReason::Throttled,
        RejectReason::RateLimited,
        RejectReason::Overloaded,
    ];
    let mut tallied = [(RejectReason::Open, Criticality::Default); REFUSAL_TALLIES];
    let mut tally = 0;
    while tally < REFUSAL_TALLIES {
        tallied[tally] = (REASONS[tally / 3], Criticality::ALL[tally % 3]);
        tally += 1;
    }
    tallied
};

/// Tallies of refusals: one per reason a caller refuses for, and criticality.
const REFUSAL_TALLIES: usize = 12;

/// The would-be refusals a caller counts in a tally (observe-only mode), and of which
/// criticality, in tally order, after the [`TALLIED`] refusals: one per reason, three (one per
/// class) for the throttle.
pub(crate) const WOULD_REJECT_TALLIED: [(RejectReason, Criticality);
    handoff::TALLIES - REFUSAL_TALLIES] = [
    (RejectReason::Open, Criticality::Default),
    (RejectReason::RateLimited, Criticality::Default),
    (RejectReason::Overloaded, Criticality::Default),
    (RejectReason::Throttled, Criticality::Sheddable),
    (RejectReason::Throttled, Criticality::Default),
    (RejectReason::Throttled, Criticality::Critical),
];

/// The tally of a would-be refusal (see [`WOULD_REJECT_TALLIED`]).
fn would_reject_tally(reason: RejectReason, criticality: Criticality) -> usize {
    REFUSAL_TALLIES
        + match reason {
            RejectReason::Open | RejectReason::Budget => 0,
            RejectReason::RateLimited => 1,
            RejectReason::Overloaded => 2,
            RejectReason::Throttled => 3 + criticality.index(),
        }
}

/// The tally of a caller's refusal (a retry refused by the budget is the supervisor's own).
fn tally_of(reason: RejectReason, criticality: Criticality) -> usize {
    reason_index(reason) * 3 + criticality.index()
}

/// The place of `reason` in the refusals a caller tallies.
fn reason_index(reason: RejectReason) -> usize {
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
        for (tally, (reason, criticality)) in TALLIED.into_iter().enumerate() {
            assert_eq!(
                tally_of(reason, criticality),
                tally,
                "{reason:?} {criticality:?}"
            );
        }
        for (tally, (reason, criticality)) in WOULD_REJECT_TALLIED.into_iter().enumerate() {
            assert_eq!(
                would_reject_tally(reason, criticality),
                REFUSAL_TALLIES + tally,
                "{reason:?} {criticality:?}"
            );
        }
    }
}
