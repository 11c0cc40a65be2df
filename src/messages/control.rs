//! Manual control of a supervisor's breaker (Resilience4j's FORCED_OPEN / DISABLED, Polly's
//! isolate). Each returns the breaker state after the command.

use actix::Message;

use crate::breaker::BreakerState;

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
