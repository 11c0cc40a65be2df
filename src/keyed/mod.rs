//! Keyed services: one supervisor per key (a host, a shard, a tenant) behind one name, with
//! bounded state.
//!
//! An HTTP client that talks to many hosts must not open one breaker for all of them when one
//! host fails, and a breaker per key must not grow without bound (Resilience4j's per-URL
//! breakers never retire; governor's keyed limiter was exhausted by distinct IPv6 keys). A
//! keyed service ([`RegistryHandle::spawn_keyed`](crate::RegistryHandle::spawn_keyed)) runs a
//! call under its key's own breaker, health window and limits, created on the key's first call
//! from one [`SupervisorConfig`](crate::config::SupervisorConfig), within four bounds
//! ([`KeyedConfig`]):
//!
//! - **`max_keys`**: live keys with a supervisor of their own. When all are taken, a new key
//!   (once idle keys have been dropped) runs under the service's one shared *overflow*
//!   supervisor: it is still protected, by a breaker it shares with the other overflow keys,
//!   and memory stays bounded however many distinct keys arrive.
//! - **`idle_after`**: a key with no call in flight and none started for this long is dropped:
//!   its supervisor stops, its state goes, and its per-key metric series disappear. Its next
//!   call starts it afresh. A call in flight holds its key: eviction never cancels a call.
//! - **`max_open_share`**: at most this share of the live keys may be open at once (at least
//!   one, as Envoy's `max_ejection_percent`); a key that would trip beyond it stays closed.
//! - **`labeled_keys`**: keys with their own `warden_key_*` series; the others are summed under
//!   `key="_other"`, so the exported series stay bounded too.
//!
//! Per key, the counts of every key's supervisor add up in the service's own series
//! (`warden_calls_total{service="hosts"}`, …), and the keyed series below give the split:
//! `warden_keyed_keys`, `warden_keyed_open_keys`, `warden_keyed_overflow_calls_total`, and
//! `warden_key_calls_total{key,outcome}`, `warden_key_open{key}`.

mod config;
pub(crate) mod table;

pub use config::KeyedConfig;
