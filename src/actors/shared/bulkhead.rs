//! The bulkhead: how many calls are in flight, and how many may be (`max_in_flight`, or the
//! adaptive concurrency limit the supervisor publishes, never above it). A call takes a
//! [`SlotGuard`] before its first attempt and gives it back when dropped, whatever happens to
//! it.
//!
//! While the adaptive limit only observes ([`PolicyMode::Observe`](crate::mode::PolicyMode)), the
//! limit in force stays `max_in_flight` and the adaptive limit is published beside it (the
//! *observed* limit): the calls it would admit are counted apart, and a call taking a slot
//! above it is a shadow for the limit (it would have been refused).

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
    /// The adaptive limit while it only observes; `u32::MAX` otherwise.
    observed_limit: AtomicU32,
    /// While the limit observes: the calls in flight it would have admitted (the shadows above
    /// it not counted).
    admitted: AtomicU32,
}

/// A slot [`Bulkhead::try_take`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Taken {
    /// Calls in flight when the call was admitted, itself included (while the limit observes:
    /// the calls it would have admitted).
    in_flight: u32,
    /// Counted in `admitted`: given back there too.
    admitted: bool,
    /// Above the observed limit: a shadow for the limit.
    over_limit: bool,
}

impl Bulkhead {
    pub(crate) fn new(max_in_flight: u32) -> Self {
        Bulkhead {
            in_flight: AtomicU32::new(0),
            limit: AtomicU32::new(max_in_flight),
            observed_limit: AtomicU32::new(u32::MAX),
            admitted: AtomicU32::new(0),
        }
    }

    /// Takes a slot, or `None` when the limit in force (less the share `reserved` for more
    /// critical calls, in units of 2^-16) is reached.
    #[inline]
    fn try_take(&self, reserved: u32) -> Option<Taken> {
        let previous = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if previous >= Shares::usable(reserved, self.limit.load(Ordering::Relaxed)) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let observed = self.observed_limit.load(Ordering::Relaxed);
        if observed == u32::MAX {
            return Some(Taken {
                in_flight: previous + 1,
                admitted: false,
                over_limit: false,
            });
        }
        // The limit observes: would it have admitted this call (below its class's share)?
        let admitted = self.admitted.fetch_add(1, Ordering::AcqRel);
        if admitted >= Shares::usable(reserved, observed) {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Some(Taken {
                in_flight: previous + 1,
                admitted: false,
                over_limit: true,
            });
        }
        Some(Taken {
            in_flight: admitted + 1,
            admitted: true,
            over_limit: false,
        })
    }

