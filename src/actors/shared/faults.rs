//! The faults being injected ([fault injection](crate::chaos)), set by the supervisor; the
//! draws are taken by the callers. Without the `fault-injection` feature the cell is empty and
//! [`FaultsCell::draw`] compiles to `None`.

#[cfg(feature = "fault-injection")]
use std::sync::{Mutex, PoisonError};

use crate::chaos::{Fault, FaultInjector};

/// The injector in force, if any (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct FaultsCell {
    #[cfg(feature = "fault-injection")]
    injector: Mutex<Option<Box<FaultInjector>>>,
    /// Whether `injector` holds one (so a call without faults takes no lock). Changed only
    /// with the lock held.
    #[cfg(feature = "fault-injection")]
    on: crate::sync::AtomicBool,
}

impl FaultsCell {
    /// Starts injecting with `injector`, or stops with `None` (the supervisor).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn set(&self, injector: Option<FaultInjector>) {
        use crate::sync::Ordering;
        let mut faults = self.injector.lock().unwrap_or_else(PoisonError::into_inner);
        self.on.store(injector.is_some(), Ordering::Release);
        *faults = injector.map(Box::new);
    }

    /// Without the `fault-injection` feature nothing is ever injected (configurations with
    /// faults are refused before they get here).
    #[cfg(not(feature = "fault-injection"))]
    pub(crate) fn set(&self, _injector: Option<FaultInjector>) {}

    /// The fault to inject into an attempt starting now, if any. Once the injection has
    /// expired, it is switched off.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn draw(&self) -> Option<Fault> {
        use crate::sync::Ordering;
        if !self.on.load(Ordering::Acquire) {
            return None;
        }
        let now = tokio::time::Instant::now().into_std();
        let mut faults = self.injector.lock().unwrap_or_else(PoisonError::into_inner);
        let injector = faults.as_mut()?;
        if injector.is_expired(now) {
            *faults = None;
            self.on.store(false, Ordering::Release);
            return None;
        }
        injector.decide(now)
    }

    /// Without the `fault-injection` feature: never a fault.
    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub(crate) fn draw(&self) -> Option<Fault> {
        None
    }
}
