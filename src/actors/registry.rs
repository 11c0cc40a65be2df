//! [`Registry`]: supervisors by name — spawn, look up, list, health of all.

use std::collections::BTreeMap;

use actix::prelude::*;

use super::builder::SupervisorBuilder;
use super::handle::ServiceHandle;
use crate::config::{ServicesFile, SupervisorConfig};
use crate::error::{ConfigError, SupervisorGone};
use crate::health::HealthSnapshot;
use crate::messages::{
    GetAllHealth, GetHealth, GetService, ListServices, SpawnService, Subscribe, SupervisorEvent,
};

/// An actor that keeps every supervisor of a program by name.
#[derive(Debug, Default)]
pub struct Registry {
    services: BTreeMap<String, ServiceHandle>,
    subscribers: Vec<Recipient<SupervisorEvent>>,
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Registry {
    /// Starts an empty registry on the current arbiter.
    pub fn start_new() -> RegistryHandle {
        RegistryHandle {
            addr: Registry::default().start(),
        }
    }

    /// Starts an empty registry on `arbiter`.
    pub fn start_new_in(arbiter: &ArbiterHandle) -> RegistryHandle {
        RegistryHandle {
            addr: Registry::start_in_arbiter(arbiter, |_| Registry::default()),
        }
    }
}

impl Handler<SpawnService> for Registry {
    type Result = Result<ServiceHandle, ConfigError>;

    fn handle(&mut self, msg: SpawnService, _: &mut Context<Self>) -> Self::Result {
        if self.services.contains_key(&msg.name) {
            return Err(ConfigError::invalid(
                "name",
                format!("a service named `{}` is already registered", msg.name),
            ));
        }
        let builder = SupervisorBuilder::new(msg.name.clone()).config(msg.config);
        let handle = match &msg.arbiter {
            Some(arbiter) => builder.start_in_arbiter(arbiter)?,
            None => builder.start()?,
        };
        for subscriber in &self.subscribers {
            handle.addr().do_send(Subscribe(subscriber.clone()));
        }
        self.services.insert(msg.name, handle.clone());
        Ok(handle)
    }
}

impl Handler<Subscribe> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        for handle in self.services.values() {
            handle.addr().do_send(Subscribe(msg.0.clone()));
        }
        self.subscribers.push(msg.0);
    }
}

impl Handler<GetService> for Registry {
    type Result = Option<ServiceHandle>;

    fn handle(&mut self, msg: GetService, _: &mut Context<Self>) -> Self::Result {
        self.services.get(&msg.0).cloned()
    }
}

impl Handler<ListServices> for Registry {
    type Result = Vec<String>;

    fn handle(&mut self, _: ListServices, _: &mut Context<Self>) -> Self::Result {
        self.services.keys().cloned().collect()
    }
}

impl Handler<GetAllHealth> for Registry {
    type Result = ResponseFuture<Vec<HealthSnapshot>>;

    fn handle(&mut self, _: GetAllHealth, _: &mut Context<Self>) -> Self::Result {
        let handles: Vec<ServiceHandle> = self.services.values().cloned().collect();
        Box::pin(async move {
            let mut all = Vec::with_capacity(handles.len());
            for handle in handles {
                if let Ok(snapshot) = handle.addr().send(GetHealth).await {
                    all.push(snapshot);
                }
            }
            all
        })
    }
}

/// A cloneable handle to a [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryHandle {
    addr: Addr<Registry>,
}

impl RegistryHandle {
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
    pub async fn spawn_all(&self, file: ServicesFile) -> Result<Vec<ServiceHandle>, RegistryError> {
        file.validate()?;
        let mut handles = Vec::with_capacity(file.services.len());
        for (name, config) in file.services {
            handles.push(self.spawn(name, config).await?);
        }
        Ok(handles)
    }

    async fn spawn_message(&self, message: SpawnService) -> Result<ServiceHandle, RegistryError> {
        Ok(self
            .addr
            .send(message)
            .await
            .map_err(|_| SupervisorGone)??)
    }

    /// Subscribes `recipient` to the events of every supervisor, present and future.
    pub async fn subscribe(
        &self,
        recipient: Recipient<SupervisorEvent>,
    ) -> Result<(), SupervisorGone> {
        self.addr
            .send(Subscribe(recipient))
            .await
            .map_err(|_| SupervisorGone)
    }

    /// The supervisor named `name`.
    pub async fn get(&self, name: &str) -> Result<Option<ServiceHandle>, SupervisorGone> {
        self.addr
            .send(GetService(name.to_string()))
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

    /// Health of the supervisor named `name` (the seed's `get_service_health("external_api")`);
    /// `None` when no such service is registered or it has stopped.
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

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The configuration or name is invalid (including a duplicate name).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registry is not running.
    #[error(transparent)]
    Gone(#[from] SupervisorGone),
}
