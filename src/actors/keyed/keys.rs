//! The state behind a [`KeyedHandle`](super::KeyedHandle): the table of live keys, each key's
//! supervisor with its users and counts, the [`Lease`] a call holds on its key, and the sweeps
//! that drop idle keys.
//!
//! Kept apart from the handle so that the rules of a key's life — when it gets a supervisor of
//! its own, when it is sent to the overflow, when it is idle enough to drop, and where the
//! counts of a dropped key go — sit in one place, under the locks they need, and the handle's
//! call path reads as lease, call, count. Nothing here knows the handle: it is built on the
//! pure [`KeyTable`] and on [`SupervisorBuilder`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use actix::ArbiterHandle;
use tokio::time::Instant;

use crate::actors::builder::{Member, SupervisorBuilder};
use crate::actors::handle::ServiceHandle;
use crate::actors::shared::member::KeyShare;
use crate::breaker::BreakerState;
use crate::config::SupervisorConfig;
use crate::error::{CallError, ConfigError};
use crate::keyed::table::{KeyTable, Place};
use crate::keyed::KeyedConfig;
use crate::messages::StopSupervisor;
use crate::observe::KeyedMetrics;

/// A keyed service: its keys, its overflow and its bounds.
pub(super) struct Keyed {
    pub(super) name: Arc<str>,
    /// The configuration new keys start from, and the bounds.
    pub(super) config: RwLock<(SupervisorConfig, KeyedConfig)>,
    pub(super) table: RwLock<KeyTable<Arc<KeyEntry>>>,
    /// The supervisor shared by the keys that find every slot taken.
    pub(super) overflow: Arc<KeyEntry>,
    pub(super) share: Arc<KeyShare>,
    /// Counts of the keys without series of their own, and of the overflow.
    pub(super) other: KeyCounts,
    pub(super) metrics: KeyedMetrics,
    pub(super) arbiter: Option<ArbiterHandle>,
    /// The origin of the keys' `last_used` stamps.
    pub(super) origin: Instant,
    /// When a full table was last swept on the call path (nanoseconds since `origin`).
    pub(super) last_sweep: AtomicU64,
}

/// One key's supervisor, its users and its counts.
pub(super) struct KeyEntry {
    pub(super) handle: ServiceHandle,
    /// Calls holding the key now.
    users: AtomicU32,
    /// When a call last took or released the key (nanoseconds since the origin).
    last_used: AtomicU64,
    pub(super) counts: KeyCounts,
}

/// Calls of one key (or of the keys summed under `_other`), by outcome.
#[derive(Debug, Default)]
pub(super) struct KeyCounts {
    success: AtomicU64,
    failure: AtomicU64,
    rejected: AtomicU64,
}

