//! The attempt loop: admission, one attempt (hedged, if the call may be), the failure recorded
//! by the supervisor with its retry decision, the backoff sleep here. There is no other copy
//! of it: a call made through a handle and a [`Call`] sent to the supervisor's address both
//! run it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::answer::{classify, Failure, Last};
use super::attempt::{start_attempt, time_limit, Attempt};
use super::guard::CallGuard;
use super::hedge::{hedged, Runner};
use super::trace::{AttemptSpan, CallSpan, InSpan};
use crate::actors::handle::ServiceHandle;
use crate::actors::shared::admission::{shadow_permit, Admission};
use crate::actors::shared::shadow::Shadow;
use crate::actors::shared::Published;
use crate::actors::supervisor::{Admit, Cause, RetryDecision, RetryQuestion, Stop};
use crate::breaker::BreakerState;
use crate::error::CallError;
use crate::messages::Call;
use crate::outcome::{AttemptOutcome, CallOutcome, RejectReason};

/// Runs the attempts of `call`, each in its span under the call's (`trace`). Leaves in
/// `guard` what is still to report: the last attempt (when the supervisor was not asked about
/// it) and how the call ended (`None`: nobody to count it to).
pub(super) async fn drive<T, E, F, Fut>(
    handle: &ServiceHandle,
    call: &mut Call<T, E, F>,
    first_admission: Admission,
    guard: &mut CallGuard<'_>,
    trace: &CallSpan,
) -> Result<T, CallError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let published = &handle.published;
    let settings = published.settings.load();
    let started = guard.started;
    // The sooner of the supervisor's deadline and the one the call inherits (`Deadline`).
    let deadline = crate::deadline::call_deadline(settings.deadline, started);
    trace.deadline(deadline, started);
    let mut admission = Some(first_admission);
    // A call that must not run twice is never hedged, even when every call is.
    let hedgeable =
        settings.max_hedges > 0 && !call.no_retry && (call.idempotent || settings.hedge_all_calls);
    let mut attempts = 0u32;
    let mut previous_delay = Duration::ZERO;
    // While a retry waits for admission: the failure it retries.
    let mut retrying: Option<Last<E>> = None;
    loop {
        // No attempt starts that cannot end before the deadline: it has passed (before the
        // first attempt, or while a retry waited for its admission).
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let error = CallError::DeadlineExceeded {
                attempts,
                last: retrying.take().and_then(Last::into_error),
            };
            return guard.answer(Err(error), CallOutcome::Timeout);
        }
        // A shadow for the breaker (observe-only mode) does not ask it again: enforcing, the
        // breaker would never have seen the call.
        let admission = admission.take().unwrap_or_else(|| {
            if guard.shadow.breaker() {
                Admission::Shadow
            } else {
                published.admission.admit()
            }
        });
        let admitted = match admission {
            Admission::Local(permit) => Ok(permit),
            Admission::Refused(retry_after) => Err(retry_after),
            Admission::AskSupervisor => {
                let span = Cause::of(trace.span());
                match handle.addr.send(Admit { span }).await {
                    Err(_) => return Err(CallError::SupervisorGone),
                    Ok(Ok(held)) => Ok(held.take()),
                    Ok(Err(rejected)) => Err(rejected.retry_after),
                }
            }
            // Even a shadow stops at a breaker an operator forced open.
            Admission::Shadow if forced_open(published) => Err(None),
            Admission::Shadow => Ok(shadow_permit()),
        };
        let admitted = match admitted {
            // The breaker only observes: the attempt goes ahead, a shadow for it.
            Err(retry_after)
                if !guard.shadow.breaker()
                    && published.observing.load().breaker()
                    && !forced_open(published) =>
            {
                tracing::debug!(?retry_after, "circuit open, observed: attempt let through");
                published.would_reject(RejectReason::Open, guard.criticality);
                guard.shadow.insert(Shadow::BREAKER);
                Ok(shadow_permit())
            }
            admitted => admitted,
        };
        let permit = match admitted {
            Ok(permit) => permit,
            Err(retry_after) => {
                guard.refused(RejectReason::Open);
                return match retrying.take() {
                    None => {
                        guard.answer(Err(CallError::Open { retry_after }), CallOutcome::Rejected)
                    }
                    // The breaker opened while the retry waited: the attempts made still count.
                    Some(last) => {
                        let (error, answer) = last.answer(attempts, Stop::Open(retry_after));
                        guard.answer(Err(error), answer)
                    }
                };
            }
        };
        attempts += 1;
        let attempt_started = if attempts == 1 {
            started
        } else {
            Instant::now()
        };
        let mut span =
            AttemptSpan::start(trace, attempts, false, published, deadline, attempt_started);
        // A probe (half-open) is never hedged.
        let hedge_delay = (hedgeable && !permit.is_probe())
            .then(|| published.hedge_delay())
            .flatten();
        let (attempt, attempt_started) = match hedge_delay {
            None => {
                guard.permit = Some((permit, attempts == 1));
                let limit = time_limit(settings.timeout, deadline, attempt_started);
                let attempt_deadline = limit.map(|limit| attempt_started + limit);
                let attempt =
                    InSpan::new(&span, start_attempt(call, published, attempt_deadline)).await;
                (attempt, attempt_started)
            }
            Some(delay) => {
                let first = Runner::new(permit, attempts == 1, attempt_started, false, span.take());
                // Boxed: a call that is not hedged keeps its future as small as before.
                let (attempt, started, decisive) = Box::pin(hedged(
                    handle, call, guard, first, attempts, deadline, delay, trace,
                ))
                .await;
                // The decisive attempt's span (a hedge's, when one decided the race).
                span = decisive;
                (attempt, started)
            }
        };
        let finished = Instant::now();
        let duration = finished - attempt_started;
        let deadline_passed = deadline.is_some_and(|d| finished >= d);

        let (outcome, failure, retry_after) = match attempt {
            Attempt::Value(value) => {
                span.ended(AttemptOutcome::Success);
                return guard.succeed(value, duration, attempt_started, finished);
            }
            Attempt::NoRuntime => {
                span.ended(AttemptOutcome::Cancelled);
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
                    CallError::DeadlineExceeded {
                        attempts,
                        last: None,
                    },
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
            Attempt::Error(error) => classify(call, error, attempts),
            Attempt::Classified(outcome, failure, retry_after) => (outcome, failure, retry_after),
        };
        span.ended(outcome);
        // Boxed: the failure path (the supervisor's record and decision, the backoff) is no part
        // of the future of a call whose attempt succeeds, which stays as small as before.
        let next = Box::pin(failed(
            handle,
            call.no_retry,
            guard,
            span,
            (outcome, failure, retry_after),
            attempts,
            (duration, finished),
            deadline,
            previous_delay,
        ))
        .await;
        match next {
            Next::Answer(answer) => return answer,
            Next::Retry(last, delay) => {
                previous_delay = delay;
                retrying = Some(last);
            }
        }
    }
}

