//! [`Registry`]: supervisors by name — spawn, look up, list, health of all — and restart of
//! supervisors that stop.
//!
//! The [`Registry`] actor and its entries are here; what it does is in the modules below:
//! `services` answers the messages about plain services, `supervise` starts, watches and
//! restarts their supervisors, `keyed_services` runs keyed ones, `reload` applies a new
//! services file, and `handle` is the [`RegistryHandle`] callers hold.

use std::collections::BTreeMap;

use actix::prelude::*;

mod handle;
mod keyed_services;
mod reload;
mod services;
mod supervise;

pub use handle::RegistryHandle;
pub use reload::{ReloadOptions, ReloadReport};

use crate::actors::handle::ServiceHandle;
use crate::actors::keyed::KeyedHandle;
use crate::config::SupervisorConfig;
use crate::error::{ConfigError, SupervisorGone};
use crate::messages::Subscriber;

/// An actor that keeps every supervisor of a program by name, and restarts the ones that stop.
///
/// The registry watches each supervisor it started. When one stops —
/// [`StopSupervisor`](crate::messages::StopSupervisor), or its arbiter died — the registry
/// starts a new one under the same name with the same configuration, on the same arbiter if
/// that arbiter is still running, otherwise on the registry's own. [`RegistryHandle::get`]
/// always answers a handle to the running supervisor (restarting a stopped one on the spot if
/// the registry has not done it yet); handles to the old one answer
/// [`CallError::SupervisorGone`](crate::CallError::SupervisorGone).
///
/// What a restart keeps: the name, the configuration, the event subscribers, and a manual
/// breaker override (forced open or disabled: an operator's decision stands). What it does not
/// keep: the breaker's automatic state and window (the new supervisor starts Closed), the health
/// window, the retry budget and the call counts. The old supervisor's evidence is about a
/// dependency it no longer watches, and a restarted supervisor re-learns within a few calls
/// (the usual actor-restart rule: restart from a clean state).
#[derive(Debug, Default)]
pub struct Registry {
    services: BTreeMap<String, Entry>,
    /// Keyed services (one supervisor per key), swept for idle keys on a timer each.
    keyed: BTreeMap<String, (KeyedHandle, SpawnHandle)>,
    subscribers: Vec<Subscriber>,
}

/// One registered service.
#[derive(Debug)]
struct Entry {
    handle: ServiceHandle,
    config: SupervisorConfig,
    /// Where it was asked to run; `None` = the registry's arbiter.
    arbiter: Option<ArbiterHandle>,
    /// Incremented on every restart; a watcher of an older incarnation is ignored.
    incarnation: u64,
}

impl Actor for Registry {
    type Context = Context<Self>;
}

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The configuration or name is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A service of that name is registered already (remove it first to replace it).
    #[error("a service named `{name}` is already registered")]
    AlreadyRegistered {
        /// The name asked for.
        name: String,
    },
    /// The registry is not running.
    #[error(transparent)]
    Gone(#[from] SupervisorGone),
}
