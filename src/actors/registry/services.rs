//! The registry's answers about its plain services: spawn one, subscribe to all, get one,
//! remove one, list them, and the health of all.
//!
//! Each is one message handled on the registry's actor, which alone owns the table of
//! services, so none of them needs a lock; a lookup restarts a stopped supervisor first, so a
//! handle answered is to a running one.

use actix::prelude::*;

use super::{Entry, Registry, RegistryError};
use crate::actors::handle::ServiceHandle;
use crate::health::HealthSnapshot;
use crate::messages::{
    GetAllHealth, GetHealth, GetService, ListServices, RemoveService, SpawnService, StopSupervisor,
    Subscribe,
};

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
