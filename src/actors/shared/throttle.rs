//! The adaptive throttle's gate: the reject probability the supervisor derives from its
//! [`Throttle`](crate::throttle::Throttle) core, and the credit that turns it into refusals in
//! the callers' tasks without a random draw or a lock.

use crate::criticality::Criticality;
use crate::sync::{AtomicU32, Ordering};

/// `2^32`: probabilities are kept in units of `2^-32`.
const UNITS: f64 = 4_294_967_296.0;

/// The published reject probability (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ThrottleGate {
    /// The reject probability of each criticality, in units of 2^-32 (0: refuse nothing).
    probability: [AtomicU32; 3],
    /// Accumulates, per criticality, the probability of every call admitted past the throttle:
    /// a call is refused when the sum crosses a multiple of 2^32, so exactly the published
    /// share of calls is refused, deterministically.
    credit: [AtomicU32; 3],
}

impl ThrottleGate {
    /// Publishes the reject probability of each criticality, least critical first (the
    /// supervisor, after a change).
    pub(crate) fn publish(&self, probabilities: [f64; 3]) {
        for (cell, probability) in self.probability.iter().zip(probabilities) {
            let units = (probability.clamp(0.0, 1.0) * UNITS).min(f64::from(u32::MAX));
            cell.store(units as u32, Ordering::Relaxed);
        }
    }

    /// Whether the throttle refuses this call of `criticality`: `Some(probability)` for one
    /// call in every `1 / probability` of its class, spread evenly.
    #[inline]
    pub(crate) fn refuses(&self, criticality: Criticality) -> Option<f64> {
        let class = criticality.index();
        let units = self.probability[class].load(Ordering::Relaxed);
        if units == 0 {
            return None;
        }
        if units == u32::MAX {
            // Refuse them all (the largest probability held is 1 − 2^-32).
            return Some(1.0);
        }
        let before = self.credit[class].fetch_add(units, Ordering::Relaxed);
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
        let default = Criticality::Default;
        assert_eq!(gate.refuses(default), None);
        gate.publish([1.0, 0.25, 0.0]);
        let refused: Vec<bool> = (0..100).map(|_| gate.refuses(default).is_some()).collect();
        assert_eq!(refused.iter().filter(|r| **r).count(), 25);
        // Never two refusals in a row at 25 %.
        assert!(refused.windows(2).all(|w| !(w[0] && w[1])));
        // Each class has its own share.
        assert!((0..100).all(|_| gate.refuses(Criticality::Sheddable) == Some(1.0)));
        assert!((0..100).all(|_| gate.refuses(Criticality::Critical).is_none()));
        gate.publish([0.0; 3]);
        assert_eq!(gate.refuses(default), None);
    }
}
