//! [`KeyedHandle`]: one supervisor per key behind one name, within the bounds of a
//! [`KeyedConfig`] (see [`keyed`](crate::keyed) for the design).
//!
//! A call looks its key up under a read lock (the common case: the key is live) and holds it
//! for as long as it runs (a count of users, so an idle sweep never drops a key in use). A new
//! key takes the write lock once to start its supervisor, on the arbiter of the registry that
//! spawned the service. The registry sweeps idle keys on a timer; a full table also sweeps
//! before a new key is sent to the overflow.

use std::collections::hash_map::DefaultHasher;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use actix::ArbiterHandle;
use tokio::time::Instant;

use super::builder::{Member, SupervisorBuilder};
use super::handle::ServiceHandle;
use super::shared::member::KeyShare;
use crate::breaker::BreakerState;
use crate::config::SupervisorConfig;
use crate::error::{CallError, ConfigError};
use crate::keyed::table::{KeyTable, Place};
use crate::keyed::KeyedConfig;
use crate::messages::{Call, StopSupervisor};
use crate::observe::{
    KeyedMetrics, KEY_CALLS_TOTAL, KEY_OPEN, LABEL_KEY, LABEL_OUTCOME, LABEL_SERVICE,
    METRIC_FAMILIES, OTHER_KEYS,
};

/// The handle of a keyed service: runs each call under its key's own supervisor. Cheap to
/// clone; `Send + Sync`. Get one from
/// [`RegistryHandle::spawn_keyed`](crate::RegistryHandle::spawn_keyed).
///
/// ```
/// use warden::prelude::*;
///
/// # #[actix::main(crate = "actix")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = RegistryHandle::start()?;
/// let hosts = registry
///     .spawn_keyed("hosts", SupervisorConfig::http_api())
///     .await?;
/// // Each host gets its own breaker: one failing host does not open the others.
/// let body: Result<&str, CallError<std::io::Error>> =
///     hosts.call("api.example.com", || async { Ok("hello") }).await;
/// assert_eq!(body?, "hello");
/// assert_eq!(hosts.key_count(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KeyedHandle {
    inner: Arc<Keyed>,
}

/// A keyed service: its keys, its overflow and its bounds.
struct Keyed {
    name: Arc<str>,
    /// The configuration new keys start from, and the bounds.
    config: RwLock<(SupervisorConfig, KeyedConfig)>,
    table: RwLock<KeyTable<Arc<KeyEntry>>>,
    /// The supervisor shared by the keys that find every slot taken.
    overflow: Arc<KeyEntry>,
    share: Arc<KeyShare>,
    /// Counts of the keys without series of their own, and of the overflow.
    other: KeyCounts,
    metrics: KeyedMetrics,
    arbiter: Option<ArbiterHandle>,
    /// The origin of the keys' `last_used` stamps.
    origin: Instant,
    /// When a full table was last swept on the call path (nanoseconds since `origin`).
    last_sweep: AtomicU64,
}

/// One key's supervisor, its users and its counts.
struct KeyEntry {
    handle: ServiceHandle,
    /// Calls holding the key now.
    users: AtomicU32,
    /// When a call last took or released the key (nanoseconds since the origin).
    last_used: AtomicU64,
    counts: KeyCounts,
}

/// Calls of one key (or of the keys summed under `_other`), by outcome.
#[derive(Debug, Default)]
struct KeyCounts {
    success: AtomicU64,
    failure: AtomicU64,
    rejected: AtomicU64,
}

