//! The admission word: the breaker state and epoch the supervisor publishes after every change,
//! and the end of the open period. A handle admits a Closed-state call from it alone, refuses
//! while open, and sends everything else (HalfOpen, an open period that has just ended) to the
//! supervisor, which counts probes exactly.
//!
//! The supervisor is the only writer; handles only read.

use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{BreakerState, Permit};
use crate::sync::{AtomicU64, Ordering};

/// Bits of the packed admission word that hold the state; the epoch sits above them.
const STATE_BITS: u32 = 8;

/// How a handle may admit an attempt, from the published state alone.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Closed or disabled: admitted here, with a permit of the published epoch.
    Local(Permit),
    /// Open, or forced open: refused; `retry_after` while the open period runs.
    Refused(Option<Duration>),
    /// HalfOpen, or an open period that has just ended: only the supervisor decides.
    AskSupervisor,
    /// Not the published state's answer: the breaker only observes and would have refused the
    /// call (or its retry), which goes ahead as a shadow for the breaker, with a
    /// [`shadow_permit`] (never recorded).
    Shadow,
}

/// The permit of an attempt the breaker does not see (a shadow for the breaker, see
/// [`Shadow`](super::shadow::Shadow)): of an epoch no breaker state is published with (the
/// admission word keeps 56 bits of it), so even recorded it would be stale and ignored.
pub(crate) fn shadow_permit() -> Permit {
    Permit::closed_at(u64::MAX)
}

/// The published breaker state (see the module docs).
#[derive(Debug)]
pub(crate) struct AdmissionWord {
    /// `epoch << 8 | state`, stored in one word so a reader never pairs a state with another
    /// state's epoch.
    word: AtomicU64,
    /// End of the open period, in nanoseconds since `origin`; meaningful while `Open`.
    open_until_nanos: AtomicU64,
    origin: Instant,
}

impl Default for AdmissionWord {
    fn default() -> Self {
        AdmissionWord {
            word: AtomicU64::new(u64::from(BreakerState::Closed.as_u8())),
            open_until_nanos: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }
}

impl AdmissionWord {
    /// Called by the supervisor after every breaker change.
    pub(crate) fn publish(&self, state: BreakerState, epoch: u64, open_until: Option<Instant>) {
        let nanos = open_until.map_or(0, |until| self.nanos_since_origin(until));
        self.open_until_nanos.store(nanos, Ordering::Release);
        let word = (epoch << STATE_BITS) | u64::from(state.as_u8());
        self.word.store(word, Ordering::Release);
    }

    /// The last published breaker state.
    pub(crate) fn state(&self) -> Option<BreakerState> {
        decode(self.word.load(Ordering::Acquire)).0
    }

    /// How an attempt starting now is admitted, from the published state.
    ///
    /// The epoch keeps only the low 56 bits of the breaker's: after 2^56 state changes a
    /// locally admitted call's permit would read as stale and its outcome be ignored, which
    /// loses a sample, never an answer.
    #[inline]
    pub(crate) fn admit(&self) -> Admission {
        let (state, epoch) = decode(self.word.load(Ordering::Acquire));
        match state {
            Some(BreakerState::Closed | BreakerState::Disabled) => {
                Admission::Local(Permit::closed_at(epoch))
            }
            Some(BreakerState::ForcedOpen) => Admission::Refused(None),
            Some(BreakerState::Open) => {
                let until = self.open_until_nanos.load(Ordering::Acquire);
                let now = self.nanos_since_origin(Instant::now());
                if now < until {
                    Admission::Refused(Some(Duration::from_nanos(until - now)))
                } else {
                    Admission::AskSupervisor
                }
            }
            Some(BreakerState::HalfOpen) | None => Admission::AskSupervisor,
        }
    }

    fn nanos_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[inline]
fn decode(word: u64) -> (Option<BreakerState>, u64) {
    let state = BreakerState::from_u8((word & ((1 << STATE_BITS) - 1)) as u8);
    (state, word >> STATE_BITS)
}
