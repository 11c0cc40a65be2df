//! State the supervisor publishes for its handles: the breaker state and the end of the open
//! period (so a handle fails fast without a mailbox hop), and the bulkhead's in-flight count.
//! The supervisor is the only writer of the breaker fields; handles only read them.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::BreakerState;
use crate::observe::{CallOutcome, RejectReason, ServiceMetrics};

/// Shared between a supervisor and every handle to it.
#[derive(Debug)]
pub(crate) struct Published {
    state: AtomicU8,
    /// End of the open period, in nanoseconds since `origin`; meaningful while `Open`.
    open_until_nanos: AtomicU64,
    origin: Instant,
    in_flight: AtomicU32,
    max_in_flight: u32,
    /// Calls refused by handles without reaching the supervisor: open breaker.
    fast_rejections: AtomicU64,
    /// Calls refused because the bulkhead was full (by a handle or by the supervisor).
    overloads: AtomicU64,
    pub(crate) metrics: ServiceMetrics,
}

impl Published {
    pub(crate) fn new(service: &str, max_in_flight: u32) -> Self {
        Published {
            state: AtomicU8::new(BreakerState::Closed.as_u8()),
            open_until_nanos: AtomicU64::new(0),
            origin: Instant::now(),
            in_flight: AtomicU32::new(0),
            max_in_flight,
            fast_rejections: AtomicU64::new(0),
            overloads: AtomicU64::new(0),
            metrics: ServiceMetrics::register(service),
        }
    }

    /// Called by the supervisor after every breaker change.
    pub(crate) fn publish(&self, state: BreakerState, open_until: Option<Instant>) {
        let nanos = open_until.map_or(0, |until| self.nanos_since_origin(until));
        self.open_until_nanos.store(nanos, Ordering::Release);
        self.state.store(state.as_u8(), Ordering::Release);
    }

    /// The last published breaker state.
    pub(crate) fn state(&self) -> Option<BreakerState> {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// `Some(retry_after)` when the published state says the call must be refused now: forced
    /// open, or open with its open period still running. Counts the rejection.
    pub(crate) fn fast_reject(&self) -> Option<Option<Duration>> {
        let verdict = match self.state() {
            Some(BreakerState::ForcedOpen) => Some(None),
            Some(BreakerState::Open) => {
                let until = self.open_until_nanos.load(Ordering::Acquire);
                let now = self.nanos_since_origin(Instant::now());
                (now < until).then(|| Some(Duration::from_nanos(until - now)))
            }
            _ => None,
        }?;
        self.fast_rejections.fetch_add(1, Ordering::Relaxed);
        self.metrics.rejected(RejectReason::Open);
        self.metrics.call(CallOutcome::Rejected, 0.0);
        Some(verdict)
    }

    pub(crate) fn fast_rejections(&self) -> u64 {
        self.fast_rejections.load(Ordering::Relaxed)
    }

    /// Counts a call refused because the bulkhead was full.
    pub(crate) fn reject_overloaded(&self) {
        self.overloads.fetch_add(1, Ordering::Relaxed);
        self.metrics.rejected(RejectReason::Overloaded);
        self.metrics.call(CallOutcome::Rejected, 0.0);
    }

    pub(crate) fn overloads(&self) -> u64 {
        self.overloads.load(Ordering::Relaxed)
    }

    /// Takes a bulkhead slot, or `None` when `max_in_flight` calls are already in flight.
    pub(crate) fn try_reserve(self: &Arc<Self>) -> Option<SlotGuard> {
        let previous = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if previous >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.metrics.in_flight_changed(1.0);
        Some(SlotGuard(Arc::clone(self)))
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    fn nanos_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One bulkhead slot; released when dropped, whatever happens to the call holding it.
#[derive(Debug)]
pub(crate) struct SlotGuard(Arc<Published>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.in_flight_changed(-1.0);
    }
}
