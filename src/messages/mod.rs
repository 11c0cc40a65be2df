//! Messages a [`ServiceSupervisor`](crate::ServiceSupervisor) and the
//! [`Registry`](crate::Registry) understand: calls, queries and control.

mod call;
mod control;
mod events;
mod query;
mod registry;

pub(crate) use call::Fallback;
pub use call::{BoxOperationFn, Call, Operation};
pub use control::{
    ClearFaults, DisableBreaker, ForceOpen, InjectFaults, Reconfigure, ResetBreaker, StopSupervisor,
};
pub use events::{EventKind, Reconfiguration, Subscribe, Subscriber, SupervisorEvent};
pub use query::{BreakerStatus, CallCounts, GetBreakerStatus, GetCallCounts, GetHealth};
pub use registry::{
    GetAllHealth, GetService, ListServices, ReloadServices, RemoveService, SpawnService,
};