/// What follows a failed attempt: the call's answer, or a retry (of the failure kept) after
/// the backoff, slept.
enum Next<T, E> {
    Answer(Result<T, CallError<E>>),
    Retry(Last<E>, Duration),
}

/// After attempt `attempts` of a call failed (`how`: its outcome, how it leaves the call, the
/// dependency's retry-after hint; `timing`: its duration and when it ended; `no_retry`: the call
/// must not be retried), in its `span`:
/// the supervisor records the failure and decides — retry after a delay (slept here), or stop
/// (and why). Nothing of that decision is made again here.
#[allow(clippy::too_many_arguments)]
async fn failed<T, E>(
    handle: &ServiceHandle,
    no_retry: bool,
    guard: &mut CallGuard<'_>,
    span: AttemptSpan,
    how: (AttemptOutcome, Failure<E>, Option<Duration>),
    attempts: u32,
    timing: (Duration, Instant),
    deadline: Option<Instant>,
    previous_delay: Duration,
) -> Next<T, E> {
    let (outcome, failure, retry_after) = how;
    let (duration, finished) = timing;
    let last = match failure {
        // The call ends here whatever the supervisor says.
        Failure::Final(error, answer) => {
            let stop = if matches!(error, CallError::DeadlineExceeded { .. }) {
                Stop::NoTimeLeft
            } else {
                Stop::Final
            };
            span.decided(RetryDecision::Stop(stop), outcome);
            // The span is done with: only the supervisor's report goes inside it.
            let cause = span.into_cause();
            let answer = guard
                .end_with_failure(
                    handle,
                    outcome,
                    duration,
                    retry_after,
                    Err(error),
                    answer,
                    cause,
                )
                .await;
            return Next::Answer(answer);
        }
        Failure::Retryable(last) => last,
    };
    let question = RetryQuestion {
        attempts_made: attempts,
        previous_delay,
        deadline_left: deadline.map(|d| d.saturating_duration_since(finished)),
        no_retry,
    };
    let Some(decision) = guard
        .ask(
            handle,
            outcome,
            duration,
            retry_after,
            Some(question),
            Cause::of(span.span()),
        )
        .await
    else {
        return Next::Answer(Err(CallError::SupervisorGone));
    };
    span.decided(decision, outcome);
    let delay = match decision {
        RetryDecision::RetryAfter(delay) => delay,
        RetryDecision::ShadowRetryAfter(delay) => {
            // The breaker only observes and would have stopped this retry: from now on the
            // call is a shadow for it.
            guard.shadow.insert(Shadow::BREAKER);
            delay
        }
        RetryDecision::Stop(stop) => {
            let (error, answer) = last.answer(attempts, stop);
            return Next::Answer(guard.answer(Err(error), answer));
        }
    };
    // The attempt's span ends with the decision, before the backoff.
    drop(span);
    if tokio::runtime::Handle::try_current().is_err() {
        return Next::Answer(guard.answer(
            Err(CallError::NoRuntime { attempts }),
            CallOutcome::Cancelled,
        ));
    }
    tokio::time::sleep(delay).await;
    Next::Retry(last, delay)
}

/// Whether an operator forced the breaker open: then it refuses even while it only observes.
fn forced_open(published: &Published) -> bool {
    published.admission.state() == Some(BreakerState::ForcedOpen)
}
