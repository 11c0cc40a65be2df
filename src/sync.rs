//! The atomics the lock-free parts use (published admission state, bulkhead, outcome
//! hand-off): `std`'s, or loom's when built with `RUSTFLAGS="--cfg warden_loom"` so that
//! `cargo test --lib --release loom_` model-checks them under every interleaving.

#[cfg(warden_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
#[cfg(not(warden_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// A spin-wait hint; under loom, a yield (loom must see a spinning thread give way).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(warden_loom)]
    loom::thread::yield_now();
    #[cfg(not(warden_loom))]
    std::hint::spin_loop();
}
