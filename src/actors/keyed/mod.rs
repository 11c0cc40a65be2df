//! [`KeyedHandle`]: one supervisor per key behind one name, within the bounds of a
//! [`KeyedConfig`](crate::keyed::KeyedConfig) (see [`keyed`](crate::keyed) for the design).
//!
//! A call looks its key up under a read lock (the common case: the key is live) and holds it
//! for as long as it runs (a count of users, so an idle sweep never drops a key in use). A new
//! key takes the write lock once to start its supervisor, on the arbiter of the registry that
//! spawned the service. The registry sweeps idle keys on a timer; a full table also sweeps
//! before a new key is sent to the overflow.

mod keys;
mod render;
mod snapshot;

pub use render::render_key_series;
pub use snapshot::{KeySnapshot, KeyedSnapshot};

use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use actix::ArbiterHandle;
use tokio::time::Instant;

use self::keys::{start_member, KeyCounts, KeyEntry, Keyed};
use super::handle::ServiceHandle;
use super::shared::member::KeyShare;
use crate::breaker::BreakerState;
use crate::config::SupervisorConfig;
use crate::error::{CallError, ConfigError};
use crate::keyed::table::KeyTable;
use crate::messages::{Call, StopSupervisor};
use crate::observe::KeyedMetrics;

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

impl KeyedHandle {
    /// Starts a keyed service `name` (validated `config`, its `keyed` bounds or the defaults),
    /// placing its supervisors on `arbiter` (or where
    /// [`SupervisorBuilder::start`](super::SupervisorBuilder::start) would).
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
    pub async fn reconfigure(
        &self,
        config: SupervisorConfig,
    ) -> Result<(), crate::error::ControlError> {
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
                Ok(_) | Err(crate::error::ControlError::Gone(_)) => {}
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

impl fmt::Debug for KeyedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedHandle")
            .field("service", &self.inner.name)
            .field("keys", &self.key_count())
            .field("open_keys", &self.open_keys())
            .finish_non_exhaustive()
    }
}
