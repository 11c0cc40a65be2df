//! The attempt loop: the life of one call, run in the task that awaits it, whichever thread
//! or runtime that is (a [`ServiceHandle`]'s caller, or the supervisor's arbiter for a
//! [`Call`] sent to the supervisor's address). There is no other copy of it.
//!
//! In the seed's order: the **timeout** bounds each attempt (its future is dropped when the
//! attempt's time or the call's deadline runs out), **health** and the **breaker** record
//! every attempt, **retry** wraps them all. What is decided where:
//! - admission reads the state the supervisor publishes: Closed admits here, Open refuses
//!   here, HalfOpen asks the supervisor for a probe permit ([`Admit`]);
//! - a success (or an ignored final error) is handed over without waiting ([`Report`]);
//! - a failed attempt is recorded by the supervisor before the call goes on
//!   ([`AttemptFailed`], one round trip): it decides the retry, its delay and the budget, and
//!   trips the breaker in the order failures are reported;
//! - the backoff sleep runs here.
//!
//! A [coalesced](Call::coalesce) call first looks for a call of its key in flight and waits
//! for its answer ([`coalesce`](super::coalesce)); only a leader enters the loop. With the
//! `fault-injection` feature, an attempt may be given a fault on purpose
//! ([`chaos`](crate::chaos)) and then takes the same path as a real one (timeout, failure
//! report, retry).
//!
//! A call dropped by its caller is cancelled where it stands: the attempt's future is dropped,
//! the bulkhead slot freed, a permit handed back (a probe slot at once) and the call counted
//! `cancelled`. When the supervisor stops, a call in flight is cancelled and answered
//! [`CallError::SupervisorGone`].

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use futures_util::FutureExt;
use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

mod hedge;

use self::hedge::{hedged, Runner};
use super::coalesce::{FlightGuard, Joined};
use super::handle::ServiceHandle;
use super::published::{Admission, Published, SlotGuard};
use crate::breaker::Permit;
use crate::chaos::Fault;
use crate::error::CallError;
use crate::messages::Fallback;
use crate::messages::{
    Admit, AttemptFailed, AttemptRecord, Call, Drain, HeldPermit, Report, RetryDecision,
    RetryQuestion,
};
use crate::outcome::{AttemptOutcome, CallOutcome, RejectReason};

/// The first checks of a call without a fallback, made before the call and its attempt loop
/// are even built: the supervisor is running, and the published state admits the call. The
/// refusal is counted; the admission is handed to [`run`], which does not check again.
pub(crate) fn precheck<E>(handle: &ServiceHandle) -> Result<Prechecked, CallError<E>> {
    if !handle.is_alive() {
        return Err(CallError::SupervisorGone);
    }
    match handle.published.admission() {
        Admission::Refused(retry_after) => {
            tracing::debug!(service = %handle.name, ?retry_after, "call rejected: circuit open");
            Refusal::Open.refuse(&handle.published, CallError::Open { retry_after })
        }
        admission => Ok(Prechecked(admission)),
    }
}

/// A call's first admission, made by [`precheck`].
#[derive(Debug)]
pub(crate) struct Prechecked(Admission);

