//! Metric handles of one service, registered once when its supervisor starts so the hot path
//! never looks a metric up by name.

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use super::names::*;
use crate::breaker::BreakerState;
use crate::criticality::Criticality;
use crate::health::HealthStatus;
use crate::outcome::{CallOutcome, FaultKind, RejectReason, RetryReason};

/// The reasons a policy in observe-only mode may count (a retry budget always enforces).
const WOULD_REJECT: [RejectReason; 4] = [
    RejectReason::Open,
    RejectReason::Overloaded,
    RejectReason::Throttled,
    RejectReason::RateLimited,
];

/// Pre-registered handles for one service. Cheap to share (`Arc`) with handles on other threads.
#[derive(Debug)]
pub(crate) struct ServiceMetrics {
    service: String,
    calls: [Counter; 8],
    durations: [Histogram; 8],
    retries: [Counter; 2],
    timeouts: Counter,
    rejected: [Counter; 5],
    shed: [Counter; 3],
    /// By [`WOULD_REJECT`] order.
    would_reject: [Counter; 4],
    faults: [Counter; 3],
    hedges_started: Counter,
    hedges_won: Counter,
    in_flight: Gauge,
    throttle: Gauge,
    limit: Gauge,
    state: [Gauge; 5],
    health: [Gauge; 3],
}

impl ServiceMetrics {
    /// Registers every series of `service` with the installed recorder (no-ops without one).
    pub(crate) fn register(service: &str) -> Self {
        let s = || service.to_string();
        ServiceMetrics {
            service: s(),
            calls: CallOutcome::ALL.map(|o| {
                counter!(CALLS_TOTAL, LABEL_SERVICE => s(), LABEL_OUTCOME => o.as_str())
            }),
            durations: CallOutcome::ALL.map(|o| {
                histogram!(CALL_DURATION_SECONDS, LABEL_SERVICE => s(), LABEL_OUTCOME => o.as_str())
            }),
            retries: RetryReason::ALL.map(|r| {
                counter!(RETRY_ATTEMPTS_TOTAL, LABEL_SERVICE => s(), LABEL_REASON => r.as_str())
            }),
            timeouts: counter!(TIMEOUTS_TOTAL, LABEL_SERVICE => s()),
            rejected: RejectReason::ALL.map(|r| {
                counter!(CALLS_REJECTED_TOTAL, LABEL_SERVICE => s(), LABEL_REASON => r.as_str())
            }),
            shed: Criticality::ALL.map(|c| {
                counter!(CALLS_SHED_TOTAL, LABEL_SERVICE => s(), LABEL_CRITICALITY => c.as_str())
            }),
            would_reject: WOULD_REJECT.map(|r| {
                counter!(WOULD_REJECT_TOTAL, LABEL_SERVICE => s(), LABEL_REASON => r.as_str())
            }),
            faults: FaultKind::ALL.map(|k| {
                counter!(FAULTS_INJECTED_TOTAL, LABEL_SERVICE => s(), LABEL_KIND => k.as_str())
            }),
            hedges_started: counter!(HEDGES_STARTED_TOTAL, LABEL_SERVICE => s()),
            hedges_won: counter!(HEDGES_WON_TOTAL, LABEL_SERVICE => s()),
            in_flight: gauge!(CALLS_IN_FLIGHT, LABEL_SERVICE => s()),
            throttle: gauge!(THROTTLE_PROBABILITY, LABEL_SERVICE => s()),
            limit: gauge!(CONCURRENCY_LIMIT, LABEL_SERVICE => s()),
            state: BreakerState::ALL
                .map(|st| gauge!(CIRCUIT_STATE, LABEL_SERVICE => s(), LABEL_STATE => st.as_str())),
            health: HealthStatus::ALL.map(
                |h| gauge!(SERVICE_HEALTH, LABEL_SERVICE => s(), LABEL_STATUS => h.as_str()),
            ),
        }
    }

