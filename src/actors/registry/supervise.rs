//! How the registry keeps its plain services alive: it starts each supervisor with the
//! registry's subscribers, watches it, and restarts it under the same name when it stops.
//!
//! A supervisor stops when told to or when its arbiter dies; a program holding its name should
//! not have to notice. Each start is an *incarnation*: a watcher reports the one it watched, so
//! a stop that was already handled (restarted, or the service removed) restarts nothing.

use actix::prelude::*;

use super::Registry;
use crate::actors::builder::SupervisorBuilder;
use crate::actors::handle::ServiceHandle;
use crate::breaker::BreakerState;
use crate::config::SupervisorConfig;
use crate::error::ConfigError;
use crate::messages::{DisableBreaker, ForceOpen, Subscribe};

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
    pub(super) fn start_supervisor(
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
    pub(super) fn watch(
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
    pub(super) fn live_handle(
        &mut self,
        ctx: &mut Context<Self>,
        name: &str,
    ) -> Option<ServiceHandle> {
        let entry = self.services.get(name)?;
        if !entry.handle.is_alive() {
            let incarnation = entry.incarnation;
            self.restart(ctx, name, incarnation);
        }
        self.services.get(name).map(|entry| entry.handle.clone())
    }
}
