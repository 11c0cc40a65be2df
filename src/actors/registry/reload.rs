//! [`ReloadServices`]: the registry takes a new [`ServicesFile`](crate::ServicesFile): changed
//! services are reconfigured in place (their supervisors keep their state where the change
//! allows), added ones are started, removed ones are stopped only when asked.

use actix::prelude::*;

use super::{Entry, Registry, RegistryError};
use crate::messages::{Reconfigure, ReloadServices, StopSupervisor};

/// What [`RegistryHandle::reload_with`](crate::actors::RegistryHandle::reload_with) does
/// besides applying the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadOptions {
    /// Stop and forget the services the file no longer lists (default false: they keep
    /// running, with their last configuration, and are reported as
    /// [`not_in_file`](ReloadReport::not_in_file)).
    pub stop_removed: bool,
}

impl ReloadOptions {
    /// The same options, stopping (or not) the services the file no longer lists.
    pub fn stop_removed(mut self, stop: bool) -> Self {
        self.stop_removed = stop;
        self
    }
}

/// What a reload did, by service name (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Running services whose configuration changed: reconfigured in place.
    pub changed: Vec<String>,
    /// Services the file lists that were not registered: started.
    pub added: Vec<String>,
    /// Services the file no longer lists, stopped and forgotten
    /// ([`ReloadOptions::stop_removed`]).
    pub removed: Vec<String>,
    /// Services the file no longer lists, left running (without `stop_removed`).
    pub not_in_file: Vec<String>,
    /// Services whose configuration is the same: untouched.
    pub unchanged: Vec<String>,
}

impl Handler<ReloadServices> for Registry {
    type Result = ResponseFuture<Result<ReloadReport, RegistryError>>;

    fn handle(&mut self, msg: ReloadServices, ctx: &mut Context<Self>) -> Self::Result {
        let ReloadServices { file, options } = msg;
        // Nothing changes unless the whole file is valid.
        if let Err(error) = file.validate() {
            return Box::pin(std::future::ready(Err(error.into())));
        }
        let mut report = ReloadReport::default();
        let absent: Vec<String> = self
            .services
            .keys()
            .chain(self.keyed.keys())
            .filter(|name| !file.services.contains_key(*name))
            .cloned()
            .collect();
        for name in absent {
            if options.stop_removed {
                // Forgotten first, so its watcher finds nothing to restart.
                if let Some(entry) = self.services.remove(&name) {
                    entry.handle.addr().do_send(StopSupervisor);
                }
                if let Some((keyed, sweep)) = self.keyed.remove(&name) {
                    ctx.cancel_future(sweep);
                    keyed.stop_all();
                }
                tracing::info!(service = %name, "service removed by reload; stopped");
                report.removed.push(name);
            } else {
                report.not_in_file.push(name);
            }
        }
        let mut reconfigure = Vec::new();
        let mut reconfigure_keyed = Vec::new();
        for (name, config) in file.services {
            // A keyed service stays keyed: its keys and the ones started later take the new
            // configuration.
            if let Some((keyed, _)) = self.keyed.get(&name) {
                if keyed.config() == config {
                    report.unchanged.push(name);
                } else {
                    reconfigure_keyed.push((keyed.clone(), config));
                    report.changed.push(name);
                }
                continue;
            }
            if config.keyed.is_some() && !self.services.contains_key(&name) {
                match self.start_keyed(ctx, &name, config) {
                    Ok(_) => report.added.push(name),
                    Err(error) => return Box::pin(std::future::ready(Err(error))),
                }
                continue;
            }
            match self.services.get_mut(&name) {
                Some(entry) if entry.config == config => report.unchanged.push(name),
                Some(entry) => {
                    // Kept first: a restart from now on uses the new configuration.
                    entry.config = config.clone();
                    if let Some(handle) = self.live_handle(ctx, &name) {
                        reconfigure.push((handle, config));
                    }
                    report.changed.push(name);
                }
                None => {
                    let handle = match self.start_supervisor(&name, config.clone(), None) {
                        Ok(handle) => handle,
                        // Validated above: cannot happen, but never half-apply silently.
                        Err(error) => return Box::pin(std::future::ready(Err(error.into()))),
                    };
                    self.watch(ctx, name.clone(), 0, &handle);
                    self.services.insert(
                        name.clone(),
                        Entry {
                            handle,
                            config,
                            arbiter: None,
                            incarnation: 0,
                        },
                    );
                    tracing::info!(service = %name, "service added by reload; started");
                    report.added.push(name);
                }
            }
        }
        Box::pin(async move {
            // Answered once every changed supervisor has applied its new configuration, so a
            // call made after the reload runs with it.
            for (handle, config) in reconfigure {
                match handle.addr().send(Reconfigure(config)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(error.into()),
                    // Stopped meanwhile: its restart uses the new configuration.
                    Err(_) => {}
                }
            }
            for (keyed, config) in reconfigure_keyed {
                match keyed.reconfigure(config).await {
                    Ok(()) => {}
                    Err(crate::error::ControlError::Config(error)) => return Err(error.into()),
                    Err(crate::error::ControlError::Gone(gone)) => return Err(gone.into()),
                }
            }
            Ok(report)
        })
    }
}
