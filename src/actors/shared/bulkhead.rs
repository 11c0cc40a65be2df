//! The bulkhead: how many calls are in flight, and how many may be (`max_in_flight`, or the
//! adaptive concurrency limit the supervisor publishes, never above it). A call takes a
//! [`SlotGuard`] before its first attempt and gives it back when dropped, whatever happens to
//! it.

use std::sync::Arc;

use super::Published;
use crate::criticality::{Criticality, Shares};
use crate::sync::{AtomicU32, Ordering};

/// Calls in flight and the limit in force (see the module docs).
#[derive(Debug)]
pub(crate) struct Bulkhead {
    in_flight: AtomicU32,
    /// Calls allowed in flight now: `max_in_flight`, or the adaptive limit the supervisor
    /// publishes (never above `max_in_flight`).
    limit: AtomicU32,
}

impl Bulkhead {
    pub(crate) fn new(max_in_flight: u32) -> Self {
        Bulkhead {
            in_flight: AtomicU32::new(0),
            limit: AtomicU32::new(max_in_flight),
        }
    }

    /// Takes a slot: the calls in flight with this one, or `None` when the limit (less the
    /// share `reserved` for more critical calls, in units of 2^-16) is reached.
    fn try_take(&self, reserved: u32) -> Option<u32> {
        let previous = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if previous >= Shares::usable(reserved, self.limit.load(Ordering::Relaxed)) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(previous + 1)
    }

    fn give_back(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Publishes the calls allowed in flight (the supervisor, when the adaptive limit moves).
    /// Calls in flight above a lowered limit finish; new ones wait for room.
    pub(crate) fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Calls allowed in flight now.
    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }
}

/// One bulkhead slot; released when dropped, whatever happens to the call holding it.
#[derive(Debug)]
pub(crate) struct SlotGuard {
    published: Arc<Published>,
    /// Calls in flight when this one was admitted, itself included (a concurrency-limit sample).
    pub(crate) in_flight: u32,
    /// The criticality of the call holding it.
    pub(crate) criticality: Criticality,
}

impl SlotGuard {
    /// Takes a bulkhead slot of `published` for a call of `criticality`, or `None` when the
    /// limit of calls in flight (its class's share of it) is reached.
    pub(crate) fn try_take(
        published: &Arc<Published>,
        criticality: Criticality,
    ) -> Option<SlotGuard> {
        let reserved = published.reserves.of(criticality);
        let in_flight = published.bulkhead.try_take(reserved)?;
        published.metrics.in_flight_changed(1.0);
        Some(SlotGuard {
            published: Arc::clone(published),
            in_flight,
            criticality,
        })
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.published.bulkhead.give_back();
        self.published.metrics.in_flight_changed(-1.0);
    }
}
