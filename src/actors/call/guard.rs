//! What a call in flight holds — its bulkhead slot and the permit of the attempt running —
//! and what is still to report. [`CallGuard::finish`] hands the call's last report over; if
//! the call is dropped before, dropping the guard hands the permit back and counts the call
//! `cancelled`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::actors::handle::ServiceHandle;
use crate::actors::shared::bulkhead::SlotGuard;
use crate::actors::shared::report::{AttemptRecord, HeldPermit, Nanos, Report};
use crate::actors::shared::shadow::Shadow;
use crate::actors::shared::Published;
use crate::actors::supervisor::{AttemptFailed, Cause, RetryDecision, RetryQuestion};
use crate::breaker::Permit;
use crate::criticality::Criticality;
use crate::error::CallError;
use crate::outcome::{AttemptOutcome, CallOutcome, RejectReason};

/// A call in flight (see the module docs).
pub(super) struct CallGuard<'a> {
    pub(super) published: &'a Arc<Published>,
    pub(super) slot: Option<SlotGuard<'a>>,
    /// Calls in flight when this one was admitted, itself included.
    pub(super) in_flight: u32,
    /// The call's criticality.
    pub(super) criticality: Criticality,
    /// The running attempt's permit, and whether it is the call's first attempt.
    pub(super) permit: Option<(Permit, bool)>,
    /// The last attempt, when it is reported with the answer.
    last_attempt: Option<AttemptRecord>,
    pub(super) started: Instant,
    /// How long the call took, if it was answered when its last attempt ended.
    took: Option<Duration>,
    /// How the call was answered; `None` when there is nobody to count it to.
    pub(super) outcome: Option<CallOutcome>,
    /// The call's retry (or first attempt) was refused by the breaker.
    refused: Option<RejectReason>,
    /// A hedge answered the call with its value.
    pub(super) hedge_won: bool,
    /// The policies the call is a shadow for (observe-only mode): its attempts are not
    /// recorded into them.
    pub(super) shadow: Shadow,
    answered: bool,
}

impl<'a> CallGuard<'a> {
    #[inline]
    pub(super) fn new(published: &'a Arc<Published>, slot: SlotGuard<'a>, shadow: Shadow) -> Self {
        let shadow = if slot.over_limit {
            shadow.with(Shadow::LIMIT)
        } else {
            shadow
        };
        CallGuard {
            published,
            shadow,
            in_flight: slot.in_flight,
            criticality: slot.criticality,
            slot: Some(slot),
            permit: None,
            last_attempt: None,
            started: Instant::now(),
            took: None,
            outcome: None,
            refused: None,
            hedge_won: false,
            answered: false,
        }
    }

    #[inline]
    fn record(&mut self, outcome: AttemptOutcome, duration: Duration) -> Option<AttemptRecord> {
        let (in_flight, criticality, shadow) = (self.in_flight, self.criticality, self.shadow);
        self.permit.take().map(|(permit, first)| AttemptRecord {
            permit,
            outcome,
            duration: Nanos::of(duration),
            first,
            in_flight,
            criticality,
            shadow,
        })
    }

    /// The attempt that started at `attempt_started` succeeded at `finished`, after
    /// `duration`: its record goes with the answer. The call's first attempt times the call
    /// too (it started with the call).
    #[inline(always)]
    pub(super) fn succeed<T, E>(
        &mut self,
        value: T,
        duration: Duration,
        attempt_started: Instant,
        finished: Instant,
    ) -> Result<T, CallError<E>> {
        self.last_attempt = self.record(AttemptOutcome::Success, duration);
        self.took = Some(if attempt_started == self.started {
            duration
        } else {
            finished - self.started
        });
        self.outcome = Some(CallOutcome::Success);
        Ok(value)
    }

    /// Answers the call with `result`, counted as `outcome`.
    pub(super) fn answer<T, E>(
        &mut self,
        result: Result<T, CallError<E>>,
        outcome: CallOutcome,
    ) -> Result<T, CallError<E>> {
        self.outcome = Some(outcome);
        result
    }

