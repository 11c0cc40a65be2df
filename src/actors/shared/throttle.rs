//! The adaptive throttle's gate: the reject probability the supervisor derives from its
//! [`Throttle`](crate::throttle::Throttle) core, and the credit that turns it into refusals in
//! the callers' tasks without a random draw or a lock.

use crate::sync::{AtomicU32, Ordering};

/// `2^32`: probabilities are kept in units of `2^-32`.
const UNITS: f64 = 4_294_967_296.0;

/// The published reject probability (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ThrottleGate {
    /// The reject probability, in units of 2^-32 (0: refuse nothing).
    probability: AtomicU32,
    /// Accumulates the probability of every call admitted past the throttle: a call is refused
    /// when the sum crosses a multiple of 2^32, so exactly the published share of calls is
    /// refused, deterministically.
    credit: AtomicU32,
}

impl ThrottleGate {
    /// Publishes the reject probability (the supervisor, after a change).
    pub(crate) fn publish(&self, probability: f64) {
        let units = (probability.clamp(0.0, 1.0) * UNITS).min(f64::from(u32::MAX));
        self.probability.store(units as u32, Ordering::Relaxed);
    }

    /// Whether the throttle refuses this call: `Some(probability)` for one call in every
    /// `1 / probability`, spread evenly.
    pub(crate) fn refuses(&self) -> Option<f64> {
        let units = self.probability.load(Ordering::Relaxed);
        if units == 0 {
            return None;
        }
        let before = self.credit.fetch_add(units, Ordering::Relaxed);
        before
            .checked_add(units)
            .is_none()
            .then(|| f64::from(units) / UNITS)
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_refuses_exactly_the_published_share_spread_evenly() {
        let gate = ThrottleGate::default();
        assert_eq!(gate.refuses(), None);
        gate.publish(0.25);
        let refused: Vec<bool> = (0..100).map(|_| gate.refuses().is_some()).collect();
        assert_eq!(refused.iter().filter(|r| **r).count(), 25);
        // Never two refusals in a row at 25 %.
        assert!(refused.windows(2).all(|w| !(w[0] && w[1])));
        gate.publish(0.0);
        assert_eq!(gate.refuses(), None);
    }
}
