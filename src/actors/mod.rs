//! The actors: one [`ServiceSupervisor`] per dependency, the [`Registry`] that names them, the
//! cloneable [`ServiceHandle`] callers use, and a [`BackgroundRuntime`] for programs that do not
//! run inside an actix system.

mod builder;
mod call;
mod handle;
mod keyed;
#[cfg(all(test, warden_loom))]
mod loom_tests;
mod registry;
mod runtime;
pub(crate) mod shared;
mod supervisor;

pub use builder::SupervisorBuilder;
pub use handle::ServiceHandle;
pub use keyed::{render_key_series, KeySnapshot, KeyedHandle, KeyedSnapshot};
pub use registry::{Registry, RegistryError, RegistryHandle, ReloadOptions, ReloadReport};
pub use runtime::BackgroundRuntime;
pub use supervisor::ServiceSupervisor;

#[cfg(feature = "status-page")]
pub(crate) use runtime::home_arbiter;