/// Runs `call` through the supervisor behind `handle`, in the current task; an error goes
/// through the call's fallback, if it has one. A [coalesced](Call::coalesce) call first looks
/// for a call of its key in flight, and waits for that call's answer if there is one.
pub(crate) async fn run<T, E, F, Fut>(
    handle: &ServiceHandle,
    mut call: Call<T, E, F>,
    prechecked: Option<Prechecked>,
) -> Result<T, CallError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut fallback = call.fallback.take();
    let coalesce = call.coalesce.take();
    let mut prechecked = prechecked.map(|Prechecked(admission)| admission);
    if prechecked.is_none() && !handle.is_alive() {
        return Err(CallError::SupervisorGone);
    }
    let published = &handle.published;
    // When a coalesced call started (a follower's duration is timed from it).
    let started = coalesce.as_ref().map(|_| Instant::now());
    // One round for a call; more only for a coalesced call whose leader was cancelled.
    let (admission, slot, flight) = loop {
        if let Some(coalesce) = &coalesce {
            if let Joined::Follow(answer) = coalesce.join(&published.flights, false) {
                match follow(
                    published,
                    answer,
                    &mut fallback,
                    started.unwrap_or_else(Instant::now),
                )
                .await
                {
                    Some(answer) => return answer,
                    None => continue,
                }
            }
        }
        // A call refused while open allocates nothing and takes no slot.
        let admission = match prechecked.take().unwrap_or_else(|| published.admission()) {
            Admission::Refused(retry_after) => {
                tracing::debug!(service = %handle.name, ?retry_after, "call rejected: circuit open");
                let refused = CallError::Open { retry_after };
                return match fallback {
                    None => Refusal::Open.refuse(published, refused),
                    Some(fallback) => {
                        refused_with_fallback(published, refused, fallback, Refusal::Open).await
                    }
                };
            }
            admission => admission,
        };
        // The throttle only sheds calls the breaker admits on its own (closed).
        if matches!(admission, Admission::Local(_)) {
            if let Some(probability) = published.throttled() {
                tracing::debug!(service = %handle.name, probability, "call rejected: throttled");
                let refused = CallError::Throttled { probability };
                return match fallback {
                    None => Refusal::Throttled.refuse(published, refused),
                    Some(fallback) => {
                        refused_with_fallback(published, refused, fallback, Refusal::Throttled)
                            .await
                    }
                };
            }
        }
        match published.acquire_token() {
            Ok(None) => {}
            // A token is reserved for us: wait for it (at most the configured `max_wait`).
            Ok(Some(wait)) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(CallError::NoRuntime { attempts: 0 });
                }
                // A caller that gives up while waiting is counted `cancelled` like any other.
                let waiting = CancelledUnlessDone(published, true);
                tokio::time::sleep(wait).await;
                waiting.done();
            }
            Err(limited) => {
                tracing::debug!(service = %handle.name, retry_after = ?limited.retry_after, "call rejected: rate limited");
                let refused = CallError::RateLimited {
                    retry_after: limited.retry_after,
                };
                return match fallback {
                    None => Refusal::RateLimited.refuse(published, refused),
                    Some(fallback) => {
                        refused_with_fallback(published, refused, fallback, Refusal::RateLimited)
                            .await
                    }
                };
            }
        }
        if published.reports.is_backed_up() {
            // The supervisor is not keeping up with the reports: wait for it to drain them
            // (backpressure) rather than let them pile up.
            if handle.addr.send(Drain).await.is_err() {
                return Err(CallError::SupervisorGone);
            }
        }
        let Some(slot) = published.try_reserve() else {
            tracing::debug!(service = %handle.name, "call rejected: too many in flight");
            return match fallback {
                None => Refusal::Overloaded.refuse(published, CallError::Overloaded),
                Some(fallback) => {
                    refused_with_fallback(
                        published,
                        CallError::Overloaded,
                        fallback,
                        Refusal::Overloaded,
                    )
                    .await
                }
            };
        };
        // With its slot, a coalesced call leads its key's flight, unless another call of the
        // key took a slot first (it then gives its slot back and follows that one).
        let flight = match &coalesce {
            None => None,
            Some(coalesce) => match coalesce.join(&published.flights, true) {
                Joined::Lead(id) => Some(id),
                Joined::Follow(answer) => {
                    drop(slot);
                    match follow(
                        published,
                        answer,
                        &mut fallback,
                        started.unwrap_or_else(Instant::now),
                    )
                    .await
                    {
                        Some(answer) => return answer,
                        None => continue,
                    }
                }
                Joined::Vacant | Joined::Alone => None,
            },
        };
        break (admission, slot, flight);
    };
    let span = tracing::debug_span!(
        "call",
        service = %handle.name,
        call_id = published.next_call_id()
    );
    let mut guard = CallGuard {
        published,
        in_flight: slot.in_flight,
        slot: Some(slot),
        permit: None,
        last_attempt: None,
        started: Instant::now(),
        finished: None,
        outcome: None,
        hedge_won: false,
        answered: false,
    };
    // Declared after the call's guard, so dropped before it: the flight ends (its followers
    // start over) before the slot is given back.
    let flight = flight.and_then(|id| {
        let coalesce = coalesce.as_ref()?;
        Some(FlightGuard::new(&published.flights, coalesce, id))
    });
    let driven = drive(handle, call, admission, &mut guard).instrument(span);
    let answer = until_supervisor_gone(handle, driven).await;
    if let Some(flight) = flight {
        // The followers get the answer itself; each applies its own fallback.
        flight.land(&answer);
    }
    let result = match (answer, fallback) {
        (Err(error), Some(fallback)) => {
            // The slot is not needed to compute a fallback.
            guard.slot = None;
            let attempts = error.attempts();
            let mut outcome = guard.outcome;
            let result = serve_fallback(fallback, error, attempts, &mut outcome).await;
            // With the supervisor gone there is nobody to count it to.
            if guard.outcome.is_some() {
                guard.outcome = outcome;
            }
            result
        }
        (result, _) => result,
    };
    guard.finish();
    result
}

