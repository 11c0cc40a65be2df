//! The actors: one [`ServiceSupervisor`] per dependency, the [`Registry`] that names them, the
//! cloneable [`ServiceHandle`] callers use, and a [`BackgroundRuntime`] for programs that do not
//! run inside an actix system.

mod builder;
mod call_driver;
pub(crate) mod coalesce;
mod handle;
mod handoff;
#[cfg(all(test, warden_loom))]
mod loom_tests;
mod published;
mod registry;
mod runtime;
mod supervisor;

pub use builder::SupervisorBuilder;
pub use handle::ServiceHandle;
pub use registry::{Registry, RegistryError, RegistryHandle, ReloadOptions, ReloadReport};
pub use runtime::BackgroundRuntime;
pub use supervisor::{CallReply, ServiceSupervisor, BATCH_WINDOW};

pub(crate) use published::Published;
#[cfg(feature = "status-page")]
pub(crate) use runtime::home_arbiter;