    /// The handles of one key of the keyed service `service`: its counts add up in the
    /// service's series, and the gauges that describe one supervisor's own state (breaker
    /// state, health, throttle, limit) are not written (the keyed service exports its keys'
    /// state itself, with bounded labels). Calls in flight add up too.
    pub(crate) fn register_member(service: &str) -> Self {
        let mut metrics = Self::register(service);
        metrics.throttle = Gauge::noop();
        metrics.limit = Gauge::noop();
        metrics.state = std::array::from_fn(|_| Gauge::noop());
        metrics.health = std::array::from_fn(|_| Gauge::noop());
        metrics
    }

    /// A call was answered with `outcome` after `seconds`.
    pub(crate) fn call(&self, outcome: CallOutcome, seconds: f64) {
        let i = outcome as usize;
        self.calls[i].increment(1);
        self.durations[i].record(seconds);
    }

    /// `calls` calls were refused for `reason` and answered with the refusal.
    pub(crate) fn refused(&self, reason: RejectReason, criticality: Criticality, calls: u64) {
        self.rejected[reason as usize].increment(calls);
        self.shed[criticality.index()].increment(calls);
        let i = CallOutcome::Rejected as usize;
        self.calls[i].increment(calls);
        self.durations[i].record_many(0.0, usize::try_from(calls).unwrap_or(usize::MAX));
    }

    /// A retry is starting.
    pub(crate) fn retry(&self, reason: RetryReason) {
        self.retries[reason as usize].increment(1);
    }

    /// An attempt timed out.
    pub(crate) fn timeout(&self) {
        self.timeouts.increment(1);
    }

    /// A call or retry was refused.
    pub(crate) fn rejected(&self, reason: RejectReason) {
        self.rejected[reason as usize].increment(1);
    }

    /// A call of `criticality` was refused before its first attempt (and answered otherwise:
    /// a fallback).
    pub(crate) fn shed(&self, criticality: Criticality) {
        self.shed[criticality.index()].increment(1);
    }

    /// `calls` calls a policy that observes would have refused for `reason` went ahead.
    pub(crate) fn would_reject(&self, reason: RejectReason, calls: u64) {
        if let Some(i) = WOULD_REJECT.iter().position(|r| *r == reason) {
            self.would_reject[i].increment(calls);
        }
    }

    /// A fault was injected on purpose.
    pub(crate) fn fault_injected(&self, kind: FaultKind) {
        self.faults[kind as usize].increment(1);
    }

    /// A hedge started.
    pub(crate) fn hedge_started(&self) {
        self.hedges_started.increment(1);
    }

    /// A hedge answered its call first.
    pub(crate) fn hedge_won(&self) {
        self.hedges_won.increment(1);
    }

    /// The adaptive throttle's reject probability is now `probability`.
    pub(crate) fn throttle(&self, probability: f64) {
        self.throttle.set(probability);
    }

    /// Calls allowed in flight are now `limit`.
    pub(crate) fn limit(&self, limit: u32) {
        self.limit.set(f64::from(limit));
    }

    /// Calls in flight went up (`+1.0`) or down (`-1.0`).
    #[inline]
    pub(crate) fn in_flight_changed(&self, delta: f64) {
        self.in_flight.increment(delta);
    }

    /// The breaker is now in `current`.
    pub(crate) fn state(&self, current: BreakerState) {
        for (gauge, st) in self.state.iter().zip(BreakerState::ALL) {
            gauge.set(if st == current { 1.0 } else { 0.0 });
        }
    }

    /// The breaker moved `from` → `to`.
    pub(crate) fn transition(&self, from: BreakerState, to: BreakerState) {
        counter!(
            CIRCUIT_TRANSITIONS_TOTAL,
            LABEL_SERVICE => self.service.clone(),
            LABEL_FROM => from.as_str(),
            LABEL_TO => to.as_str()
        )
        .increment(1);
        self.state(to);
    }

    /// The service's health is now `current`.
    pub(crate) fn health(&self, current: HealthStatus) {
        for (gauge, st) in self.health.iter().zip(HealthStatus::ALL) {
            gauge.set(if st == current { 1.0 } else { 0.0 });
        }
    }
}
