//! The reserves of [criticality](crate::criticality): the share of each capacity (bulkhead
//! slots, the rate limit's burst) that a call of each class must leave to more critical ones,
//! as the supervisor publishes it from its configuration. Read by every call that takes a slot
//! or a token; nothing is reserved (all zero) unless configured.

use crate::criticality::{Criticality, CriticalityConfig, Shares};
use crate::sync::{AtomicU32, Ordering};

/// The published reserves, in units of 2^-16 per class (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Reserves {
    reserved: [AtomicU32; 3],
}

impl Reserves {
    /// Publishes the reserves of `config` (none without one): the supervisor, at the start and
    /// on a reload. Returns whether they changed.
    pub(crate) fn publish(&self, config: Option<&CriticalityConfig>) -> bool {
        let mut changed = false;
        for (cell, units) in self.reserved.iter().zip(Shares::new(config).units()) {
            changed |= cell.swap(units, Ordering::Relaxed) != units;
        }
        changed
    }

    /// The share a call of `criticality` must leave, in units of 2^-16 (0: none).
    #[inline]
    pub(crate) fn of(&self, criticality: Criticality) -> u32 {
        self.reserved[criticality.index()].load(Ordering::Relaxed)
    }
}