/// A coalesced call waits for its flight's leader: `None` when the leader was cancelled (the
/// call starts over); else the leader's answer, through this call's fallback, if any.
async fn follow<T, E>(
    published: &Arc<Published>,
    answer: oneshot::Receiver<Result<T, CallError<E>>>,
    fallback: &mut Option<Fallback<T, E>>,
    started: Instant,
) -> Option<Result<T, CallError<E>>> {
    let mut follower = Follower {
        published,
        started,
        answered: false,
    };
    let Ok(answer) = answer.await else {
        // Not counted: the call goes on.
        follower.answered = true;
        return None;
    };
    let mut outcome = None;
    let answer = match (answer, fallback.take()) {
        (Err(error), Some(fallback)) => {
            let attempts = error.attempts();
            serve_fallback(fallback, error, attempts, &mut outcome).await
        }
        (answer, _) => answer,
    };
    follower.finish(outcome.unwrap_or(CallOutcome::Coalesced));
    Some(answer)
}

/// A coalesced call waiting for its leader: counted `cancelled` if dropped before its answer.
struct Follower<'a> {
    published: &'a Published,
    started: Instant,
    answered: bool,
}

impl Follower<'_> {
    fn finish(mut self, outcome: CallOutcome) {
        self.answered = true;
        self.published.report(Report {
            answer: Some((outcome, self.started.elapsed())),
            ..Report::default()
        });
    }
}

impl Drop for Follower<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.published.report(Report {
                answer: Some((CallOutcome::Cancelled, self.started.elapsed())),
                ..Report::default()
            });
        }
    }
}

/// Counts the call `cancelled` if dropped before [`done`](Self::done) (a wait before the call
/// has its guard).
struct CancelledUnlessDone<'a>(&'a Published, bool);

impl CancelledUnlessDone<'_> {
    fn done(mut self) {
        self.1 = false;
    }
}

impl Drop for CancelledUnlessDone<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.report(Report {
                answer: Some((CallOutcome::Cancelled, Duration::ZERO)),
                ..Report::default()
            });
        }
    }
}

/// Why a call was refused before it took a slot.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Open,
    Throttled,
    RateLimited,
    Overloaded,
}

impl Refusal {
    /// Answers a call without a fallback with `refused`, counted (no future, no allocation: the
    /// cheapest path there is).
    fn refuse<T, E>(self, published: &Published, refused: CallError<E>) -> Result<T, CallError<E>> {
        self.count(published);
        Err(refused)
    }

    /// Counts the refusal as the call's answer.
    fn count(self, published: &Published) {
        match self {
            Refusal::Open => published.count_fast_rejection(),
            Refusal::Throttled => published.count_throttled(),
            Refusal::RateLimited => published.count_rate_limited(),
            Refusal::Overloaded => published.reject_overloaded(),
        }
    }

    /// Counts the refusal, the call being answered `outcome` by its fallback.
    fn count_answered(self, published: &Published, outcome: CallOutcome) {
        let answer = Some((outcome, Duration::ZERO));
        let reason = match self {
            Refusal::Open => RejectReason::Open,
            Refusal::RateLimited => RejectReason::RateLimited,
            Refusal::Overloaded => RejectReason::Overloaded,
            Refusal::Throttled => {
                // The supervisor counts the throttled request (and its metric) itself.
                return published.report(Report {
                    answer,
                    throttled: true,
                    ..Report::default()
                });
            }
        };
        published.metrics.rejected(reason);
        published.report(Report {
            answer,
            ..Report::default()
        });
    }
}

/// A call refused before it took a slot (open breaker, throttle, rate limit, full bulkhead)
/// that has a fallback: counted as refused unless the fallback answers it.
async fn refused_with_fallback<T, E>(
    published: &Arc<Published>,
    refused: CallError<E>,
    fallback: Fallback<T, E>,
    why: Refusal,
) -> Result<T, CallError<E>> {
    let mut outcome = None;
    let result = serve_fallback(fallback, refused, 0, &mut outcome).await;
    match outcome {
        // Answered by the fallback, or its panic.
        Some(outcome) => why.count_answered(published, outcome),
        // The fallback passed the refusal on.
        None => why.count(published),
    }
    result
}

