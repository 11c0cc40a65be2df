//! Crate-internal messages between a call in flight and its supervisor: the call runs as its
//! own task and reports each attempt back, so the supervisor stays the only writer of breaker,
//! health and budget state while its mailbox is never blocked by a call.

use std::time::Duration;

use actix::Message;

use crate::breaker::{Permit, Rejected};
use crate::observe::CallOutcome;

/// How one attempt ended, as the supervisor records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    /// Returned a value.
    Success,
    /// Returned an error that counts as a breaker failure.
    Failure,
    /// Returned an error the classifier says is not the dependency's fault.
    Ignored,
    /// Cancelled by the per-attempt timeout or the deadline.
    TimedOut,
    /// Panicked.
    Panicked,
}

/// The call is answered: record its last attempt (unless [`AttemptFailed`] already did) and
/// count its answer.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct RecordOutcome {
    /// The last attempt's permit, outcome and duration, when not recorded yet.
    pub(crate) last_attempt: Option<(Permit, AttemptOutcome, Duration)>,
    /// How the call was answered, for counts and metrics.
    pub(crate) answer: CallOutcome,
    /// Caller-observed duration of the whole call.
    pub(crate) call_duration: Duration,
}

/// An attempt failed with something retryable: record it and decide whether to retry.
#[derive(Debug, Message)]
#[rtype(result = "RetryDecision")]
pub(crate) struct AttemptFailed {
    pub(crate) permit: Permit,
    pub(crate) outcome: AttemptOutcome,
    pub(crate) attempt_duration: Duration,
    pub(crate) attempts_made: u32,
    pub(crate) previous_delay: Duration,
    pub(crate) retry_after: Option<Duration>,
    /// Time left before the call's deadline, if it has one.
    pub(crate) deadline_left: Option<Duration>,
}

/// The supervisor's answer to [`AttemptFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Sleep this long, then ask for a permit with [`AdmitRetry`].
    RetryAfter(Duration),
    /// No attempts left (or the hint/deadline leaves no room).
    Exhausted,
    /// The retry budget is spent.
    Budget,
    /// The breaker is (forced) open and will still be when the delay ends.
    Open(Option<Duration>),
}

/// A retry's delay has passed: ask the breaker for a permit.
#[derive(Debug, Message)]
#[rtype(result = "Result<Permit, Rejected>")]
pub(crate) struct AdmitRetry;
