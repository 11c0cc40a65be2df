//! [`RegistryHandle`]: what a program holds of its registry.
//!
//! The [`Registry`] is an actor, so each operation is a message and an answer; the handle
//! turns them into `async` methods, validates a services file before it is sent, and answers
//! [`SupervisorGone`] when the registry has stopped. Cheap to clone, so every part of a
//! program can hold its own.

use actix::prelude::*;

use super::keyed_services::{GetKeyed, ListKeyed, SpawnKeyed};
use super::{Registry, RegistryError, ReloadOptions, ReloadReport};
use crate::actors::handle::ServiceHandle;
use crate::actors::keyed::KeyedHandle;
use crate::config::{ServicesFile, SupervisorConfig};
use crate::error::SupervisorGone;
use crate::health::HealthSnapshot;
use crate::messages::{
    GetAllHealth, GetService, ListServices, RemoveService, SpawnService, Subscribe, Subscriber,
};

/// A cloneable handle to a [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryHandle {
    addr: Addr<Registry>,
}

impl RegistryHandle {
    /// Starts an empty registry: on the current arbiter inside an actix system, otherwise on
    /// the [shared background runtime](crate::actors::BackgroundRuntime::shared). Works from
    /// any tokio runtime (or none). Fails only if the operating system cannot start the
    /// background runtime's thread (the `io::Error` of `std::thread::spawn`).
    pub fn start() -> std::io::Result<RegistryHandle> {
        Ok(match crate::actors::runtime::home_arbiter()? {
            None => RegistryHandle {
                addr: Registry::default().start(),
            },
            Some(arbiter) => Self::start_in_arbiter(&arbiter),
        })
    }

    /// Starts an empty registry on `arbiter`.
    pub fn start_in_arbiter(arbiter: &ArbiterHandle) -> RegistryHandle {
        RegistryHandle {
            addr: Registry::start_in_arbiter(arbiter, |_| Registry::default()),
        }
    }

    /// The registry's address.
    pub fn addr(&self) -> &Addr<Registry> {
        &self.addr
    }

    /// Starts a supervisor named `name` on the registry's arbiter.
    pub async fn spawn(
        &self,
        name: impl Into<String>,
        config: SupervisorConfig,
    ) -> Result<ServiceHandle, RegistryError> {
        self.spawn_message(SpawnService {
            name: name.into(),
            config,
            arbiter: None,
        })
        .await
    }

    /// Starts a supervisor named `name` on `arbiter`.
    pub async fn spawn_in(
        &self,
        name: impl Into<String>,
        config: SupervisorConfig,
        arbiter: ArbiterHandle,
    ) -> Result<ServiceHandle, RegistryError> {
        self.spawn_message(SpawnService {
            name: name.into(),
            config,
            arbiter: Some(arbiter),
        })
        .await
    }

    /// Starts one supervisor per service of `file`, in name order; stops at the first error.
    /// A service with a `keyed` table is started keyed ([`spawn_keyed`](Self::spawn_keyed)):
    /// find it with [`get_keyed`](Self::get_keyed); the handles answered are the plain ones.
    pub async fn spawn_all(&self, file: ServicesFile) -> Result<Vec<ServiceHandle>, RegistryError> {
        file.validate()?;
        let mut handles = Vec::with_capacity(file.services.len());
        for (name, config) in file.services {
            if config.keyed.is_some() {
                self.spawn_keyed(name, config).await?;
            } else {
                handles.push(self.spawn(name, config).await?);
            }
        }
        Ok(handles)
    }

    /// Starts a keyed service named `name`: one supervisor per key, each from `config`, within
    /// the bounds of `config.keyed` (the defaults of [`KeyedConfig`](crate::keyed::KeyedConfig)
    /// if `None`); see [`keyed`](crate::keyed). Its keys run on the registry's arbiter, and the
    /// registry drops the idle ones on a timer.
    pub async fn spawn_keyed(
        &self,
        name: impl Into<String>,
        config: SupervisorConfig,
    ) -> Result<KeyedHandle, RegistryError> {
        let name = name.into();
        self.addr
            .send(SpawnKeyed { name, config })
            .await
            .map_err(|_| SupervisorGone)?
    }