/// Runs the fallback on `error`; sets `outcome` to `Fallback` when it produced a value, or to
/// `Panic` when it panicked (answered `Panicked`).
async fn serve_fallback<T, E>(
    fallback: Fallback<T, E>,
    error: CallError<E>,
    attempts: u32,
    outcome: &mut Option<CallOutcome>,
) -> Result<T, CallError<E>> {
    let panicked = |payload| CallError::Panicked {
        message: format!("fallback panicked: {}", panic_message(payload)),
        attempts,
    };
    let future = match std::panic::catch_unwind(AssertUnwindSafe(move || fallback(error))) {
        Ok(future) => future,
        Err(payload) => {
            *outcome = Some(CallOutcome::Panic);
            return Err(panicked(payload));
        }
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(value)) => {
            *outcome = Some(CallOutcome::Fallback);
            Ok(value)
        }
        Ok(Err(error)) => Err(error),
        Err(payload) => {
            *outcome = Some(CallOutcome::Panic);
            Err(panicked(payload))
        }
    }
}

/// `call`, unless the supervisor goes away first: then the call (and the attempt in flight)
/// is dropped and answered `SupervisorGone`. The watch is only set up if the call has to wait,
/// so a call that is done at its first poll pays nothing for it.
async fn until_supervisor_gone<T, E>(
    handle: &ServiceHandle,
    call: impl Future<Output = Result<T, CallError<E>>>,
) -> Result<T, CallError<E>> {
    let mut call = pin!(call);
    let mut gone: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(answer) = call.as_mut().poll(cx) {
            return Poll::Ready(answer);
        }
        let gone = gone.get_or_insert_with(|| Box::pin(handle.stopped()));
        match gone.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(CallError::SupervisorGone)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The attempt loop. Leaves in `guard` what is still to report: the last attempt (when the
/// supervisor was not asked about it) and how the call ended (`None`: nobody to count it to).
async fn drive<T, E, F, Fut>(
    handle: &ServiceHandle,
    mut call: Call<T, E, F>,
    first_admission: Admission,
    guard: &mut CallGuard<'_>,
) -> Result<T, CallError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let published = &handle.published;
    let settings = published.settings();
    // A call that must not run twice ([`Call::no_retry`]) has one attempt whatever the policy.
    let max_attempts = if call.no_retry {
        1
    } else {
        settings.max_attempts
    };
    let started = guard.started;
    let deadline = settings.deadline.map(|d| started + d);
    let mut admission = Some(first_admission);
    // A call that must not run twice is never hedged, even when every call is.
    let hedgeable =
        settings.max_hedges > 0 && !call.no_retry && (call.idempotent || settings.hedge_all_calls);
    let mut attempts = 0u32;
    let mut previous_delay = Duration::ZERO;
    // While a retry waits for admission: the failure it retries.
    let mut retrying: Option<Last<E>> = None;
    loop {
        let refused = match admission.take().unwrap_or_else(|| published.admission()) {
            Admission::Local(permit) => Ok(permit),
            Admission::Refused(retry_after) => Err(retry_after),
            Admission::AskSupervisor => match handle.addr.send(Admit).await {
                Err(_) => return Err(CallError::SupervisorGone),
                Ok(Ok(held)) => Ok(held.take()),
                Ok(Err(rejected)) => Err(rejected.retry_after),
            },
        };
        let permit = match (refused, retrying.take()) {
            (Ok(permit), _) => permit,
            (Err(retry_after), None) => {
                return guard.answer(Err(CallError::Open { retry_after }), CallOutcome::Rejected)
            }
            // The breaker opened while the retry waited: the attempts made still count.
            (Err(retry_after), Some(last)) => {
                published.metrics.rejected(RejectReason::Open);
                let (error, answer) = last.circuit_opened(attempts, retry_after);
                return guard.answer(Err(error), answer);
            }
        };
        attempts += 1;
        let attempt_started = if attempts == 1 {
            started
        } else {
            Instant::now()
        };
        let span = tracing::debug_span!("attempt", attempt = attempts);
        // A probe (half-open) is never hedged.
        let hedge_delay = (hedgeable && !permit.is_probe())
            .then(|| published.hedge_delay())
            .flatten();
        let (attempt, attempt_started) = match hedge_delay {
            None => {
                guard.permit = Some((permit, attempts == 1));
                let limit = time_limit(settings.timeout, deadline, attempt_started);
                let attempt_deadline = limit.map(|limit| attempt_started + limit);
                let attempt = start_attempt(&mut call, published, attempt_deadline)
                    .instrument(span)
                    .await;
                (attempt, attempt_started)
            }
            Some(delay) => {
                let first = Runner::new(permit, attempts == 1, attempt_started, false);
                // Boxed: a call that is not hedged keeps its future as small as before.
                Box::pin(hedged(
                    handle, &mut call, guard, first, attempts, deadline, delay,
                ))
                .instrument(span)
                .await
            }
        };
        let finished = Instant::now();
        let duration = finished - attempt_started;
        let deadline_passed = deadline.is_some_and(|d| finished >= d);

        let (outcome, failure, retry_after) = match attempt {
            Attempt::Value(value) => return guard.succeed(value, duration, finished),
            Attempt::NoRuntime => {
                guard.cancel_attempt();
                return guard.answer(
                    Err(CallError::NoRuntime { attempts }),
                    CallOutcome::Cancelled,
                );
            }
            Attempt::Panicked(message) => (
                AttemptOutcome::Panicked,
                Failure::Final(
                    CallError::Panicked { message, attempts },
                    CallOutcome::Panic,
                ),
                None,
            ),
            Attempt::TimedOut if deadline_passed => (
                AttemptOutcome::TimedOut,
                Failure::Final(
                    CallError::DeadlineExceeded { attempts },
                    CallOutcome::Timeout,
                ),
                None,
            ),
            Attempt::TimedOut => (
                AttemptOutcome::TimedOut,
                Failure::Retryable(Last::TimedOut),
                None,
            ),
            // A transient breaker failure, as an error the classifier would pass.
            Attempt::Injected => (
                AttemptOutcome::Failure,
                Failure::Retryable(Last::Injected),
                None,
            ),
            Attempt::Error(error) => classify(&call, error, attempts),
            Attempt::Classified(outcome, failure, retry_after) => (outcome, failure, retry_after),
        };
        // The call ends here whatever the supervisor says: not retryable, or no attempt left.
        let last = match failure {
            Failure::Final(error, answer) => {
                return guard
                    .end_with_failure(handle, outcome, duration, retry_after, Err(error), answer)
                    .await;
            }
            Failure::Retryable(last) if attempts >= max_attempts => {
                let (error, answer) = match last {
                    // With retries switched off, an error is simply the operation's failure.
                    Last::Error(error) if attempts == 1 => {
                        (CallError::Failed { error, attempts }, CallOutcome::Failure)
                    }
                    last => last.into_answer(attempts, |last, attempts| {
                        CallError::RetriesExhausted { last, attempts }
                    }),
                };
                return guard
                    .end_with_failure(handle, outcome, duration, retry_after, Err(error), answer)
                    .await;
            }
            Failure::Retryable(last) => last,
        };

        let question = RetryQuestion {
            attempts_made: attempts,
            previous_delay,
            deadline_left: deadline.map(|d| d.saturating_duration_since(finished)),
        };
        let decision = match guard
            .ask(handle, outcome, duration, retry_after, Some(question))
            .await
        {
            Some(decision) => decision,
            None => return Err(CallError::SupervisorGone),
        };
        let delay = match decision {
            RetryDecision::RetryAfter(delay) => delay,
            RetryDecision::Recorded | RetryDecision::Exhausted => {
                let (error, answer) = last.into_answer(attempts, |last, attempts| {
                    CallError::RetriesExhausted { last, attempts }
                });
                return guard.answer(Err(error), answer);
            }
            RetryDecision::Budget => {
                let (error, answer) = last.into_answer(attempts, |last, attempts| {
                    CallError::BudgetExhausted { last, attempts }
                });
                return guard.answer(Err(error), answer);
            }
            RetryDecision::Open(retry_after) => {
                let (error, answer) = last.circuit_opened(attempts, retry_after);
                return guard.answer(Err(error), answer);
            }
            RetryDecision::Deferred(retry_after) => {
                let (error, answer) =
                    last.into_answer(attempts, |last, attempts| CallError::RetryDeferred {
                        last,
                        attempts,
                        retry_after,
                    });
                return guard.answer(Err(error), answer);
            }
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return guard.answer(
                Err(CallError::NoRuntime { attempts }),
                CallOutcome::Cancelled,
            );
        }
        tokio::time::sleep(delay).await;
        previous_delay = delay;
        retrying = Some(last);
    }
}

/// Classifies an attempt's error with the call's classifier (a panicking classifier answers
/// the call `Panicked`): how the breaker records the attempt, how the call goes on, and the
/// dependency's retry-after hint.
fn classify<T, E, F>(
    call: &Call<T, E, F>,
    error: E,
    attempts: u32,
) -> (AttemptOutcome, Failure<E>, Option<Duration>) {
    match std::panic::catch_unwind(AssertUnwindSafe(|| call.class_of(&error))) {
        Err(payload) => (
            AttemptOutcome::Panicked,
            Failure::Final(
                CallError::Panicked {
                    message: format!("classifier panicked: {}", panic_message(payload)),
                    attempts,
                },
                CallOutcome::Panic,
            ),
            None,
        ),
        Ok(class) => {
            let outcome = if class.breaker_failure {
                AttemptOutcome::Failure
            } else {
                AttemptOutcome::Ignored
            };
            let failure = if class.retryable {
                Failure::Retryable(Last::Error(error))
            } else {
                Failure::Final(CallError::Failed { error, attempts }, CallOutcome::Failure)
            };
            (outcome, failure, class.retry_after)
        }
    }
}

/// How a failed attempt leaves the call.
enum Failure<E> {
    /// The call is answered with this error (and counted with this outcome).
    Final(CallError<E>, CallOutcome),
    /// A retry may follow.
    Retryable(Last<E>),
}

/// The last retryable failure, kept to build the answer when retrying stops.
enum Last<E> {
    Error(E),
    TimedOut,
    /// An error injected on purpose (fault injection): there is no `E` to keep.
    Injected,
}

impl<E> Last<E> {
    /// The answer when the breaker refuses the retry: the attempts made and the last error are
    /// kept (a timeout is counted as one).
    fn circuit_opened(
        self,
        attempts: u32,
        retry_after: Option<Duration>,
    ) -> (CallError<E>, CallOutcome) {
        let (last, outcome) = match self {
            Last::Error(error) => (Some(error), CallOutcome::Failure),
            Last::TimedOut => (None, CallOutcome::Timeout),
            Last::Injected => (None, CallOutcome::Failure),
        };
        let error = CallError::CircuitOpened {
            last,
            attempts,
            retry_after,
        };
        (error, outcome)
    }

    /// The answer when retrying stops: a timeout stays a timeout, an injected error is
    /// answered as one.
    fn into_answer(
        self,
        attempts: u32,
        with_error: impl FnOnce(E, u32) -> CallError<E>,
    ) -> (CallError<E>, CallOutcome) {
        match self {
            Last::Error(error) => (with_error(error, attempts), CallOutcome::Failure),
            Last::TimedOut => (CallError::TimedOut { attempts }, CallOutcome::Timeout),
            Last::Injected => (CallError::Injected { attempts }, CallOutcome::Failure),
        }
    }
}

/// What a call in flight holds: its bulkhead slot and the permit of the attempt running, and
/// what is still to report. [`finish`](Self::finish) hands the call's last report over; if the
/// call is dropped before, dropping the guard hands the permit back and counts the call
/// `cancelled`.
struct CallGuard<'a> {
    published: &'a Arc<Published>,
    slot: Option<SlotGuard>,
    /// Calls in flight when this one was admitted, itself included.
    in_flight: u32,
    /// The running attempt's permit, and whether it is the call's first attempt.
    permit: Option<(Permit, bool)>,
    /// The last attempt, when it is reported with the answer.
    last_attempt: Option<AttemptRecord>,
    started: Instant,
    /// When the last attempt ended, if that is when the call was answered.
    finished: Option<Instant>,
    /// How the call was answered; `None` when there is nobody to count it to.
    outcome: Option<CallOutcome>,
    /// A hedge answered the call with its value.
    hedge_won: bool,
    answered: bool,
}

