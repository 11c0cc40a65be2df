//! Crate-internal traffic between a call running in its caller's task and the supervisor that
//! decides for it. The success path sends no message: its [`Report`] goes through the
//! hand-off, drained in batches. A failed attempt asks ([`AttemptFailed`], one round trip),
//! and so does a half-open admission ([`Admit`]), so trips, retries, the budget and probes stay
//! decided in one place.

use std::sync::Arc;
use std::time::Duration;

use actix::Message;

use crate::actors::Published;
use crate::breaker::{Permit, Rejected};
use crate::outcome::{AttemptOutcome, CallOutcome, FaultKind};

/// One attempt to record: its permit, how it ended and how long it took.
#[derive(Debug)]
pub(crate) struct AttemptRecord {
    pub(crate) permit: Permit,
    pub(crate) outcome: AttemptOutcome,
    pub(crate) duration: Duration,
    /// The call's first attempt: the call is counted into the retry budget with it.
    pub(crate) first: bool,
    /// Calls in flight when the call was admitted, itself included.
    pub(crate) in_flight: u32,
}

/// What a caller hands over without waiting: an attempt that needs no decision (a success, an
/// ignored final error, a cancelled attempt) and/or the call's answer.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) attempt: Option<AttemptRecord>,
    /// How the call was answered, and its caller-observed duration.
    pub(crate) answer: Option<(CallOutcome, Duration)>,
    /// The adaptive throttle refused the call (counted as a request the dependency did not
    /// accept); `answer` is `None` unless a fallback answered it.
    pub(crate) throttled: bool,
    /// A fault was injected into one of the call's attempts.
    pub(crate) fault: Option<FaultKind>,
    /// A hedge (not the attempt it hedged) answered the call.
    pub(crate) hedge_won: bool,
}

/// Wakes the supervisor to drain the reports (sent at most once per batch window).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

/// An attempt failed: record it (after draining what is pending, so the breaker sees outcomes
/// in the order they were reported) and, if `retry` asks, decide whether and when to retry.
#[derive(Debug, Message)]
#[rtype(result = "RetryDecision")]
pub(crate) struct AttemptFailed {
    /// The attempt's permit: handed back if the message is dropped undelivered.
    pub(crate) permit: HeldPermit,
    pub(crate) outcome: AttemptOutcome,
    pub(crate) duration: Duration,
    /// The call's first attempt.
    pub(crate) first: bool,
    /// Calls in flight when the call was admitted, itself included.
    pub(crate) in_flight: u32,
    /// The dependency's retry-after hint carried by the error (through the classifier).
    pub(crate) retry_after: Option<Duration>,
    /// `None` when the call ends with this attempt whatever the supervisor says (not
    /// retryable, the last allowed attempt, the deadline passed): it is only recorded.
    pub(crate) retry: Option<RetryQuestion>,
}

/// What the supervisor needs to decide a retry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryQuestion {
    pub(crate) attempts_made: u32,
    pub(crate) previous_delay: Duration,
    /// Time left before the call's deadline, if it has one.
    pub(crate) deadline_left: Option<Duration>,
}

/// The supervisor's answer to [`AttemptFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Only recorded: the call ends here.
    Recorded,
    /// Sleep this long, then admit the retry like any attempt.
    RetryAfter(Duration),
    /// No attempts left (or the hint/deadline leaves no room).
    Exhausted,
    /// The retry budget is spent.
    Budget,
    /// The breaker is (forced) open and will still be when the delay ends.
    Open(Option<Duration>),
    /// The dependency asked to wait this long, more than the policy's `max_delay`.
    Deferred(Duration),
}

/// A call asks to hedge an attempt that has not answered within the hedge delay: the
/// supervisor admits the hedge only while the breaker is closed (or disabled) and the retry
/// budget has room, and counts it. Answered with the hedge's permit, or `None`.
#[derive(Debug, Message)]
#[rtype(result = "Option<HeldPermit>")]
pub(crate) struct Hedge {
    /// How long the hedged attempt had been running.
    pub(crate) after: Duration,
    /// Which hedge of the attempt this is (1 = the first).
    pub(crate) hedge: u32,
}

/// Admission through the supervisor (HalfOpen, or an open period that just ended).
#[derive(Debug, Message)]
#[rtype(result = "Result<HeldPermit, Rejected>")]
pub(crate) struct Admit;

/// A permit on its way to a caller. If the caller is gone before it takes it (dropped while
/// waiting for the answer, so actix drops the answer), dropping this hands the permit back, so
/// a probe slot is never lost.
#[derive(Debug)]
pub(crate) struct HeldPermit {
    permit: Option<Permit>,
    published: Arc<Published>,
}

impl HeldPermit {
    pub(crate) fn new(permit: Permit, published: Arc<Published>) -> Self {
        HeldPermit {
            permit: Some(permit),
            published,
        }
    }

    /// Takes the permit: from now on the caller hands it back.
    pub(crate) fn take(mut self) -> Permit {
        self.permit.take().expect("a held permit is taken once")
    }
}

impl Drop for HeldPermit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.published.report(Report {
                attempt: Some(AttemptRecord {
                    permit,
                    outcome: AttemptOutcome::Cancelled,
                    duration: Duration::ZERO,
                    first: false,
                    in_flight: 0,
                }),
                ..Report::default()
            });
        }
    }
}