    #[inline]
    fn give_back(&self, taken: Taken) {
        if taken.admitted {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Publishes the calls allowed in flight (the supervisor, when the adaptive limit moves).
    /// Calls in flight above a lowered limit finish; new ones wait for room.
    pub(crate) fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Publishes the adaptive limit while it only observes (the supervisor): the limit in
    /// force is then `max_in_flight` ([`set_limit`](Self::set_limit)); `None` when the limit
    /// does not observe (or there is none). Calls in flight the limit would have admitted
    /// before it observed are not counted among those it would admit.
    pub(crate) fn set_observed_limit(&self, limit: Option<u32>) {
        let limit = limit.map_or(u32::MAX, |limit| limit.min(u32::MAX - 1));
        self.observed_limit.store(limit, Ordering::Relaxed);
    }

    /// The adaptive limit while it only observes.
    pub(crate) fn observed_limit(&self) -> Option<u32> {
        let limit = self.observed_limit.load(Ordering::Relaxed);
        (limit != u32::MAX).then_some(limit)
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

/// One bulkhead slot; released when dropped, whatever happens to the call holding it. It
/// borrows the state it was taken from (the call holding it does too): no reference count.
#[derive(Debug)]
pub(crate) struct SlotGuard<'a> {
    published: &'a Published,
    /// Calls in flight when this one was admitted, itself included (a concurrency-limit sample).
    pub(crate) in_flight: u32,
    /// The criticality of the call holding it.
    pub(crate) criticality: Criticality,
    /// Counted among the calls an observing limit admits.
    admitted: bool,
    /// Taken above the adaptive limit while it only observes: the call is a shadow for the
    /// limit (enforced, it would have been refused `Overloaded`).
    pub(crate) over_limit: bool,
}

impl<'a> SlotGuard<'a> {
    /// Takes a bulkhead slot of `published` for a call of `criticality`, or `None` when the
    /// limit of calls in flight (its class's share of it) is reached.
    #[inline]
    pub(crate) fn try_take(
        published: &'a Arc<Published>,
        criticality: Criticality,
    ) -> Option<SlotGuard<'a>> {
        let reserved = published.reserves.of(criticality);
        let taken = published.bulkhead.try_take(reserved)?;
        published.metrics.in_flight_changed(1.0);
        Some(SlotGuard {
            published,
            in_flight: taken.in_flight,
            criticality,
            admitted: taken.admitted,
            over_limit: taken.over_limit,
        })
    }
}

impl Drop for SlotGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.published.bulkhead.give_back(Taken {
            in_flight: self.in_flight,
            admitted: self.admitted,
            over_limit: self.over_limit,
        });
        self.published.metrics.in_flight_changed(-1.0);
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[test]
    fn an_observed_limit_admits_up_to_max_in_flight_and_marks_the_calls_above_it() {
        let bulkhead = Bulkhead::new(4);
        // Enforced (no observed limit): the limit in force decides, nothing is a shadow.
        bulkhead.set_limit(2);
        let first = bulkhead.try_take(0).unwrap();
        assert_eq!((first.in_flight, first.over_limit), (1, false));
        let second = bulkhead.try_take(0).unwrap();
        assert_eq!(bulkhead.try_take(0), None);
        bulkhead.give_back(first);
        bulkhead.give_back(second);

        // Observed at 2 within a bulkhead of 4: the third and fourth calls run above the limit.
        bulkhead.set_limit(4);
        bulkhead.set_observed_limit(Some(2));
        let taken: Vec<Taken> = (0..4).map(|_| bulkhead.try_take(0).unwrap()).collect();
        let above: Vec<bool> = taken.iter().map(|t| t.over_limit).collect();
        assert_eq!(above, [false, false, true, true]);
        // The calls the limit admits see the count it would see enforced.
        assert_eq!(taken[1].in_flight, 2);
        assert_eq!(bulkhead.try_take(0), None, "max_in_flight still holds");
        assert_eq!(bulkhead.in_flight(), 4);
        // A shadow leaving makes no room under the limit; an admitted call leaving does.
        let mut taken = taken.into_iter();
        let (a, b, c, d) = (
            taken.next().unwrap(),
            taken.next().unwrap(),
            taken.next().unwrap(),
            taken.next().unwrap(),
        );
        bulkhead.give_back(c);
        assert!(bulkhead.try_take(0).unwrap().over_limit);
        bulkhead.give_back(a);
        let again = bulkhead.try_take(0).unwrap();
        assert_eq!((again.in_flight, again.over_limit), (2, false));
        // Back to enforcing: the calls admitted while observing still give their count back.
        bulkhead.set_observed_limit(None);
        bulkhead.give_back(b);
        bulkhead.give_back(d);
        bulkhead.give_back(again);
        assert_eq!(bulkhead.admitted.load(Ordering::Relaxed), 0);
        assert_eq!(bulkhead.observed_limit(), None);
    }

    #[test]
    fn an_observed_limit_keeps_the_reserve_a_call_must_leave_as_an_enforced_one() {
        // Half of the limit reserved (2^15 units of 2^16): enforced at 4, a call that must
        // leave the reserve gets 2 slots; observed at 4 within a bulkhead of 8, the same call
        // is over the limit from its third slot.
        const HALF: u32 = 1 << 15;
        let enforced = Bulkhead::new(8);
        enforced.set_limit(4);
        let admitted = (0..4).filter_map(|_| enforced.try_take(HALF)).count();
        assert_eq!(admitted, 2);

        let observed = Bulkhead::new(8);
        observed.set_observed_limit(Some(4));
        let taken: Vec<Taken> = (0..4).map(|_| observed.try_take(HALF).unwrap()).collect();
        let above: Vec<bool> = taken.iter().map(|t| t.over_limit).collect();
        assert_eq!(above, [false, false, true, true]);
        // A call with no reserve to leave is admitted up to the limit.
        assert!(!observed.try_take(0).unwrap().over_limit);
        assert!(!observed.try_take(0).unwrap().over_limit);
        assert!(observed.try_take(0).unwrap().over_limit);
    }
}