impl CallGuard<'_> {
    fn record(&mut self, outcome: AttemptOutcome, duration: Duration) -> Option<AttemptRecord> {
        let in_flight = self.in_flight;
        self.permit.take().map(|(permit, first)| AttemptRecord {
            permit,
            outcome,
            duration,
            first,
            in_flight,
        })
    }

    /// The attempt succeeded: its record goes with the answer.
    fn succeed<T, E>(
        &mut self,
        value: T,
        duration: Duration,
        finished: Instant,
    ) -> Result<T, CallError<E>> {
        self.last_attempt = self.record(AttemptOutcome::Success, duration);
        self.finished = Some(finished);
        self.outcome = Some(CallOutcome::Success);
        Ok(value)
    }

    /// Answers the call with `result`, counted as `outcome`.
    fn answer<T, E>(
        &mut self,
        result: Result<T, CallError<E>>,
        outcome: CallOutcome,
    ) -> Result<T, CallError<E>> {
        self.outcome = Some(outcome);
        result
    }

    /// The attempt was abandoned without an outcome (nothing to time it with).
    fn cancel_attempt(&mut self) {
        if let Some(record) = self.record(AttemptOutcome::Cancelled, Duration::ZERO) {
            self.published.report(Report {
                attempt: Some(record),
                ..Report::default()
            });
        }
    }

    /// The last attempt failed and the call ends with `result`: a failure the breaker counts is
    /// recorded by the supervisor before the caller has its answer (so trips are exact); an
    /// ignored error is handed over with the answer.
    async fn end_with_failure<T, E>(
        &mut self,
        handle: &ServiceHandle,
        outcome: AttemptOutcome,
        duration: Duration,
        retry_after: Option<Duration>,
        result: Result<T, CallError<E>>,
        answer: CallOutcome,
    ) -> Result<T, CallError<E>> {
        if outcome == AttemptOutcome::Ignored {
            self.last_attempt = self.record(outcome, duration);
            return self.answer(result, answer);
        }
        if self
            .ask(handle, outcome, duration, retry_after, None)
            .await
            .is_none()
        {
            return Err(CallError::SupervisorGone);
        }
        self.answer(result, answer)
    }

    /// Records the failed attempt with the supervisor, asking `retry` if given. `None` when the
    /// supervisor is gone.
    async fn ask(
        &mut self,
        handle: &ServiceHandle,
        outcome: AttemptOutcome,
        duration: Duration,
        retry_after: Option<Duration>,
        retry: Option<RetryQuestion>,
    ) -> Option<RetryDecision> {
        let (permit, first) = self.permit.take()?;
        let message = AttemptFailed {
            permit: HeldPermit::new(permit, Arc::clone(self.published)),
            outcome,
            duration,
            first,
            in_flight: self.in_flight,
            retry_after,
            retry,
        };
        handle.addr.send(message).await.ok()
    }

    /// Hands over the call's last report: its last attempt if not recorded yet, and its answer
    /// (nothing when the supervisor is gone).
    fn finish(mut self) {
        // The slot comes back before the answer is counted.
        self.slot = None;
        self.answered = true;
        let Some(outcome) = self.outcome else {
            return;
        };
        let call_duration = match self.finished {
            Some(finished) => finished - self.started,
            None => self.started.elapsed(),
        };
        self.published.report(Report {
            attempt: self.last_attempt.take(),
            answer: Some((outcome, call_duration)),
            hedge_won: self.hedge_won,
            ..Report::default()
        });
    }
}

