//! Metric handles of one keyed service (the bounded, recorder-backed series; the per-key
//! series are rendered by warden itself, see [`KEY_CALLS_TOTAL`](super::KEY_CALLS_TOTAL)).

use metrics::{counter, gauge, Counter, Gauge};

use super::names::*;

/// Pre-registered handles for one keyed service.
#[derive(Debug)]
pub(crate) struct KeyedMetrics {
    keys: Gauge,
    open_keys: Gauge,
    overflow_calls: Counter,
    evictions: Counter,
}

impl KeyedMetrics {
    /// Registers the series of the keyed service `service`.
    pub(crate) fn register(service: &str) -> Self {
        let s = || service.to_string();
        KeyedMetrics {
            keys: gauge!(KEYED_KEYS, LABEL_SERVICE => s()),
            open_keys: gauge!(KEYED_OPEN_KEYS, LABEL_SERVICE => s()),
            overflow_calls: counter!(KEYED_OVERFLOW_CALLS_TOTAL, LABEL_SERVICE => s()),
            evictions: counter!(KEYED_EVICTIONS_TOTAL, LABEL_SERVICE => s()),
        }
    }

    /// `keys` keys are live, `open` of them open.
    pub(crate) fn keys(&self, keys: usize, open: usize) {
        self.keys.set(keys as f64);
        self.open_keys.set(open as f64);
    }

    /// A call ran under the overflow supervisor.
    pub(crate) fn overflow_call(&self) {
        self.overflow_calls.increment(1);
    }

    /// `keys` idle keys were dropped.
    pub(crate) fn evicted(&self, keys: usize) {
        self.evictions.increment(keys as u64);
    }
}
