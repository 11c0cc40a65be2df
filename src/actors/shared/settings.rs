//! The settings a call reads in its caller's task (timeouts, attempts, hedging), and the hedge
//! delay the supervisor derives: one writer (the supervisor, at start and on a reload), readers
//! on every call that never block.

use std::time::Duration;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The settings a call reads in its caller's task.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallSettings {
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    /// Hedges one attempt may start (0: hedging is off).
    pub(crate) max_hedges: u32,
    /// Every call may be hedged, not only the ones marked idempotent.
    pub(crate) hedge_all_calls: bool,
}

impl CallSettings {
    /// The call settings of `config`.
    pub(crate) fn of(config: &crate::config::SupervisorConfig) -> Self {
        let hedge = config.hedge.as_ref();
        CallSettings {
            timeout: config.timeout,
            deadline: config.deadline,
            max_hedges: hedge.map_or(0, |hedge| hedge.max_hedges),
            hedge_all_calls: hedge.is_some_and(|hedge| hedge.all_calls),
        }
    }
}

/// [`CallSettings`] behind a sequence lock made of atomics: one writer (the supervisor, on a
/// reload), readers on every call that never block and never see half of an update (a reader
/// that raced the writer reads again). Reading costs a few plain loads.
#[derive(Debug)]
pub(crate) struct SettingsCell {
    /// Even: stable; odd: an update is being written.
    sequence: AtomicU64,
    /// Nanoseconds; `NONE` for no timeout.
    timeout: AtomicU64,
    /// Nanoseconds; `NONE` for no deadline.
    deadline: AtomicU64,
    max_hedges: AtomicU32,
    /// 1: every call may be hedged.
    hedge_all_calls: AtomicU32,
}

/// The encoding of `None` in a [`SettingsCell`] duration.
const NONE: u64 = u64::MAX;

impl SettingsCell {
    pub(crate) fn new(settings: CallSettings) -> Self {
        SettingsCell {
            sequence: AtomicU64::new(0),
            timeout: AtomicU64::new(encode_duration(settings.timeout)),
            deadline: AtomicU64::new(encode_duration(settings.deadline)),
            max_hedges: AtomicU32::new(settings.max_hedges),
            hedge_all_calls: AtomicU32::new(u32::from(settings.hedge_all_calls)),
        }
    }

    /// The settings in force (a consistent set, never half of a reload).
    #[inline]
    pub(crate) fn load(&self) -> CallSettings {
        loop {
            let before = self.sequence.load(Ordering::SeqCst);
            let settings = CallSettings {
                timeout: decode_duration(self.timeout.load(Ordering::SeqCst)),
                deadline: decode_duration(self.deadline.load(Ordering::SeqCst)),
                max_hedges: self.max_hedges.load(Ordering::SeqCst),
                hedge_all_calls: self.hedge_all_calls.load(Ordering::SeqCst) == 1,
            };
            if before & 1 == 0 && self.sequence.load(Ordering::SeqCst) == before {
                return settings;
            }
            crate::sync::spin_loop();
        }
    }

    /// Only ever called by one writer at a time (the supervisor).
    pub(crate) fn store(&self, settings: CallSettings) {
        let sequence = self.sequence.load(Ordering::SeqCst);
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::SeqCst);
        self.timeout
            .store(encode_duration(settings.timeout), Ordering::SeqCst);
        self.deadline
            .store(encode_duration(settings.deadline), Ordering::SeqCst);
        self.max_hedges.store(settings.max_hedges, Ordering::SeqCst);
        self.hedge_all_calls
            .store(u32::from(settings.hedge_all_calls), Ordering::SeqCst);
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::SeqCst);
    }
}

fn encode_duration(duration: Option<Duration>) -> u64 {
    duration.map_or(NONE, |d| {
        u64::try_from(d.as_nanos())
            .unwrap_or(NONE - 1)
            .min(NONE - 1)
    })
}

#[inline]
fn decode_duration(nanos: u64) -> Option<Duration> {
    (nanos != NONE).then(|| Duration::from_nanos(nanos))
}

/// The hedge delay the supervisor last derived (0: do not hedge now).
#[derive(Debug, Default)]
pub(crate) struct HedgeDelay(AtomicU64);

impl HedgeDelay {
    /// Publishes the hedge delay (`None`: do not hedge, e.g. while the latency is unknown).
    pub(crate) fn publish(&self, delay: Option<Duration>) {
        let nanos = delay.map_or(0, |delay| {
            u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        self.0.store(nanos, Ordering::Relaxed);
    }

    /// The hedge delay, when it is known.
    pub(crate) fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[test]
    fn settings_are_replaced_as_a_whole() {
        let settings = CallSettings {
            timeout: Some(Duration::from_secs(2)),
            deadline: None,
            max_hedges: 0,
            hedge_all_calls: false,
        };
        let cell = SettingsCell::new(settings);
        let read = cell.load();
        assert_eq!(read.timeout, Some(Duration::from_secs(2)));
        assert_eq!(read.deadline, None);
        cell.store(CallSettings {
            timeout: None,
            deadline: Some(Duration::from_millis(1500)),
            max_hedges: 2,
            hedge_all_calls: true,
        });
        let read = cell.load();
        assert_eq!(read.timeout, None);
        assert_eq!(read.deadline, Some(Duration::from_millis(1500)));
        assert_eq!((read.max_hedges, read.hedge_all_calls), (2, true));
    }
}
