//! The supervisor's private protocol: what a call running in its caller's task asks the
//! supervisor that decides for it. The success path sends no message (its
//! [`Report`](crate::actors::shared::report::Report) goes through the hand-off, drained in
//! batches). A failed attempt asks ([`AttemptFailed`], one round trip), and so do a half-open
//! admission ([`Admit`]) and a hedge ([`Hedge`]), so trips, retries, the budget and probes stay
//! decided in one place. None of it is public: actix users send the
//! [`messages`](crate::messages).

use std::time::Duration;

use actix::Message;
use tracing::Span;

use crate::actors::shared::report::HeldPermit;
use crate::breaker::Rejected;
use crate::outcome::AttemptOutcome;

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
    /// The call's criticality.
    pub(crate) criticality: crate::criticality::Criticality,
    /// The dependency's retry-after hint carried by the error (through the classifier).
    pub(crate) retry_after: Option<Duration>,
    /// `None` when the call ends with this attempt whatever the supervisor says (not
    /// retryable, a panic, the deadline passed): it is only recorded.
    pub(crate) retry: Option<RetryQuestion>,
    /// The attempt's span: what the supervisor reports while it handles the failure (a
    /// transition, the retry) is reported inside it.
    pub(crate) span: Cause,
}

/// The span a question comes from (a failed attempt's, a call's): the supervisor reports what
/// it does about the question inside it. Boxed, and only while the span is enabled, so that
/// a question — and the caller's future, which holds it while it is asked — grows by one word.
#[derive(Debug)]
pub(crate) struct Cause(Option<Box<Span>>);

impl Cause {
    /// `span` as a question's cause.
    #[inline]
    pub(crate) fn of(span: &Span) -> Self {
        Cause((!span.is_disabled()).then(|| Box::new(span.clone())))
    }

    /// Enters the span, if there is one, until the guard is dropped.
    #[inline]
    pub(crate) fn enter(&self) -> Option<tracing::span::Entered<'_>> {
        self.0.as_deref().map(Span::enter)
    }
}

/// What the supervisor needs to decide a retry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryQuestion {
    pub(crate) attempts_made: u32,
    pub(crate) previous_delay: Duration,
    /// Time left before the call's deadline, if it has one.
    pub(crate) deadline_left: Option<Duration>,
    /// The call must not run twice ([`Call::no_retry`](crate::messages::Call::no_retry)).
    pub(crate) no_retry: bool,
}

/// The supervisor's answer to [`AttemptFailed`]: the one place a retry is decided. The
/// caller turns a [`Stop`] into its answer without deciding anything again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Sleep this long, then admit the retry like any attempt.
    RetryAfter(Duration),
    /// The breaker only observes, and would have stopped the retry (open now and when the
    /// delay ends; counted `would_reject` by the supervisor): sleep this long, then retry
    /// without asking the breaker, a shadow for it from now on.
    ShadowRetryAfter(Duration),
    /// No retry: the call ends with its last failure, for this reason.
    Stop(Stop),
}

/// Why the supervisor sends no retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Only recorded: the caller said the call ends here (a failure no retry can mend).
    Final,
    /// No attempts left.
    Exhausted,
    /// The next delay would end after the call's deadline.
    NoTimeLeft,
    /// The retry budget is spent.
    Budget,
    /// The breaker is (forced) open and will still be when the delay ends, or it refused the
    /// retry's admission.
    Open(Option<Duration>),
    /// The dependency asked to wait this long, more than the policy's `max_delay`.
    Deferred(Duration),
}

impl Stop {
    /// The reason's name, as a failed attempt's span records it
    /// ([`RETRY_REASONS`](crate::observe::spans::RETRY_REASONS)).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Stop::Final => "not_retryable",
            Stop::Exhausted => "exhausted",
            Stop::NoTimeLeft => "deadline",
            Stop::Budget => "budget",
            Stop::Open(_) => "breaker_open",
            Stop::Deferred(_) => "deferred",
        }
    }
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
    /// The call's span: the hedge is reported inside it.
    pub(crate) span: Cause,
}

/// Admission through the supervisor (HalfOpen, or an open period that just ended).
#[derive(Debug, Message)]
#[rtype(result = "Result<HeldPermit, Rejected>")]
pub(crate) struct Admit {
    /// The call's span: a transition the admission causes is reported inside it.
    pub(crate) span: Cause,
}
