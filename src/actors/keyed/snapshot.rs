//! [`KeyedSnapshot`]: what a keyed service looks like at one instant, as plain data.
//!
//! Plain owned values (no handles, no locks), so that a snapshot outlives the locks it was read
//! under and can be serialized: the status page puts them in its JSON and `/health`.

use crate::breaker::BreakerState;

/// A keyed service at one instant
/// ([`KeyedHandle::snapshot`](crate::KeyedHandle::snapshot)); also in the status page's JSON
/// and `/health`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct KeyedSnapshot {
    /// The service's name.
    pub service: String,
    /// Keys with a supervisor of their own.
    pub keys: usize,
    /// The cap on them (`max_keys`).
    pub max_keys: u32,
    /// Keys whose breaker keeps traffic off them.
    pub open_keys: usize,
    /// The overflow supervisor's breaker.
    pub overflow_state: BreakerState,
    /// Calls of the keys without series of their own and of the overflow: successes,
    /// failures, refusals.
    pub other: [u64; 3],
    /// The keys asked for: open ones first, then by failures.
    pub top: Vec<KeySnapshot>,
}

/// One key of a [`KeyedSnapshot`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct KeySnapshot {
    /// The key.
    pub key: String,
    /// Its breaker.
    pub state: BreakerState,
    /// Whether it has metric series of its own (else its calls count under `_other`).
    pub labeled: bool,
    /// Calls that succeeded.
    pub success: u64,
    /// Calls that failed after running.
    pub failure: u64,
    /// Calls refused without running.
    pub rejected: u64,
}
