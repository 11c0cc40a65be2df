//! Manual control of a supervisor's breaker (Resilience4j's FORCED_OPEN / DISABLED, Polly's
//! isolate). Each returns the breaker state after the command.

use actix::Message;

use crate::breaker::BreakerState;
use crate::chaos::FaultConfig;
use crate::config::SupervisorConfig;
use crate::error::ConfigError;
use crate::messages::Reconfiguration;

/// Back to Closed: windows cleared, open-duration growth reset, manual states left.
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "BreakerState")]
pub struct ResetBreaker;

/// Reject every call until [`ResetBreaker`] (take a dependency out of service on purpose).
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "BreakerState")]
pub struct ForceOpen;

/// Admit every call and never trip until [`ResetBreaker`] (switch protection off).
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "BreakerState")]
pub struct DisableBreaker;

/// Stop the supervisor. Calls in flight are cancelled (their operation's future is dropped) and
/// answered [`CallError::SupervisorGone`](crate::CallError::SupervisorGone), as is every later
/// call through its handles. A supervisor started by a [`Registry`](crate::Registry) is
/// restarted by it (see [`RegistryHandle::remove`](crate::actors::RegistryHandle::remove) to
/// take one out for good).
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "()")]
pub struct StopSupervisor;

/// Start injecting faults into the supervisor's attempts ([fault injection](crate::chaos)),
/// replacing any injection in progress. Refused with a [`ConfigError`] naming the field when
/// the configuration is invalid, when it would hang attempts of a supervisor without a timeout
/// or deadline, or when the cargo feature `fault-injection` is off.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ConfigError>")]
pub struct InjectFaults(pub FaultConfig);

/// Stop injecting faults (nothing happens if none were being injected).
#[derive(Debug, Clone, Copy, Default, Message)]
#[rtype(result = "()")]
pub struct ClearFaults;

/// Apply a new configuration to a running supervisor without losing its state where the change
/// allows (see [`ServiceHandle::reconfigure`](crate::ServiceHandle::reconfigure) for what is
/// kept and what starts afresh). The configuration is validated first: an invalid one changes
/// nothing and is answered with the [`ConfigError`] naming the field.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Reconfiguration, ConfigError>")]
pub struct Reconfigure(pub SupervisorConfig);
