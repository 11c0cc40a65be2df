//! A call's spans ([`spans`] names them): the call's own and one per attempt, hedges included,
//! and the one place the caller's side writes to them — the attributes known late, recorded
//! when the call or the attempt ends, and the events only the caller sees ([`note`]). What the
//! supervisor decides for the call is reported by its signal fan-out, inside the span that
//! asked (the span travels with the question: [`AttemptFailed`], [`Admit`], [`Hedge`]).
//!
//! Both spans are `debug`, under the target [`TARGET`]. When nobody is interested in them they
//! are [`Span::none`] and everything here is one check of that: nothing is read, recorded or
//! allocated.
//!
//! [`AttemptFailed`]: crate::actors::supervisor::AttemptFailed
//! [`Admit`]: crate::actors::supervisor::Admit
//! [`Hedge`]: crate::actors::supervisor::Hedge

use std::time::Duration;

use tokio::time::Instant;
use tracing::field::Empty;
use tracing::Span;

use crate::actors::handle::ServiceHandle;
use crate::actors::shared::rate_limit::Token;
use crate::actors::shared::Published;
use crate::actors::supervisor::RetryDecision;
use crate::error::CallError;
use crate::observe::spans;
use crate::outcome::{AttemptOutcome, CallOutcome, RetryReason};

/// The target of the call and attempt spans and of the caller's events.
pub(crate) const TARGET: &str = "warden::call";

/// A call's span, and how the call was counted. Dropped before [`end`](Self::end) (the
/// caller dropped the call), it records the call `cancelled`.
pub(super) struct CallTrace {
    span: Span,
    outcome: Option<CallOutcome>,
    ended: bool,
}

impl CallTrace {
    /// Opens the span of a call to `handle`'s service.
    #[inline]
    pub(super) fn start(handle: &ServiceHandle) -> Self {
        let span = tracing::debug_span!(
            target: TARGET,
            "call",
            { spans::OTEL_NAME } = spans::CALL_SPAN,
            { spans::OTEL_KIND } = spans::KIND_CLIENT,
            { spans::SERVICE } = &*handle.name,
            { spans::CALL_ID } = handle.published.next_call_id() as i64,
            { spans::BREAKER_STATE } = Empty,
            { spans::DEADLINE_MS } = Empty,
            { spans::OUTCOME } = Empty,
            { spans::ERROR_TYPE } = Empty,
            { spans::OTEL_STATUS_CODE } = Empty,
        );
        CallTrace {
            span,
            outcome: None,
            ended: false,
        }
    }

    pub(super) fn span(&self) -> &Span {
        &self.span
    }

    /// The call passes the breaker's gate: the state it was admitted (or refused) in.
    #[inline]
    pub(super) fn admitted(&self, published: &Published) {
        if !self.span.is_disabled() {
            breaker_state(&self.span, published);
        }
    }

    /// The call's deadline, once known (`now`: when the call started).
    #[inline]
    pub(super) fn deadline(&self, deadline: Option<Instant>, now: Instant) {
        if !self.span.is_disabled() {
            deadline_ms(&self.span, deadline, now);
        }
    }

    /// How the call is counted (when it is: not when the supervisor is gone).
    #[inline]
    pub(super) fn counted(&mut self, outcome: CallOutcome) {
        self.outcome = Some(outcome);
    }

    /// The call's answer: its outcome, and on an error the error's kind and the status.
    #[inline]
    pub(super) fn end<T, E>(&mut self, answer: &Result<T, CallError<E>>) {
        self.ended = true;
        if self.span.is_disabled() {
            return;
        }
        let outcome = self.outcome.unwrap_or(match answer {
            Ok(_) => CallOutcome::Success,
            // Nobody counted it: the supervisor is gone, or no runtime was there to wait in.
            Err(_) => CallOutcome::Cancelled,
        });
        self.span.record(spans::OUTCOME, outcome.as_str());
        if let Err(error) = answer {
            self.span.record(spans::ERROR_TYPE, error.kind());
            self.span
                .record(spans::OTEL_STATUS_CODE, spans::STATUS_ERROR);
        }
    }

    /// A call refused before it started (supervisor gone, breaker open): its span opened,
    /// recorded and closed at once.
    #[cold]
    pub(super) fn refused<T, E>(
        handle: &ServiceHandle,
        outcome: Option<CallOutcome>,
        answer: &Result<T, CallError<E>>,
    ) {
        let mut trace = CallTrace::start(handle);
        if let Some(outcome) = outcome {
            trace.admitted(&handle.published);
            trace.counted(outcome);
        }
        trace.end(answer);
    }
}

