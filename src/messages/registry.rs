//! Messages of the [`Registry`](crate::Registry): spawn, look up, list, health of all.

use actix::{ArbiterHandle, Message};

use crate::actors::RegistryError;
use crate::actors::{ReloadOptions, ReloadReport, ServiceHandle};
use crate::config::{ServicesFile, SupervisorConfig};
use crate::health::HealthSnapshot;

/// Start a supervisor under a name (on the registry's arbiter, or on `arbiter`).
#[derive(Debug, Message)]
#[rtype(result = "Result<ServiceHandle, RegistryError>")]
pub struct SpawnService {
    /// The dependency's name: a metric label and the registry key. Must be unique.
    pub name: String,
    /// Its configuration.
    pub config: SupervisorConfig,
    /// Where to run it; `None` = the registry's own arbiter.
    pub arbiter: Option<ArbiterHandle>,
}

/// Look a supervisor up by name. If it has stopped, the registry restarts it first, so the
/// answer is a handle to a running supervisor.
#[derive(Debug, Message)]
#[rtype(result = "Option<ServiceHandle>")]
pub struct GetService(pub String);

/// Stop the supervisor registered under a name and forget it (it is not restarted). Answers
/// whether such a service was registered.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct RemoveService(pub String);

/// Names of every registered supervisor, sorted.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "Vec<String>")]
pub struct ListServices;

/// Health of every registered supervisor, sorted by name.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "Vec<HealthSnapshot>")]
pub struct GetAllHealth;

/// Apply a new [`ServicesFile`] to the registry without losing the running supervisors' state
/// (see [`RegistryHandle::reload`](crate::actors::RegistryHandle::reload)).
#[derive(Debug, Message)]
#[rtype(result = "Result<ReloadReport, RegistryError>")]
pub struct ReloadServices {
    /// The services as they should be.
    pub file: ServicesFile,
    /// What to do with services the file no longer lists.
    pub options: ReloadOptions,
}
