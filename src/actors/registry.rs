//! [`Registry`]: supervisors by name — spawn, look up, list, health of all — and restart of
//! supervisors that stop.

use std::collections::BTreeMap;

use actix::prelude::*;

mod reload;
pub use reload::{ReloadOptions, ReloadReport};

use super::builder::SupervisorBuilder;
use super::handle::ServiceHandle;
use super::keyed::KeyedHandle;
use crate::breaker::BreakerState;
use crate::config::{ServicesFile, SupervisorConfig};
use crate::error::{ConfigError, SupervisorGone};
use crate::health::HealthSnapshot;
use crate::messages::{
    DisableBreaker, ForceOpen, GetAllHealth, GetHealth, GetService, ListServices, RemoveService,
    SpawnService, StopSupervisor, Subscribe, Subscriber,
};

/// An actor that keeps every supervisor of a program by name, and restarts the ones that stop.
///
/// The registry watches each supervisor it started. When one stops — [`StopSupervisor`], or
/// its arbiter died — the registry starts a new one under the same name with the same
/// configuration, on the same arbiter if that arbiter is still running, otherwise on the
/// registry's own. [`RegistryHandle::get`] always answers a handle to the running supervisor
/// (restarting a stopped one on the spot if the registry has not done it yet); handles to the
/// old one answer [`CallError::SupervisorGone`](crate::CallError::SupervisorGone).
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

/// Start a keyed service.
#[derive(Debug, Message)]
#[rtype(result = "Result<KeyedHandle, RegistryError>")]
struct SpawnKeyed {
    name: String,
    config: SupervisorConfig,
}

/// The keyed service of this name.
#[derive(Debug, Message)]
#[rtype(result = "Option<KeyedHandle>")]
struct GetKeyed(String);

/// Every keyed service.
#[derive(Debug, Message)]
#[rtype(result = "Vec<KeyedHandle>")]
struct ListKeyed;

impl Handler<SpawnKeyed> for Registry {
    type Result = Result<KeyedHandle, RegistryError>;

    fn handle(&mut self, msg: SpawnKeyed, ctx: &mut Context<Self>) -> Self::Result {
        if self.services.contains_key(&msg.name) || self.keyed.contains_key(&msg.name) {
            return Err(RegistryError::AlreadyRegistered { name: msg.name });
        }
        self.start_keyed(ctx, &msg.name, msg.config)
    }
}

impl Registry {
    /// Starts the keyed service `name` here, swept for idle keys on a timer.
    fn start_keyed(
        &mut self,
        ctx: &mut Context<Self>,
        name: &str,
        config: SupervisorConfig,
    ) -> Result<KeyedHandle, RegistryError> {
        let keyed = KeyedHandle::start(name, config, Some(Arbiter::current()))?;
        let swept = keyed.clone();
        let sweep = ctx.run_interval(keyed.sweep_every(), move |_, _| swept.tick());
        self.keyed.insert(name.to_string(), (keyed.clone(), sweep));
        Ok(keyed)
    }
}

impl Handler<GetKeyed> for Registry {
    type Result = Option<KeyedHandle>;

    fn handle(&mut self, msg: GetKeyed, _: &mut Context<Self>) -> Self::Result {
        self.keyed.get(&msg.0).map(|(keyed, _)| keyed.clone())
    }
}

impl Handler<ListKeyed> for Registry {
    type Result = Vec<KeyedHandle>;

    fn handle(&mut self, _: ListKeyed, _: &mut Context<Self>) -> Self::Result {
        self.keyed
            .values()
            .map(|(keyed, _)| keyed.clone())
            .collect()
    }
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

/// A watched supervisor has stopped.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct SupervisorStopped {
    name: String,
    incarnation: u64,
}

impl Handler<SupervisorStopped> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SupervisorStopped, ctx: &mut Context<Self>) {
        self.restart(ctx, &msg.name, msg.incarnation);
    }
}

impl Registry {
    /// Starts `name` with `config` on `arbiter` (or here), with the registry's subscribers.
    fn start_supervisor(
        &self,
        name: &str,
        config: SupervisorConfig,
        arbiter: Option<&ArbiterHandle>,
    ) -> Result<ServiceHandle, ConfigError> {
        let builder = SupervisorBuilder::new(name).config(config);
        let handle = match arbiter {
            Some(arbiter) => builder.start_in_arbiter(arbiter)?,
            None => builder.start()?,
        };
        for subscriber in &self.subscribers {
            handle.addr().do_send(Subscribe(subscriber.clone()));
        }
        Ok(handle)
    }

    /// Restarts `name` when its incarnation `incarnation` stops.
    fn watch(
        &self,
        ctx: &mut Context<Self>,
        name: String,
        incarnation: u64,
        handle: &ServiceHandle,
    ) {
        // A task of its own per supervisor, not a future in the registry's context: actix
        // re-polls every context future on each of the registry's wake-ups, which would make
        // every registry message cost O(services). A weak address: watchers do not keep the
        // registry alive.
        let stopped = handle.stopped();
        let registry = ctx.address().downgrade();
        actix::spawn(async move {
            stopped.await;
            if let Some(registry) = registry.upgrade() {
                registry.do_send(SupervisorStopped { name, incarnation });
            }
        });
    }

