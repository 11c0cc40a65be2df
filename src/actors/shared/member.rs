//! What the supervisors of one keyed service share: how many of its keys are open, against the
//! cap `max_open_share` sets (see [`keyed`](crate::keyed)). A key's supervisor asks it before
//! recording a failure whether its breaker may trip, and tells it when the breaker opens or
//! closes. The check and the count are separate atomics, so keys tripping at the same instant
//! on different arbiters may pass the cap by one each; on one arbiter (the default) never.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::breaker::BreakerState;

/// The open-key count of one keyed service.
#[derive(Debug)]
pub(crate) struct KeyShare {
    open: AtomicUsize,
    live: AtomicUsize,
    /// `max_open_share`, as `f64` bits.
    share: AtomicU64,
}

impl KeyShare {
    pub(crate) fn new(max_open_share: f64) -> Self {
        KeyShare {
            open: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            share: AtomicU64::new(max_open_share.to_bits()),
        }
    }

    /// A new `max_open_share` (a reload).
    pub(crate) fn set_share(&self, max_open_share: f64) {
        self.share
            .store(max_open_share.to_bits(), Ordering::Relaxed);
    }

    /// The keys now live.
    pub(crate) fn set_live(&self, live: usize) {
        self.live.store(live, Ordering::Relaxed);
    }

    /// Keys whose breaker is open (or half-open, or forced open) now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether one more key may open: fewer are open than the share of the live keys allows
    /// (and one always may).
    pub(crate) fn may_open(&self) -> bool {
        let share = f64::from_bits(self.share.load(Ordering::Relaxed));
        let live = self.live.load(Ordering::Relaxed);
        self.open() < ((live as f64 * share).floor() as usize).max(1)
    }

    /// A key's breaker moved `from` → `to`: counts it in or out of the open keys.
    pub(crate) fn moved(&self, from: BreakerState, to: BreakerState) {
        match (is_open(from), is_open(to)) {
            (false, true) => {
                self.open.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => self.left(),
            _ => {}
        }
    }

    /// A key whose breaker was in `state` is gone (evicted, or its supervisor stopped).
    pub(crate) fn gone(&self, state: BreakerState) {
        if is_open(state) {
            self.left();
        }
    }

    fn left(&self) {
        let _ = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// States that keep traffic off the key (they count against the cap).
fn is_open(state: BreakerState) -> bool {
    matches!(
        state,
        BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;

    #[test]
    fn counts_open_keys_against_the_share_of_live_keys() {
        let share = KeyShare::new(0.5);
        share.set_live(4);
        assert!(share.may_open());
        share.moved(Closed, Open);
        assert!(share.may_open());
        share.moved(Closed, Open);
        assert!(!share.may_open(), "2 of 4 open at 0.5");
        // Open → half-open is still open; half-open → closed frees a place.
        share.moved(Open, HalfOpen);
        assert_eq!(share.open(), 2);
        share.moved(HalfOpen, Closed);
        assert!(share.may_open());
        share.gone(Open);
        share.gone(Closed);
        assert_eq!(share.open(), 0);
        share.gone(Open);
        assert_eq!(share.open(), 0, "never below zero");
        // One key may always open.
        share.set_live(1);
        assert!(share.may_open());
    }
}