impl Drop for CallGuard<'_> {
    /// Counts the call `cancelled` when it is dropped before its answer.
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let attempt = self
            .record(AttemptOutcome::Cancelled, Duration::ZERO)
            .or_else(|| self.last_attempt.take());
        self.slot = None;
        self.published.report(Report {
            attempt,
            answer: Some((CallOutcome::Cancelled, self.started.elapsed())),
            ..Report::default()
        });
    }
}

/// How one attempt ended.
enum Attempt<T, E> {
    Value(T),
    Error(E),
    TimedOut,
    Panicked(String),
    /// It had to wait for a timer, but no tokio runtime is there to time it.
    NoRuntime,
    /// It failed with an error injected on purpose, without calling the operation.
    Injected,
    /// An error already classified (a hedge race classifies the errors of attempts that end
    /// while another attempt still runs).
    Classified(AttemptOutcome, Failure<E>, Option<Duration>),
}

/// Starts one attempt of `call`, to run until it ends or `deadline` passes: the operation
/// under its time limit ([`run_attempt`]), or, while faults are injected and one is drawn for
/// it, the fault ([`injected_attempt`]). The returned future does not borrow `call`, so
/// several attempts of one call can run at once (hedging).
fn start_attempt<T, E, F, Fut>(
    call: &mut Call<T, E, F>,
    published: &Published,
    deadline: Option<Instant>,
) -> impl Future<Output = Attempt<T, E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match published.fault() {
        None => Either::Left(run_attempt(call, deadline)),
        Some(fault) => {
            published.report(Report {
                fault: Some(fault.kind()),
                ..Report::default()
            });
            // Only a latency that ends before the time limit runs the operation (its future
            // is made now, and polled once the latency has passed).
            let now = Instant::now();
            let runs = match fault {
                Fault::Latency(latency) => deadline.is_none_or(|d| now + latency < d),
                Fault::Error | Fault::Hang => false,
            };
            let operation = runs.then(|| run_attempt(call, deadline));
            // Boxed: it only runs while faults are injected, and the call's future stays as
            // small as without it.
            Either::Right(Box::pin(injected_attempt(operation, deadline, fault)))
        }
    }
}

