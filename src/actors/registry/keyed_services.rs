//! The registry's keyed services (one supervisor per key, see [`keyed`](crate::keyed)):
//! started, found and listed by name, each swept for idle keys on a timer of the registry's.
//!
//! Apart from the plain services because a keyed service is not one supervisor the registry
//! watches and restarts: it is a [`KeyedHandle`] that starts its keys' supervisors itself, so
//! all the registry keeps of it is the handle and the timer that sweeps it.

use actix::prelude::*;

use super::{Registry, RegistryError};
use crate::actors::keyed::KeyedHandle;
use crate::config::SupervisorConfig;

/// Start a keyed service.
#[derive(Debug, Message)]
#[rtype(result = "Result<KeyedHandle, RegistryError>")]
pub(super) struct SpawnKeyed {
    pub(super) name: String,
    pub(super) config: SupervisorConfig,
}

/// The keyed service of this name.
#[derive(Debug, Message)]
#[rtype(result = "Option<KeyedHandle>")]
pub(super) struct GetKeyed(pub(super) String);

/// Every keyed service.
#[derive(Debug, Message)]
#[rtype(result = "Vec<KeyedHandle>")]
pub(super) struct ListKeyed;

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
    pub(super) fn start_keyed(
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
