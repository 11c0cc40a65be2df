//! The vocabulary every layer shares: how a call ended ([`CallOutcome`]), why a call or a retry
//! was refused ([`RejectReason`]) or retried ([`RetryReason`]), which fault was injected
//! ([`FaultKind`]), and, inside the crate, how one attempt ended.
//!
//! It sits below everything else (the pure cores, the engine, the metrics), so that none of them
//! has to import another to name an outcome. Each value's [`as_str`](CallOutcome::as_str) is the
//! label value it is exported under.

/// How a call ended, as the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The operation returned a value.
    Success,
    /// The operation returned an error (after any retries).
    Failure,
    /// The last attempt timed out, or the deadline passed.
    Timeout,
    /// The operation panicked.
    Panic,
    /// The call never ran: open breaker or overload.
    Rejected,
    /// The caller dropped the call before its answer; its attempt in flight was cancelled.
    Cancelled,
    /// The call failed (or was refused) and its fallback answered in its place.
    Fallback,
    /// The call was [coalesced](crate::messages::Call::coalesce): it waited for another call
    /// with the same key, already in flight, and was answered with that call's answer (a value
    /// or an error) without running the operation.
    Coalesced,
}

impl CallOutcome {
    /// All values, in label order.
    pub const ALL: [CallOutcome; 8] = [
        CallOutcome::Success,
        CallOutcome::Failure,
        CallOutcome::Timeout,
        CallOutcome::Panic,
        CallOutcome::Rejected,
        CallOutcome::Cancelled,
        CallOutcome::Fallback,
        CallOutcome::Coalesced,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Success => "success",
            CallOutcome::Failure => "failure",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Panic => "panic",
            CallOutcome::Rejected => "rejected",
            CallOutcome::Cancelled => "cancelled",
            CallOutcome::Fallback => "fallback",
            CallOutcome::Coalesced => "coalesced",
        }
    }
}

/// Why a retry was started, as the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// The attempt returned a retryable error.
    Error,
    /// The attempt timed out.
    Timeout,
}

impl RetryReason {
    /// All values, in label order.
    pub const ALL: [RetryReason; 2] = [RetryReason::Error, RetryReason::Timeout];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RetryReason::Error => "error",
            RetryReason::Timeout => "timeout",
        }
    }

    /// The reason a retry after an attempt that ended `outcome` is counted under.
    pub(crate) fn after(outcome: AttemptOutcome) -> Self {
        if outcome == AttemptOutcome::TimedOut {
            RetryReason::Timeout
        } else {
            RetryReason::Error
        }
    }
}

/// Why a call or retry was refused, as the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The breaker is open, forced open, or half-open with every probe slot taken.
    Open,
    /// The bulkhead is full.
    Overloaded,
    /// A retry was due but the retry budget was spent.
    Budget,
    /// The adaptive throttle refused the call.
    Throttled,
    /// The rate limiter refused the call.
    RateLimited,
}

impl RejectReason {
    /// All values, in label order.
    pub const ALL: [RejectReason; 5] = [
        RejectReason::Open,
        RejectReason::Overloaded,
        RejectReason::Budget,
        RejectReason::Throttled,
        RejectReason::RateLimited,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Open => "open",
            RejectReason::Overloaded => "overloaded",
            RejectReason::Budget => "budget",
            RejectReason::Throttled => "throttled",
            RejectReason::RateLimited => "rate_limited",
        }
    }
}

/// A fault injected on purpose ([fault injection](crate::chaos)), as the `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The attempt was delayed, then ran the operation.
    Latency,
    /// The attempt failed without calling the operation.
    Error,
    /// The attempt never completed (its timeout or the deadline ended it).
    Hang,
}

impl FaultKind {
    /// All values, in label order.
    pub const ALL: [FaultKind; 3] = [FaultKind::Latency, FaultKind::Error, FaultKind::Hang];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Error => "error",
            FaultKind::Hang => "hang",
        }
    }
}

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
    /// Panicked (the operation, its future, or the classifier).
    Panicked,
    /// Dropped by its caller before it ended: the permit is handed back without an outcome.
    Cancelled,
    /// A hedge race's loser, cancelled when another attempt of its call answered: its running
    /// time, at most the hedge delay, is a latency sample (a lower bound of its latency) for the
    /// health window; the breaker counts it as neither success nor failure.
    Superseded,
}

impl AttemptOutcome {
    /// The value of an attempt span's `warden.outcome` ([`spans`](crate::observe::spans)).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Failure => "failure",
            AttemptOutcome::Ignored => "ignored",
            AttemptOutcome::TimedOut => "timeout",
            AttemptOutcome::Panicked => "panic",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Superseded => "superseded",
        }
    }

    /// Whether the attempt failed (its span's status is `ERROR`): it ended without a value,
    /// neither dropped nor beaten by another attempt.
    pub(crate) const fn is_error(self) -> bool {
        !matches!(
            self,
            AttemptOutcome::Success | AttemptOutcome::Cancelled | AttemptOutcome::Superseded
        )
    }
}