/// An attempt given a fault on purpose ([fault injection](crate::chaos)): an error fails it
/// without calling the operation; a latency delays it, then runs `operation` (the operation's
/// future, made when the attempt started); a hang never completes. The time limit runs from
/// the attempt's start throughout, so a hang, or a latency reaching it, ends as a timeout.
async fn injected_attempt<T, E, Fut>(
    operation: Option<Timed<Fut>>,
    deadline: Option<Instant>,
    fault: Fault,
) -> Attempt<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    tracing::debug!(kind = fault.kind().as_str(), "fault injected");
    let delay = match fault {
        Fault::Error => return Attempt::Injected,
        Fault::Hang => None,
        Fault::Latency(latency) => Some(latency),
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return Attempt::NoRuntime;
    }
    let resume = delay.map(|delay| Instant::now() + delay);
    if let Some(deadline) = deadline {
        if resume.is_none_or(|resume| resume >= deadline) {
            tokio::time::sleep_until(deadline).await;
            return Attempt::TimedOut;
        }
    }
    match (resume, operation) {
        (Some(resume), Some(operation)) => {
            tokio::time::sleep_until(resume).await;
            operation.await
        }
        // A hang without a time limit is refused by the configuration; were one to slip
        // through, the call would wait until its caller drops it.
        _ => std::future::pending().await,
    }
}