impl KeyCounts {
    fn count<T, E>(&self, result: &Result<T, CallError<E>>) {
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

    fn get(&self) -> [u64; 3] {
        [&self.success, &self.failure, &self.rejected].map(|n| n.load(Ordering::Relaxed))
    }
}

/// A call's hold on its key: released (and the key stamped used) when the call ends, however
/// it ends.
struct Lease {
    entry: Arc<KeyEntry>,
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
    fn new(handle: ServiceHandle, now: u64) -> Self {
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

    fn state(&self) -> BreakerState {
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

impl KeyedHandle {
    /// Starts a keyed service `name` (validated `config`, its `keyed` bounds or the defaults),
    /// placing its supervisors on `arbiter` (or where [`SupervisorBuilder::start`] would).
    pub(crate) fn start(
        name: &str,
        config: SupervisorConfig,
        arbiter: Option<ArbiterHandle>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        crate::config::validate_service_name(name)?;
        let bounds = config.keyed.clone().unwrap_or_default();
        let name: Arc<str> = Arc::from(name);
        let share = Arc::new(KeyShare::new(bounds.max_open_share));
        let overflow = start_member(&name, "_overflow", &config, &share, arbiter.as_ref())?;
        let origin = Instant::now();
        Ok(KeyedHandle {
            inner: Arc::new(Keyed {
                metrics: KeyedMetrics::register(&name),
                table: RwLock::new(KeyTable::new(&bounds)),
                config: RwLock::new((config, bounds)),
                overflow: Arc::new(KeyEntry::new(overflow, 0)),
                share,
                other: KeyCounts::default(),
                arbiter,
                origin,
                last_sweep: AtomicU64::new(0),
                name,
            }),
        })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Runs `operation` under the supervisor of `key` (started on the key's first call), as
    /// [`ServiceHandle::call`] does.
    pub async fn call<T, E, F, Fut>(&self, key: &str, operation: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.send(key, Call::new(operation)).await
    }

    /// Runs a prepared [`Call`] under the supervisor of `key`, as [`ServiceHandle::send`] does.
    pub async fn send<T, E, F, Fut>(
        &self,
        key: &str,
        call: Call<T, E, F>,
    ) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Some(lease) = self.inner.lease(key) else {
            return Err(CallError::NoRuntime { attempts: 0 });
        };
        let result = lease.entry.handle.send(call).await;
        lease.entry.counts.count(&result);
        result
    }

    /// The handle of `key`'s own supervisor, if the key is live (for queries and control:
    /// `health()`, `reset()`, …).
    pub fn key(&self, key: &str) -> Option<ServiceHandle> {
        let table = self
            .inner
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        table.get(key).map(|entry| entry.value.handle.clone())
    }

    /// The supervisor shared by the keys that found every slot taken.
    pub fn overflow(&self) -> &ServiceHandle {
        &self.inner.overflow.handle
    }

    /// Keys with a supervisor of their own now.
    pub fn key_count(&self) -> usize {
        self.inner.read_table().len()
    }

    /// Keys whose breaker keeps traffic off them now (open, half-open or forced open).
    pub fn open_keys(&self) -> usize {
        self.inner.share.open()
    }

    /// Drops the keys idle for `idle_after` now (the registry also does it on a timer); returns
    /// how many.
    pub fn evict_idle(&self) -> usize {
        self.inner.sweep()
    }

    /// A new configuration: applied to every live key at once (as
    /// [`ServiceHandle::reconfigure`] would) and to the keys started from now on; new bounds
    /// apply to keys placed from now on.
    pub async fn reconfigure(&self, config: SupervisorConfig) -> Result<(), crate::ControlError> {
        config.validate()?;
        let bounds = config.keyed.clone().unwrap_or_default();
        let handles: Vec<ServiceHandle> = {
            let mut table = self
                .inner
                .table
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            table.set_bounds(&bounds);
            table.iter().map(|(_, e)| e.value.handle.clone()).collect()
        };
        self.inner.share.set_share(bounds.max_open_share);
        *self
            .inner
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = (config.clone(), bounds);
        let overflow = self.inner.overflow.handle.clone();
        for handle in handles.iter().chain([&overflow]) {
            match handle.reconfigure(config.clone()).await {
                // A key evicted meanwhile needs nothing.
                Ok(_) | Err(crate::ControlError::Gone(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The configuration new keys start from (with its `keyed` bounds).
    pub fn config(&self) -> SupervisorConfig {
        let config = self
            .inner
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut full = config.0.clone();
        full.keyed = Some(config.1.clone());
        full
    }

    /// The keyed service now: its keys, the open ones, and the `top` keys by failures.
    pub fn snapshot(&self, top: usize) -> KeyedSnapshot {
        let inner = &self.inner;
        let (keys, max_keys, mut top_keys) = {
            let table = inner.read_table();
            let max_keys = inner
                .config
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .1
                .max_keys;
            let all: Vec<KeySnapshot> = table
                .iter()
                .map(|(key, entry)| {
                    let [success, failure, rejected] = entry.value.counts.get();
                    KeySnapshot {
                        key: key.to_string(),
                        state: entry.value.state(),
                        labeled: entry.labeled,
                        success,
                        failure,
                        rejected,
                    }
                })
                .collect();
            (table.len(), max_keys, all)
        };
        top_keys.sort_by(|a, b| {
            (b.state != BreakerState::Closed, b.failure, &a.key).cmp(&(
                a.state != BreakerState::Closed,
                a.failure,
                &b.key,
            ))
        });
        top_keys.truncate(top);
        let [success, failure, rejected] = inner.other_counts(&inner.read_table());
        KeyedSnapshot {
            service: inner.name.to_string(),
            keys,
            max_keys,
            open_keys: inner.share.open(),
            overflow_state: inner.overflow.state(),
            other: [success, failure, rejected],
            top: top_keys,
        }
    }

    /// Appends this service's per-key series (`warden_key_*`, see
    /// [`KEY_CALLS_TOTAL`](crate::observe::KEY_CALLS_TOTAL)) to `out` in the Prometheus text
    /// format, without their `# HELP`/`# TYPE` lines ([`render_key_series`] writes those).
    fn render_series(&self, calls: &mut String, open: &mut String) {
        let inner = &self.inner;
        let service = escape(&inner.name);
        let mut write_calls = |key: &str, counts: [u64; 3]| {
            for (outcome, n) in ["success", "failure", "rejected"].iter().zip(counts) {
                let _ = writeln!(
                    calls,
                    "{KEY_CALLS_TOTAL}{{{LABEL_SERVICE}=\"{service}\",{LABEL_KEY}=\"{}\",\
                     {LABEL_OUTCOME}=\"{outcome}\"}} {n}",
                    escape(key)
                );
            }
        };
        let table = inner.read_table();
        for (key, entry) in table.iter().filter(|(_, entry)| entry.labeled) {
            write_calls(key, entry.value.counts.get());
            let is_open = entry.value.state() != BreakerState::Closed
                && entry.value.state() != BreakerState::Disabled;
            let _ = writeln!(
                open,
                "{KEY_OPEN}{{{LABEL_SERVICE}=\"{service}\",{LABEL_KEY}=\"{}\"}} {}",
                escape(key),
                u8::from(is_open)
            );
        }
        write_calls(OTHER_KEYS, inner.other_counts(&table));
    }

    /// Refreshes the service's gauges (keys, open keys) and drops its idle keys.
    pub(crate) fn tick(&self) {
        self.inner.sweep();
    }

    /// How often the registry sweeps this service: a quarter of `idle_after`, at most 1 s.
    pub(crate) fn sweep_every(&self) -> Duration {
        let idle = self
            .inner
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .idle_after;
        (idle / 4).clamp(Duration::from_millis(1), Duration::from_secs(1))
    }

    /// Stops every key's supervisor and the overflow (the service is removed).
    pub(crate) fn stop_all(&self) {
        let table = self.inner.read_table();
        for (_, entry) in table.iter() {
            entry.value.handle.addr().do_send(StopSupervisor);
        }
        self.inner.overflow.handle.addr().do_send(StopSupervisor);
    }
}

/// The `# HELP`/`# TYPE` lines and the per-key series of `services`, in the Prometheus text
/// format: what warden's `/metrics` routes append to the recorder's output.
pub fn render_key_series(services: &[KeyedHandle]) -> String {
    let (mut calls, mut open) = (String::new(), String::new());
    for service in services {
        service.render_series(&mut calls, &mut open);
    }
    let mut out = String::new();
    if services.is_empty() {
        return out;
    }
    let help = |name: &str| {
        METRIC_FAMILIES
            .iter()
            .find(|(family, _)| *family == name)
            .map_or("", |(_, help)| help)
    };
    let _ = writeln!(out, "# HELP {KEY_CALLS_TOTAL} {}", help(KEY_CALLS_TOTAL));
    let _ = writeln!(out, "# TYPE {KEY_CALLS_TOTAL} counter");
    out.push_str(&calls);
    if !open.is_empty() {
        let _ = writeln!(out, "# HELP {KEY_OPEN} {}", help(KEY_OPEN));
        let _ = writeln!(out, "# TYPE {KEY_OPEN} gauge");
        out.push_str(&open);
    }
    out
}

/// A label value in the Prometheus text format.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Keyed {
    /// The counts summed under `_other`: the keys without series of their own (live, and gone)
    /// and the overflow.
    fn other_counts(&self, table: &KeyTable<Arc<KeyEntry>>) -> [u64; 3] {
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

    fn read_table(&self) -> std::sync::RwLockReadGuard<'_, KeyTable<Arc<KeyEntry>>> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `key` for one call: its live supervisor, a new one, or the overflow. `None` only
    /// when a supervisor cannot be started (no runtime thread).
    fn lease(&self, key: &str) -> Option<Lease> {
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
    fn sweep(&self) -> usize {
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
fn start_member(
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

impl fmt::Debug for KeyedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedHandle")
            .field("service", &self.inner.name)
            .field("keys", &self.key_count())
            .field("open_keys", &self.open_keys())
            .finish_non_exhaustive()
    }
}

/// A keyed service at one instant ([`KeyedHandle::snapshot`]); also in the status page's JSON
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
