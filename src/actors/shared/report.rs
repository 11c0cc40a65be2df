//! What a caller hands its supervisor without waiting (a [`Report`], through the
//! [hand-off](super::handoff)), and a permit on its way between them ([`HeldPermit`]).
//!
//! Every refusal, answer and attempt a caller sees is reported here and counted by the
//! supervisor alone, in one place (its signal fan-out): the caller's task counts nothing itself.

use std::sync::Arc;
use std::time::Duration;

use super::shadow::Shadow;
use super::Published;
use crate::breaker::Permit;
use crate::criticality::Criticality;
use crate::outcome::{AttemptOutcome, CallOutcome, FaultKind, RejectReason};

/// A duration in whole nanoseconds (at most `u64::MAX`, 584 years): half a [`Duration`], so a
/// [`Report`] fits in 56 bytes and a block of the hand-off's queue (31 reports) in less than
/// 2 KiB, which the allocator zeroes with a vector loop rather than `rep stosb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Nanos(u64);

impl Nanos {
    #[inline]
    pub(crate) fn of(duration: Duration) -> Self {
        Nanos(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
    }

    #[inline]
    pub(crate) fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

/// One attempt to record: its permit, how it ended and how long it took.
#[derive(Debug)]
pub(crate) struct AttemptRecord {
    pub(crate) permit: Permit,
    pub(crate) outcome: AttemptOutcome,
    pub(crate) duration: Nanos,
    /// The call's first attempt: the call is counted into the retry budget with it.
    pub(crate) first: bool,
    /// Calls in flight when the call was admitted, itself included.
    pub(crate) in_flight: u32,
    /// The call's criticality.
    pub(crate) criticality: Criticality,
    /// The policies the attempt is not recorded into (observe-only mode: enforcing, they
    /// would have refused the call or its retry).
    pub(crate) shadow: Shadow,
}

/// What a caller hands over without waiting: an attempt that needs no decision (a success, an
/// ignored final error, a cancelled attempt), a refusal it met, and/or the call's answer.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) attempt: Option<AttemptRecord>,
    /// How the call was answered, and its caller-observed duration. A call answered
    /// [`CallOutcome::Rejected`] was refused for the reason in `refused`.
    pub(crate) answer: Option<(CallOutcome, Nanos)>,
    /// The call, or its retry, was refused before an attempt started (open breaker, throttle,
    /// rate limit, full bulkhead).
    pub(crate) refused: Option<RejectReason>,
    /// The call's criticality (what a refusal is counted under).
    pub(crate) criticality: Criticality,
    /// A fault was injected into one of the call's attempts.
    pub(crate) fault: Option<FaultKind>,
    /// A hedge (not the attempt it hedged) answered the call.
    pub(crate) hedge_won: bool,
}

// See `Nanos`: a queue block of 31 reports (64 bytes a slot) stays below 2 KiB.
const _: () = assert!(std::mem::size_of::<Report>() <= 56);

impl Report {
    /// A call of `criticality` refused for `reason`, answered `answer` (the refusal itself,
    /// or its fallback).
    pub(crate) fn refused(
        reason: RejectReason,
        criticality: Criticality,
        answer: CallOutcome,
    ) -> Self {
        Report {
            refused: Some(reason),
            criticality,
            answer: Some((answer, Nanos::default())),
            ..Report::default()
        }
    }

    /// A call answered `outcome` after `duration`, with nothing else to record.
    pub(crate) fn answered(outcome: CallOutcome, duration: Duration) -> Self {
        Report {
            answer: Some((outcome, Nanos::of(duration))),
            ..Report::default()
        }
    }

    /// An attempt given up without an outcome: its permit goes back.
    pub(crate) fn cancelled(permit: Permit, first: bool, in_flight: u32, shadow: Shadow) -> Self {
        Report {
            attempt: Some(AttemptRecord {
                permit,
                outcome: AttemptOutcome::Cancelled,
                duration: Nanos::default(),
                first,
                in_flight,
                criticality: Criticality::Default,
                shadow,
            }),
            ..Report::default()
        }
    }
}

/// A permit on its way to a caller. If the caller is gone before it takes it (dropped while
/// waiting for the answer, so actix drops the answer), dropping this hands the permit back, so
/// a probe slot is never lost.
#[derive(Debug)]
pub(crate) struct HeldPermit {
    permit: Option<Permit>,
    published: Arc<Published>,
    /// The policies the permit's attempt is a shadow for.
    shadow: Shadow,
}

impl HeldPermit {
    pub(crate) fn new(permit: Permit, published: Arc<Published>) -> Self {
        HeldPermit {
            permit: Some(permit),
            published,
            shadow: Shadow::NONE,
        }
    }

    /// The same permit, of an attempt that is a shadow for `shadow`.
    pub(crate) fn shadow(mut self, shadow: Shadow) -> Self {
        self.shadow = shadow;
        self
    }

    /// The policies the permit's attempt is a shadow for.
    pub(crate) fn shadows(&self) -> Shadow {
        self.shadow
    }

    /// Takes the permit: from now on the caller hands it back.
    pub(crate) fn take(mut self) -> Permit {
        self.permit.take().expect("a held permit is taken once")
    }
}

impl Drop for HeldPermit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.published
                .report(Report::cancelled(permit, false, 0, self.shadow));
        }
    }
}