    /// The keyed service named `name`.
    pub async fn get_keyed(&self, name: &str) -> Result<Option<KeyedHandle>, SupervisorGone> {
        self.addr
            .send(GetKeyed(name.to_string()))
            .await
            .map_err(|_| SupervisorGone)
    }

    /// Every keyed service, in name order.
    pub async fn keyed_all(&self) -> Result<Vec<KeyedHandle>, SupervisorGone> {
        self.addr.send(ListKeyed).await.map_err(|_| SupervisorGone)
    }

    /// Applies `file` to the running services without losing their state, leaving the services
    /// it no longer lists running: [`reload_with`](Self::reload_with) with the default
    /// [`ReloadOptions`].
    pub async fn reload(&self, file: ServicesFile) -> Result<ReloadReport, RegistryError> {
        self.reload_with(file, ReloadOptions::default()).await
    }

    /// Applies `file` to the running services:
    ///
    /// - the whole file is validated first: an invalid one changes nothing and is answered
    ///   with the [`ConfigError`](crate::ConfigError) naming the field (`services.NAME.FIELD`);
    /// - a service whose configuration changed is reconfigured in place
    ///   ([`ServiceHandle::reconfigure`] says what is kept and what starts afresh), and a
    ///   later restart uses the new configuration;
    /// - a service the file adds is started (on the registry's arbiter);
    /// - a service the file no longer lists is stopped and forgotten only with
    ///   [`ReloadOptions::stop_removed`], otherwise left running as it is.
    ///
    /// Answers once every changed supervisor has applied its configuration, so the calls made
    /// afterwards run with it. Calls in flight are not disturbed: each finishes with the
    /// settings it started with.
    pub async fn reload_with(
        &self,
        file: ServicesFile,
        options: ReloadOptions,
    ) -> Result<ReloadReport, RegistryError> {
        file.validate()?;
        self.addr
            .send(crate::messages::ReloadServices { file, options })
            .await
            .map_err(|_| SupervisorGone)?
    }

    async fn spawn_message(&self, message: SpawnService) -> Result<ServiceHandle, RegistryError> {
        self.addr.send(message).await.map_err(|_| SupervisorGone)?
    }

    /// Subscribes to the events of every supervisor, present and future: an actix `Recipient`
    /// or a tokio `mpsc::Sender` (see [`Subscriber`](crate::messages::Subscriber)).
    pub async fn subscribe(&self, subscriber: impl Into<Subscriber>) -> Result<(), SupervisorGone> {
        self.addr
            .send(Subscribe(subscriber.into()))
            .await
            .map_err(|_| SupervisorGone)
    }

    /// The supervisor named `name`: a handle to the running one (a stopped supervisor is
    /// restarted first, see [`Registry`]).
    pub async fn get(&self, name: &str) -> Result<Option<ServiceHandle>, SupervisorGone> {
        self.addr
            .send(GetService(name.to_string()))
            .await
            .map_err(|_| SupervisorGone)
    }

    /// Stops the supervisor named `name` and forgets it: it is not restarted, and the name can
    /// be spawned again. Answers whether such a service was registered.
    pub async fn remove(&self, name: &str) -> Result<bool, SupervisorGone> {
        self.addr
            .send(RemoveService(name.to_string()))
            .await
            .map_err(|_| SupervisorGone)
    }

    /// Every registered name, sorted.
    pub async fn list(&self) -> Result<Vec<String>, SupervisorGone> {
        self.addr
            .send(ListServices)
            .await
            .map_err(|_| SupervisorGone)
    }

    /// Health of the supervisor named `name`; `None` when no such service is registered or it has stopped.
    pub async fn health_of(&self, name: &str) -> Result<Option<HealthSnapshot>, SupervisorGone> {
        let Some(handle) = self.get(name).await? else {
            return Ok(None);
        };
        Ok(handle.health().await.ok())
    }

    /// Health of every registered supervisor, sorted by name.
    pub async fn health_all(&self) -> Result<Vec<HealthSnapshot>, SupervisorGone> {
        self.addr
            .send(GetAllHealth)
            .await
            .map_err(|_| SupervisorGone)
    }
}