impl KeyCounts {
    pub(super) fn count<T, E>(&self, result: &Result<T, CallError<E>>) {
        let counter = match result {
            Ok(_) => &self.success,
            Err(error) if error.is_rejection() => &self.rejected,
            Err(_) => &self.failure,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn add(&self, other: &KeyCounts) {
        for (mine, theirs) in [
            (&self.success, &other.success),
            (&self.failure, &other.failure),
            (&self.rejected, &other.rejected),
        ] {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    pub(super) fn get(&self) -> [u64; 3] {
        [&self.success, &self.failure, &self.rejected].map(|n| n.load(Ordering::Relaxed))
    }
}

/// A call's hold on its key: released (and the key stamped used) when the call ends, however
/// it ends.
pub(super) struct Lease {
    pub(super) entry: Arc<KeyEntry>,
    origin: Instant,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Stamped before the release: a sweep that sees no user sees this use.
        self.entry
            .last_used
            .store(nanos_since(self.origin), Ordering::SeqCst);
        self.entry.users.fetch_sub(1, Ordering::SeqCst);
    }
}

impl KeyEntry {
    pub(super) fn new(handle: ServiceHandle, now: u64) -> Self {
        KeyEntry {
            handle,
            users: AtomicU32::new(0),
            last_used: AtomicU64::new(now),
            counts: KeyCounts::default(),
        }
    }

    fn lease(self: &Arc<Self>, origin: Instant) -> Lease {
        self.users.fetch_add(1, Ordering::SeqCst);
        Lease {
            entry: Arc::clone(self),
            origin,
        }
    }

    /// No call holds it, and none took it within `idle` of `now`.
    fn is_idle(&self, now: u64, idle: u64) -> bool {
        self.users.load(Ordering::SeqCst) == 0
            && now.saturating_sub(self.last_used.load(Ordering::SeqCst)) >= idle
    }

    pub(super) fn state(&self) -> BreakerState {
        self.handle
            .published
            .admission
            .state()
            .unwrap_or(BreakerState::Closed)
    }
}

fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Keyed {
    /// The counts summed under `_other`: the keys without series of their own (live, and gone)
    /// and the overflow.
    pub(super) fn other_counts(&self, table: &KeyTable<Arc<KeyEntry>>) -> [u64; 3] {
        let mut total = self.other.get();
        let live = table.iter().filter(|(_, entry)| !entry.labeled);
        let counts = live.map(|(_, entry)| entry.value.counts.get());
        for counts in counts.chain([self.overflow.counts.get()]) {
            for (sum, n) in total.iter_mut().zip(counts) {
                *sum += n;
            }
        }
        total
    }

    pub(super) fn read_table(&self) -> std::sync::RwLockReadGuard<'_, KeyTable<Arc<KeyEntry>>> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `key` for one call: its live supervisor, a new one, or the overflow. `None` only
    /// when a supervisor cannot be started (no runtime thread).
    pub(super) fn lease(&self, key: &str) -> Option<Lease> {
        {
            let table = self.read_table();
            if let Some(entry) = table.get(key) {
                if entry.value.handle.is_alive() {
                    return Some(entry.value.lease(self.origin));
                }
            }
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = table.get(key) {
            if entry.value.handle.is_alive() {
                return Some(entry.value.lease(self.origin));
            }
        }
        let now = nanos_since(self.origin);
        if table.get(key).is_none() && table.place() == Place::Overflow {
            self.sweep_full(&mut table, now);
        }
        if table.get(key).is_none() && table.place() == Place::Overflow {
            drop(table);
            self.metrics.overflow_call();
            return Some(self.overflow.lease(self.origin));
        }
        let handle = {
            let config = self.config.read().unwrap_or_else(PoisonError::into_inner);
            start_member(
                &self.name,
                key,
                &config.0,
                &self.share,
                self.arbiter.as_ref(),
            )
            .ok()?
        };
        let entry = Arc::new(KeyEntry::new(handle, now));
        if let Some(stopped) = table.get(key).filter(|stopped| !stopped.labeled) {
            // A stopped supervisor replaced: its counts stay in `_other`.
            self.other.add(&stopped.value.counts);
        }
        table.insert(key, Arc::clone(&entry))?;
        self.share.set_live(table.len());
        self.metrics.keys(table.len(), self.share.open());
        Some(entry.lease(self.origin))
    }

    /// On a full table, drops the idle keys, at most once per tenth of `idle_after` (so a flood
    /// of new keys into a table of busy ones costs one scan per interval, not one per call).
    fn sweep_full(&self, table: &mut KeyTable<Arc<KeyEntry>>, now: u64) {
        let idle = nanos(
            self.config
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .1
                .idle_after,
        );
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < idle / 10 && last != 0 {
            return;
        }
        self.last_sweep.store(now.max(1), Ordering::Relaxed);
        self.drop_idle(table, now, idle);
    }

    /// Drops the idle keys; returns how many.
    pub(super) fn sweep(&self) -> usize {
        let idle = nanos(
            self.config
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .1
                .idle_after,
        );
        let now = nanos_since(self.origin);
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        self.drop_idle(&mut table, now, idle)
    }

    fn drop_idle(&self, table: &mut KeyTable<Arc<KeyEntry>>, now: u64, idle: u64) -> usize {
        let evicted = table.evict(|entry| entry.is_idle(now, idle));
        for (_, entry) in &evicted {
            if !entry.labeled {
                // Summed under `_other` while live, so kept there once gone.
                self.other.add(&entry.value.counts);
            }
            // Its breaker state leaves the open count when the supervisor stops.
            entry.value.handle.addr().do_send(StopSupervisor);
        }
        self.share.set_live(table.len());
        self.metrics.keys(table.len(), self.share.open());
        if !evicted.is_empty() {
            self.metrics.evicted(evicted.len());
        }
        evicted.len()
    }
}

/// Starts the supervisor of `key` of the keyed service `service`.
pub(super) fn start_member(
    service: &Arc<str>,
    key: &str,
    config: &SupervisorConfig,
    share: &Arc<KeyShare>,
    arbiter: Option<&ArbiterHandle>,
) -> Result<ServiceHandle, ConfigError> {
    let mut config = config.clone();
    config.keyed = None;
    if let Some(seed) = config.seed {
        // Reproducible, and yet each key draws its own jitter.
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        config.seed = Some(seed ^ hasher.finish());
    }
    let builder = SupervisorBuilder::new(format!("{service}/{key}"))
        .config(config)
        .member(Member {
            service: Arc::clone(service),
            share: Arc::clone(share),
        });
    match arbiter {
        Some(arbiter) => builder.start_in_arbiter(arbiter),
        None => builder.start(),
    }
}
