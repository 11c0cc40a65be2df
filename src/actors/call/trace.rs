//! A call's spans ([`spans`] names them): the call's own ([`CallSpan`], entered around the
//! call's future by [`Traced`]) and one per attempt, hedges included ([`AttemptSpan`]); and the
//! one place the caller's side writes to them — the attributes known late, recorded when the
//! call or the attempt ends, and the events only the caller sees ([`note`]). What the
//! supervisor decides for the call is reported by its signal fan-out, inside the span that
//! asked (the span travels with the question: [`AttemptFailed`], [`Admit`], [`Hedge`]).
//!
//! Both spans are `debug`, under the target [`TARGET`]. When nobody is interested in them they
//! are `None` (one word in the call's future) and everything here is one check of that:
//! nothing is read, recorded or allocated. An enabled span is boxed (the call's shared), so
//! the call's future is as small with spans as without.
//!
//! [`AttemptFailed`]: crate::actors::supervisor::AttemptFailed
//! [`Admit`]: crate::actors::supervisor::Admit
//! [`Hedge`]: crate::actors::supervisor::Hedge

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::subscriber::NoSubscriber;
use tracing::Span;

use crate::actors::handle::ServiceHandle;
use crate::actors::shared::rate_limit::Token;
use crate::actors::shared::Published;
use crate::actors::supervisor::{Cause, RetryDecision};
use crate::error::CallError;
use crate::observe::spans;
use crate::outcome::{AttemptOutcome, CallOutcome, RetryReason};

/// The target of the call and attempt spans and of the caller's events.
pub(crate) const TARGET: &str = "warden::call";

/// A disabled span, for the spans that are off.
static NONE: Span = Span::none();

/// A call's span: shared (the call's future enters it, its attempts are children of it), and
/// one word, `None`, while it is disabled.
#[derive(Debug, Clone)]
pub(super) struct CallSpan(Option<Arc<Span>>);

impl CallSpan {
    /// Opens the span of a call to `handle`'s service.
    #[inline(always)]
    pub(super) fn start(handle: &ServiceHandle) -> Self {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            Self::open(handle)
        } else {
            CallSpan(None)
        }
    }

    #[inline(never)]
    fn open(handle: &ServiceHandle) -> Self {
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
        // A callsite every subscriber always wants opens a span on a thread without one too,
        // with the no-op subscriber: not worth a box.
        let real = !span.is_disabled()
            && !tracing::dispatcher::get_default(|dispatch| dispatch.is::<NoSubscriber>());
        CallSpan(real.then(|| Arc::new(span)))
    }

    /// The span (a disabled one while it is off).
    pub(super) fn span(&self) -> &Span {
        self.0.as_deref().unwrap_or(&NONE)
    }

    /// The call passes the breaker's gate: the state it was admitted (or refused) in.
    #[inline]
    pub(super) fn admitted(&self, published: &Published) {
        if let Some(span) = &self.0 {
            breaker_state(span, published);
        }
    }

    /// The call's deadline, once known (`now`: when the call started).
    #[inline]
    pub(super) fn deadline(&self, deadline: Option<Instant>, now: Instant) {
        if let Some(span) = &self.0 {
            deadline_ms(span, deadline, now);
        }
    }

    /// The call was answered `answer`, counted `outcome` (`None`: nobody counted it, the
    /// supervisor being gone or no runtime there to wait in).
    fn end<T, E>(&self, answer: &Result<T, CallError<E>>, outcome: Option<CallOutcome>) {
        if let Some(span) = &self.0 {
            record_end(span, outcome, answer.as_ref().err().map(CallError::kind));
        }
    }

    /// A call refused before it started, with an error of kind `error` (supervisor gone,
    /// breaker open; counted `outcome`): its span opened, recorded and closed at once. Nothing
    /// when `debug` is off.
    #[inline(always)]
    pub(super) fn refused(
        handle: &ServiceHandle,
        outcome: Option<CallOutcome>,
        error: &'static str,
    ) {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            Self::refused_traced(handle, outcome, error);
        }
    }

    #[cold]
    #[inline(never)]
    fn refused_traced(handle: &ServiceHandle, outcome: Option<CallOutcome>, error: &'static str) {
        let call = CallSpan::open(handle);
        if let Some(span) = &call.0 {
            if outcome.is_some() {
                breaker_state(span, &handle.published);
            }
            record_end(span, outcome, Some(error));
        }
    }
}

/// Records how a call ended: counted `outcome` (`None`: nobody counted it), failed with an
/// error of kind `error`: its outcome, and on an error the error's kind and the status.
fn record_end(span: &Span, outcome: Option<CallOutcome>, error: Option<&'static str>) {
    let outcome = outcome.unwrap_or(match error {
        None => CallOutcome::Success,
        Some(_) => CallOutcome::Cancelled,
    });
    span.record(spans::OUTCOME, outcome.as_str());
    if let Some(kind) = error {
        span.record(spans::ERROR_TYPE, kind);
        span.record(spans::OTEL_STATUS_CODE, spans::STATUS_ERROR);
    }
}

pin_project! {
    /// An attempt's future inside its span (borrowed: nothing cloned, nothing to drop).
    pub(super) struct InSpan<'a, F> {
        span: &'a AttemptSpan,
        #[pin]
        future: F,
    }
}