    /// Starts a new supervisor for `name` if incarnation `incarnation` is still the registered
    /// one (it was not restarted or removed meanwhile).
    fn restart(&mut self, ctx: &mut Context<Self>, name: &str, incarnation: u64) {
        if ctx.state() != ActorState::Running {
            return; // the registry itself is stopping: nothing to keep alive
        }
        let Some(entry) = self.services.get(name) else {
            return;
        };
        if entry.incarnation != incarnation {
            return;
        }
        // A dead arbiter refuses new work: fall back to the registry's own arbiter.
        let arbiter = entry
            .arbiter
            .clone()
            .filter(|arbiter| arbiter.spawn(async {}));
        let manual = entry.handle.published_state();
        let handle = match self.start_supervisor(name, entry.config.clone(), arbiter.as_ref()) {
            Ok(handle) => handle,
            Err(error) => {
                // The configuration was valid when first started; nothing else can fail.
                tracing::error!(service = name, %error, "cannot restart supervisor");
                return;
            }
        };
        // Queued before any call can reach the new supervisor's mailbox.
        match manual {
            Some(BreakerState::ForcedOpen) => handle.addr().do_send(ForceOpen),
            Some(BreakerState::Disabled) => handle.addr().do_send(DisableBreaker),
            _ => {}
        }
        tracing::warn!(
            service = name,
            restarts = incarnation + 1,
            on_own_arbiter = arbiter.is_none(),
            "supervisor stopped; restarted"
        );
        self.watch(ctx, name.to_string(), incarnation + 1, &handle);
        if let Some(entry) = self.services.get_mut(name) {
            entry.handle = handle;
            entry.arbiter = arbiter;
            entry.incarnation = incarnation + 1;
        }
    }

    /// The handle of `name`, restarting its supervisor first if it has stopped.
    fn live_handle(&mut self, ctx: &mut Context<Self>, name: &str) -> Option<ServiceHandle> {
        let entry = self.services.get(name)?;
        if !entry.handle.is_alive() {
            let incarnation = entry.incarnation;
            self.restart(ctx, name, incarnation);
        }
        self.services.get(name).map(|entry| entry.handle.clone())
    }
}

impl Handler<SpawnService> for Registry {
    type Result = Result<ServiceHandle, RegistryError>;

    fn handle(&mut self, msg: SpawnService, ctx: &mut Context<Self>) -> Self::Result {
        if self.services.contains_key(&msg.name) || self.keyed.contains_key(&msg.name) {
            return Err(RegistryError::AlreadyRegistered { name: msg.name });
        }
        let handle = self.start_supervisor(&msg.name, msg.config.clone(), msg.arbiter.as_ref())?;
        self.watch(ctx, msg.name.clone(), 0, &handle);
        self.services.insert(
            msg.name,
            Entry {
                handle: handle.clone(),
                config: msg.config,
                arbiter: msg.arbiter,
                incarnation: 0,
            },
        );
        Ok(handle)
    }
}

impl Handler<Subscribe> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        for entry in self.services.values() {
            entry.handle.addr().do_send(Subscribe(msg.0.clone()));
        }
        self.subscribers.push(msg.0);
    }
}

impl Handler<GetService> for Registry {
    type Result = Option<ServiceHandle>;

    fn handle(&mut self, msg: GetService, ctx: &mut Context<Self>) -> Self::Result {
        self.live_handle(ctx, &msg.0)
    }
}

impl Handler<RemoveService> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: RemoveService, ctx: &mut Context<Self>) -> Self::Result {
        if let Some((keyed, sweep)) = self.keyed.remove(&msg.0) {
            ctx.cancel_future(sweep);
            keyed.stop_all();
            return true;
        }
        // Forgotten first, so its watcher finds nothing to restart.
        let Some(entry) = self.services.remove(&msg.0) else {
            return false;
        };
        entry.handle.addr().do_send(StopSupervisor);
        true
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

    fn handle(&mut self, _: GetAllHealth, ctx: &mut Context<Self>) -> Self::Result {
        let names: Vec<String> = self.services.keys().cloned().collect();
        let handles: Vec<ServiceHandle> = names
            .iter()
            .filter_map(|name| self.live_handle(ctx, name))
            .collect();
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
    /// Starts an empty registry: on the current arbiter inside an actix system, otherwise on
    /// the [shared background runtime](crate::actors::BackgroundRuntime::shared). Works from
    /// any tokio runtime (or none). Fails only if the operating system cannot start the
    /// background runtime's thread (the `io::Error` of `std::thread::spawn`).
    pub fn start() -> std::io::Result<RegistryHandle> {
        Ok(match super::runtime::home_arbiter()? {
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
    ///   with the [`ConfigError`] naming the field (`services.NAME.FIELD`);
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