    /// An attempt of the call was refused for `reason` (reported with the answer).
    pub(super) fn refused(&mut self, reason: RejectReason) {
        self.refused = Some(reason);
    }

    /// The attempt was abandoned without an outcome (nothing to time it with).
    pub(super) fn cancel_attempt(&mut self) {
        if let Some(record) = self.record(AttemptOutcome::Cancelled, Duration::ZERO) {
            self.published.report(Report {
                attempt: Some(record),
                ..Report::default()
            });
        }
    }

    /// The last attempt failed and the call ends with `result`: a failure the breaker counts is
    /// recorded by the supervisor before the caller has its answer (so trips are exact); an
    /// ignored error is handed over with the answer. `cause`: the attempt's span.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn end_with_failure<T, E>(
        &mut self,
        handle: &ServiceHandle,
        outcome: AttemptOutcome,
        duration: Duration,
        retry_after: Option<Duration>,
        result: Result<T, CallError<E>>,
        answer: CallOutcome,
        cause: Cause,
    ) -> Result<T, CallError<E>> {
        if outcome == AttemptOutcome::Ignored {
            self.last_attempt = self.record(outcome, duration);
            return self.answer(result, answer);
        }
        if self
            .ask(handle, outcome, duration, retry_after, None, cause)
            .await
            .is_none()
        {
            return Err(CallError::SupervisorGone);
        }
        self.answer(result, answer)
    }

    /// Records the failed attempt with the supervisor, asking `retry` if given; the supervisor
    /// reports what it does inside `cause`, the attempt's span. `None` when the supervisor is gone.
    pub(super) async fn ask(
        &mut self,
        handle: &ServiceHandle,
        outcome: AttemptOutcome,
        duration: Duration,
        retry_after: Option<Duration>,
        retry: Option<RetryQuestion>,
        cause: Cause,
    ) -> Option<RetryDecision> {
        let (permit, first) = self.permit.take()?;
        let message = AttemptFailed {
            permit: HeldPermit::new(permit, Arc::clone(self.published)).shadow(self.shadow),
            outcome,
            duration,
            first,
            in_flight: self.in_flight,
            criticality: self.criticality,
            retry_after,
            retry,
            span: cause,
        };
        handle.addr.send(message).await.ok()
    }

    /// Hands over the call's last report: its last attempt if not recorded yet, and its answer
    /// (nothing when the supervisor is gone).
    #[inline(always)]
    pub(super) fn finish(mut self) {
        // The slot comes back before the answer is counted.
        self.slot = None;
        self.answered = true;
        let Some(outcome) = self.outcome else {
            return;
        };
        let call_duration = match self.took {
            Some(took) => took,
            None => self.started.elapsed(),
        };
        self.published.report(Report {
            attempt: self.last_attempt.take(),
            answer: Some((outcome, Nanos::of(call_duration))),
            refused: self.refused,
            criticality: self.criticality,
            hedge_won: self.hedge_won,
            ..Report::default()
        });
    }
}

impl Drop for CallGuard<'_> {
    /// Counts the call `cancelled` when it is dropped before its answer.
    #[inline]
    fn drop(&mut self) {
        if !self.answered {
            self.cancelled();
        }
    }
}

impl CallGuard<'_> {
    /// The call was dropped before its answer: counted `cancelled`, its permit handed back.
    #[cold]
    #[inline(never)]
    fn cancelled(&mut self) {
        let attempt = self
            .record(AttemptOutcome::Cancelled, Duration::ZERO)
            .or_else(|| self.last_attempt.take());
        self.slot = None;
        self.published.report(Report {
            attempt,
            answer: Some((CallOutcome::Cancelled, Nanos::of(self.started.elapsed()))),
            refused: self.refused,
            criticality: self.criticality,
            ..Report::default()
        });
    }
}