impl<'a, F> InSpan<'a, F> {
    #[inline]
    pub(super) fn new(span: &'a AttemptSpan, future: F) -> Self {
        InSpan { span, future }
    }
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.0.as_deref().map(|open| open.span.enter());
        this.future.poll(cx)
    }
}

/// A call's answer and how it was counted (`None`: nobody counted it).
pub(super) type Counted<T, E> = (Result<T, CallError<E>>, Option<CallOutcome>);

pin_project! {
    /// A call's future inside its span: entered while it is polled, ended with its answer and
    /// how it was counted; dropped before its answer (the caller dropped the call), it ends
    /// the span `cancelled`.
    pub(crate) struct Traced<F> {
        span: CallSpan,
        #[pin]
        future: F,
        answered: bool,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (false, Some(span)) = (*this.answered, &this.span.0) {
                span.record(spans::OUTCOME, CallOutcome::Cancelled.as_str());
            }
        }
    }
}

impl<F> Traced<F> {
    /// `future` (a call's answer and how it was counted) inside `span`.
    #[inline]
    pub(super) fn new(span: CallSpan, future: F) -> Self {
        Traced {
            span,
            future,
            answered: false,
        }
    }
}

impl<T, E, F> Future for Traced<F>
where
    F: Future<Output = Counted<T, E>>,
{
    type Output = Result<T, CallError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.0.as_deref().map(Span::enter);
        let (answer, outcome) = ready!(this.future.poll(cx));
        *this.answered = true;
        this.span.end(&answer, outcome);
        Poll::Ready(answer)
    }
}

/// An attempt's span, a child of its call's: one word, `None`, while it is disabled. Dropped
/// before it [ended](Self::ended) (its call was dropped), it records the attempt `cancelled`.
#[derive(Debug)]
pub(super) struct AttemptSpan(Option<Box<OpenAttempt>>);

#[derive(Debug)]
struct OpenAttempt {
    span: Span,
    ended: bool,
}

impl AttemptSpan {
    /// Opens the span of attempt `number` of the call traced by `call` (a hedge of it when
    /// `hedge`), admitted and started now.
    #[inline(always)]
    pub(super) fn start(
        call: &CallSpan,
        number: u32,
        hedge: bool,
        published: &Published,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Self {
        match &call.0 {
            // (Both spans have the same level and target.)
            None => AttemptSpan(None),
            Some(call) => Self::open(call, number, hedge, published, deadline, now),
        }
    }

    #[inline(never)]
    fn open(
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
        if span.is_disabled() {
            return AttemptSpan(None);
        }
        breaker_state(&span, published);
        deadline_ms(&span, deadline, now);
        AttemptSpan(Some(Box::new(OpenAttempt { span, ended: false })))
    }

    /// The span (a disabled one while it is off).
    pub(super) fn span(&self) -> &Span {
        self.0.as_ref().map_or(&NONE, |open| &open.span)
    }

    /// The span as the cause of the supervisor's report about the attempt, which has ended.
    pub(super) fn into_cause(mut self) -> Cause {
        match self.0.take() {
            Some(open) => Cause::of(&open.span),
            None => Cause::of(&NONE),
        }
    }

    /// The span, leaving a disabled one in its place.
    pub(super) fn take(&mut self) -> Self {
        AttemptSpan(self.0.take())
    }

    /// The attempt ended `outcome`.
    #[inline]
    pub(super) fn ended(&mut self, outcome: AttemptOutcome) {
        if let Some(open) = &mut self.0 {
            open.ended = true;
            open.span.record(spans::OUTCOME, outcome.as_str());
            if outcome.is_error() {
                open.span
                    .record(spans::OTEL_STATUS_CODE, spans::STATUS_ERROR);
            }
        }
    }

    /// The supervisor's decision after the attempt (which ended `outcome`) failed.
    #[inline]
    pub(super) fn decided(&self, decision: RetryDecision, outcome: AttemptOutcome) {
        if let Some(open) = &self.0 {
            let reason = match decision {
                RetryDecision::RetryAfter(_) | RetryDecision::ShadowRetryAfter(_) => {
                    RetryReason::after(outcome).as_str()
                }
                RetryDecision::Stop(stop) => stop.as_str(),
            };
            open.span.record(spans::RETRY_REASON, reason);
        }
    }
}

impl Drop for AttemptSpan {
    #[inline]
    fn drop(&mut self) {
        if self.0.as_ref().is_some_and(|open| !open.ended) {
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

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use crate::actors::supervisor::Stop;
    use crate::observe::spans::RETRY_REASONS;
    use crate::outcome::RetryReason;

    #[test]
    fn every_stop_has_a_documented_retry_reason_and_none_is_a_retry_reason() {
        let stops = [
            Stop::Final,
            Stop::Exhausted,
            Stop::NoTimeLeft,
            Stop::Budget,
            Stop::Open(None),
            Stop::Deferred(Duration::ZERO),
        ];
        let names: HashSet<&str> = stops.iter().map(|stop| stop.as_str()).collect();
        assert_eq!(names, RETRY_REASONS.into_iter().collect());
        for reason in RetryReason::ALL {
            assert!(!names.contains(reason.as_str()));
        }
    }
}
