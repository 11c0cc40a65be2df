//! The two decisions criticality adds to the load controls, as plain functions: which calls a
//! throttle's refusals fall on ([`shed_order`]), and how much of a capacity each class may use
//! ([`Shares`]).

use super::{Criticality, CriticalityConfig};

/// How the throttle's refusals are spread over the classes: `probability` of all requests is
/// to be refused, the window holding `requests[c]` requests of each class (indexed by
/// [`Criticality::ALL`]). The refusals fall on sheddable requests first, then default ones,
/// critical ones last; the answer is each class's refusal probability, so that
/// `Σ p[c] × requests[c] = probability × Σ requests[c]`.
///
/// A class without requests in the window is refused entirely when the cut falls above it
/// (its probability is 1), not at all when it falls below. Without any request counted, every
/// class gets `probability`.
///
/// ```
/// use warden::criticality::shed_order;
///
/// // Refuse 40 % of 100 requests: the 30 sheddable ones, then 10 of the 50 default ones.
/// assert_eq!(shed_order(0.4, [30, 50, 20]), [1.0, 0.2, 0.0]);
/// ```
pub fn shed_order(probability: f64, requests: [u64; 3]) -> [f64; 3] {
    let probability = if probability.is_nan() {
        0.0
    } else {
        probability.clamp(0.0, 1.0)
    };
    let total: u64 = requests.iter().sum();
    if total == 0 || probability == 0.0 {
        return [probability; 3];
    }
    let mut remaining = probability * total as f64;
    let mut order = [0.0; 3];
    for (share, requests) in order.iter_mut().zip(requests) {
        if remaining <= 0.0 {
            break;
        }
        if requests == 0 {
            *share = 1.0;
            continue;
        }
        let refused = remaining.min(requests as f64);
        // One class holding every request is refused `probability` exactly.
        *share = if requests == total {
            probability
        } else {
            refused / requests as f64
        };
        remaining -= refused;
    }
    order
}

/// The share of a capacity each class must leave to the more critical ones, in units of
/// `2^-16` (what the handles read on every call: two integer operations, none when nothing is
/// reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Shares {
    /// Indexed by [`Criticality::index`]; the critical one is always 0.
    reserved: [u32; 3],
}

const UNIT: f64 = 65_536.0;

impl Shares {
    /// The shares `config` reserves (none without one).
    pub(crate) fn new(config: Option<&CriticalityConfig>) -> Shares {
        let Some(config) = config else {
            return Shares::default();
        };
        let units =
            |c: Criticality| (config.reserved_above(c).clamp(0.0, 1.0) * UNIT).ceil() as u32;
        Shares {
            reserved: Criticality::ALL.map(units),
        }
    }

    /// The units, indexed by criticality.
    pub(crate) fn units(self) -> [u32; 3] {
        self.reserved
    }

    /// How much of `capacity` (whole slots or tokens) a call of `criticality` may use: all but
    /// the reserved share, rounded down to whole units of capacity.
    #[inline]
    pub(crate) fn usable(reserved_units: u32, capacity: u32) -> u32 {
        if reserved_units == 0 {
            return capacity;
        }
        capacity - ((u64::from(capacity) * u64::from(reserved_units)) >> 16) as u32
    }

    /// [`usable`](Self::usable) for `criticality`.
    #[cfg(test)]
    pub(crate) fn usable_by(self, criticality: Criticality, capacity: u32) -> u32 {
        Shares::usable(self.reserved[criticality.index()], capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference model: refuse request by request, least critical first.
    fn one_by_one(probability: f64, requests: [u64; 3]) -> [u64; 3] {
        let total: u64 = requests.iter().sum();
        let mut to_refuse = (probability * total as f64).round() as u64;
        requests.map(|n| {
            let refused = n.min(to_refuse);
            to_refuse -= refused;
            refused
        })
    }

    proptest! {
        #[test]
        fn shed_order_refuses_what_one_by_one_refusal_would(
            probability in 0.0f64..=1.0,
            requests in proptest::array::uniform3(0u64..1_000),
        ) {
            let order = shed_order(probability, requests);
            let total: u64 = requests.iter().sum();
            prop_assume!(total > 0);
            let expected = one_by_one(probability, requests);
            let mut refused_total = 0.0;
            for class in 0..3 {
                let refused = order[class] * requests[class] as f64;
                refused_total += refused;
                prop_assert!((0.0..=1.0).contains(&order[class]));
                // Within rounding of the model, class by class.
                prop_assert!((refused - expected[class] as f64).abs() <= 1.0 + 1e-9,
                    "class {class}: {refused} vs {}", expected[class]);
                // No class is touched while a less critical one still has requests let through.
                if class > 0 && order[class] > 0.0 {
                    prop_assert!(order[..class].iter().all(|p| *p >= 1.0 - 1e-12));
                }
            }
            prop_assert!((refused_total - probability * total as f64).abs() < 1e-6);
        }
    }

    #[test]
    fn shed_order_edge_cases() {
        assert_eq!(shed_order(0.3, [0, 0, 0]), [0.3; 3]);
        assert_eq!(shed_order(0.0, [5, 5, 5]), [0.0; 3]);
        assert_eq!(shed_order(f64::NAN, [5, 5, 5]), [0.0; 3]);
        // No sheddable requests seen: a sheddable call is refused while the cut is above it.
        assert_eq!(shed_order(0.5, [0, 100, 100]), [1.0, 1.0, 0.0]);
        assert_eq!(shed_order(1.0, [1, 1, 1]), [1.0; 3]);
    }

    #[test]
    fn shares_round_the_reserve_down_to_whole_units() {
        assert_eq!(Shares::default().usable_by(Criticality::Sheddable, 7), 7);
        let shares = Shares::new(Some(&CriticalityConfig::default()));
        assert_eq!(shares.usable_by(Criticality::Critical, 100), 100);
        assert_eq!(shares.usable_by(Criticality::Default, 100), 90);
        assert_eq!(shares.usable_by(Criticality::Sheddable, 100), 70);
        // 10 % of 5 is no whole slot: nothing is kept back from a small limit.
        assert_eq!(shares.usable_by(Criticality::Default, 5), 5);
        assert_eq!(shares.usable_by(Criticality::Sheddable, 5), 4);
        assert_eq!(shares.usable_by(Criticality::Sheddable, 0), 0);
        // No overflow at the top of the range.
        let usable = shares.usable_by(Criticality::Sheddable, u32::MAX);
        assert!((0.69..0.71).contains(&(f64::from(usable) / f64::from(u32::MAX))));
        assert_eq!(shares.units()[Criticality::Critical.index()], 0);
    }
}