/// Invokes the operation and runs its future until it ends or `deadline` passes, catching a
/// panic in either. On timeout the future is dropped, which cancels it.
fn run_attempt<T, E, F, Fut>(call: &mut Call<T, E, F>, deadline: Option<Instant>) -> Timed<Fut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let operation = &mut call.operation;
    let (future, panicked) = match std::panic::catch_unwind(AssertUnwindSafe(operation)) {
        Ok(future) => (Some(future), None),
        Err(payload) => (None, Some(panic_message(payload))),
    };
    Timed {
        future,
        panicked,
        timer: None,
        deadline,
    }
}

pin_project! {
    /// An attempt's future under its time limit. The timer is only set up once the future has
    /// returned `Pending`: an operation that is done at its first poll never touches it.
    struct Timed<Fut> {
        #[pin]
        future: Option<Fut>,
        panicked: Option<String>,
        #[pin]
        timer: Option<Sleep>,
        deadline: Option<Instant>,
    }
}

impl<T, E, Fut> Future for Timed<Fut>
where
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Attempt<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempt<T, E>> {
        let mut this = self.project();
        if let Some(message) = this.panicked.take() {
            return Poll::Ready(Attempt::Panicked(message));
        }
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(Attempt::Panicked("attempt polled after its end".into()));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(Ok(value))) => return Poll::Ready(Attempt::Value(value)),
            Ok(Poll::Ready(Err(error))) => return Poll::Ready(Attempt::Error(error)),
            Ok(Poll::Pending) => {}
            Err(payload) => {
                // A future that panicked is never polled again.
                this.future.set(None);
                return Poll::Ready(Attempt::Panicked(panic_message(payload)));
            }
        }
        let Some(deadline) = *this.deadline else {
            return Poll::Pending;
        };
        if this.timer.is_none() {
            if tokio::runtime::Handle::try_current().is_err() {
                return Poll::Ready(Attempt::NoRuntime);
            }
            this.timer.set(Some(tokio::time::sleep_until(deadline)));
        }
        match this.timer.as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Attempt::TimedOut),
            _ => Poll::Pending,
        }
    }
}

/// The tighter of the per-attempt timeout and the time left before the deadline.
fn time_limit(
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    now: Instant,
) -> Option<Duration> {
    let left = deadline.map(|d| d.saturating_duration_since(now));
    match (timeout, left) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    }
}

pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}