impl Drop for CallTrace {
    fn drop(&mut self) {
        if !self.ended && !self.span.is_disabled() {
            self.span
                .record(spans::OUTCOME, CallOutcome::Cancelled.as_str());
        }
    }
}

/// An attempt's span, a child of its call's. Dropped before it [ended](Self::ended) (its call
/// was dropped), it records the attempt `cancelled`.
#[derive(Debug)]
pub(super) struct AttemptSpan {
    span: Span,
    ended: bool,
}

impl AttemptSpan {
    /// Opens the span of attempt `number` of the call traced by `call` (a hedge of it when
    /// `hedge`), admitted and started now.
    #[inline]
    pub(super) fn start(
        call: &Span,
        number: u32,
        hedge: bool,
        published: &Published,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Self {
        let span = tracing::debug_span!(
            target: TARGET,
            parent: call,
            "attempt",
            { spans::OTEL_NAME } = spans::ATTEMPT_SPAN,
            { spans::OTEL_KIND } = spans::KIND_CLIENT,
            { spans::ATTEMPT } = i64::from(number),
            { spans::HEDGE } = hedge,
            { spans::BREAKER_STATE } = Empty,
            { spans::DEADLINE_MS } = Empty,
            { spans::OUTCOME } = Empty,
            { spans::RETRY_REASON } = Empty,
            { spans::OTEL_STATUS_CODE } = Empty,
        );
        if !span.is_disabled() {
            breaker_state(&span, published);
            deadline_ms(&span, deadline, now);
        }
        AttemptSpan { span, ended: false }
    }

    pub(super) fn span(&self) -> &Span {
        &self.span
    }

    /// The attempt ended `outcome`.
    #[inline]
    pub(super) fn ended(&mut self, outcome: AttemptOutcome) {
        self.ended = true;
        if self.span.is_disabled() {
            return;
        }
        self.span.record(spans::OUTCOME, outcome.as_str());
        if outcome.is_error() {
            self.span
                .record(spans::OTEL_STATUS_CODE, spans::STATUS_ERROR);
        }
    }

    /// The supervisor's decision after the attempt (which ended `outcome`) failed.
    #[inline]
    pub(super) fn decided(&self, decision: RetryDecision, outcome: AttemptOutcome) {
        if self.span.is_disabled() {
            return;
        }
        let reason = match decision {
            RetryDecision::RetryAfter(_) => RetryReason::after(outcome).as_str(),
            RetryDecision::Stop(stop) => stop.as_str(),
        };
        self.span.record(spans::RETRY_REASON, reason);
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        if !self.ended {
            self.ended(AttemptOutcome::Cancelled);
        }
    }
}

/// What only the caller's side sees happen to a call: an event in the call's span (the
/// current one, wherever the call runs).
#[derive(Debug, Clone, Copy)]
pub(super) enum Note {
    /// The call waits for its rate-limit token (`None`: for a fleet's lease, of unknown length).
    RateLimitWait(Option<Duration>),
    /// The fallback answered in place of an error of this [kind](CallError::kind).
    FallbackServed(&'static str),
}

/// Emits `note` in the current span (see [`Note`]).
#[inline]
pub(super) fn note(note: Note) {
    match note {
        Note::RateLimitWait(wait) => tracing::debug!(
            target: TARGET,
            message = spans::EVENT_RATE_LIMIT_WAIT,
            wait_ms = wait.map(spans::millis)
        ),
        Note::FallbackServed(replaced) => tracing::debug!(
            target: TARGET,
            message = spans::EVENT_FALLBACK_SERVED,
            { spans::ERROR_TYPE } = replaced
        ),
    }
}

/// A call that must wait for its rate-limit token (`token`) says so in its span.
#[inline]
pub(super) fn waiting(token: Option<&Token>) {
    if let Some(token) = token.filter(|token| token.must_wait()) {
        note(Note::RateLimitWait(token.wait()));
    }
}

fn breaker_state(span: &Span, published: &Published) {
    if let Some(state) = published.admission.state() {
        span.record(spans::BREAKER_STATE, state.as_str());
    }
}

fn deadline_ms(span: &Span, deadline: Option<Instant>, now: Instant) {
    if let Some(deadline) = deadline {
        span.record(
            spans::DEADLINE_MS,
            spans::millis(deadline.saturating_duration_since(now)),
        );
    }
}
