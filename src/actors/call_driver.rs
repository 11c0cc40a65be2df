//! The life of one call after admission: attempts under a timeout (the future is dropped when
//! it passes), panics caught, each failed attempt reported to the supervisor which decides on
//! the retry, backoff sleeps, re-admission, and one answer. When the supervisor stops (or its
//! arbiter dies) the call is cancelled at once and answered `SupervisorGone`.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix::Addr;
use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::published::SlotGuard;
use super::supervisor::ServiceSupervisor;
use crate::breaker::Permit;
use crate::error::CallError;
use crate::messages::{
    AdmitRetry, AttemptFailed, AttemptOutcome, Call, Operation, RecordOutcome, RetryDecision,
};
use crate::observe::CallOutcome;

/// What a call needs from its supervisor.
#[derive(Debug)]
pub(crate) struct CallContext {
    pub(crate) addr: Addr<ServiceSupervisor>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    /// Attempts allowed in all (the retry policy's `max_attempts`): after the last one the call
    /// is answered without asking the supervisor about a retry.
    pub(crate) max_attempts: u32,
    /// The service name and the call's number, for the call's tracing span.
    pub(crate) service: Arc<str>,
    pub(crate) call_id: u64,
    /// Closed when the supervisor is dropped (stopped or its arbiter gone).
    pub(crate) supervisor_alive: watch::Receiver<()>,
}

/// How one attempt ended.
pub(crate) enum Attempt<T, E> {
    Value(T),
    Error(E),
    TimedOut,
    Panicked(String),
}

/// The last retryable failure, kept to build the answer when retrying stops.
enum LastFailure<E> {
    Error(E),
    TimedOut,
}

/// The first attempt of a call, started by the supervisor in its handler (see
/// [`start_first_attempt`]).
pub(crate) enum FirstAttempt<T, E> {
    /// Its future, polled once, not finished yet.
    Running(Operation<T, E>),
    /// It finished at its first poll (or its closure panicked), at `finished`.
    Finished {
        attempt: Attempt<T, E>,
        finished: Instant,
    },
}

/// Invokes the operation and polls its future once, catching a panic in either. Most
/// operations that complete without waiting (a cache hit, an in-memory answer) finish here, and
/// the supervisor answers them without spawning a task.
///
/// The poll uses a no-op waker: a future still pending is polled again, first thing, by the
/// task [`run_call`] runs in, which registers the real waker; a wake-up in between is not lost
/// because that poll observes whatever happened.
pub(crate) fn start_first_attempt<T, E>(
    call: &mut Call<T, E>,
) -> Result<Attempt<T, E>, Operation<T, E>> {
    let mut future = match invoke(call) {
        Ok(future) => future,
        Err(attempt) => return Ok(attempt),
    };
    let mut cx = Context::from_waker(Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(Ok(value))) => Ok(Attempt::Value(value)),
        Ok(Poll::Ready(Err(error))) => Ok(Attempt::Error(error)),
        Ok(Poll::Pending) => Err(future),
        Err(payload) => Ok(Attempt::Panicked(panic_message(payload))),
    }
}

/// Runs `call` from its first admitted attempt, started at `started`, to its answer, inside a
/// `call` span (service, call id). Holds the bulkhead `slot` until the answer is ready. If the
/// supervisor goes away first, the call (and the operation's future) is dropped and answered
/// [`CallError::SupervisorGone`]: nobody is left to record it, and an operation must not keep
/// running against a dependency nobody supervises.
pub(crate) fn run_call<T, E>(
    context: CallContext,
    call: Call<T, E>,
    first_permit: Permit,
    started: Instant,
    first: FirstAttempt<T, E>,
    slot: SlotGuard,
) -> impl std::future::Future<Output = Result<T, CallError<E>>> {
    let span = tracing::debug_span!("call", service = %context.service, call_id = context.call_id);
    let mut alive = context.supervisor_alive.clone();
    let gone = async move {
        // Nothing is ever sent: this ends when the sender (the supervisor) is dropped.
        while alive.changed().await.is_ok() {}
    };
    let call = drive_call(context, call, first_permit, started, first, slot);
    async move {
        tokio::select! {
            biased;
            answer = call => answer,
            () = gone => Err(CallError::SupervisorGone),
        }
    }
    .instrument(span)
}

async fn drive_call<T, E>(
    context: CallContext,
    mut call: Call<T, E>,
    first_permit: Permit,
    started: Instant,
    first: FirstAttempt<T, E>,
    slot: SlotGuard,
) -> Result<T, CallError<E>> {
    let deadline = context.deadline.map(|d| started + d);
    let mut permit = first_permit;
    let mut attempts = 0u32;
    let mut previous_delay = Duration::ZERO;
    let mut first = Some(first);
    let answer = loop {
        attempts += 1;
        let (attempt_started, attempt, finished) = match first.take() {
            Some(FirstAttempt::Finished { attempt, finished }) => (started, attempt, finished),
            running => {
                // The first attempt, still pending from the handler's poll, or a new one.
                let (attempt_started, future) = match running {
                    Some(FirstAttempt::Running(future)) => (started, Ok(future)),
                    _ => (Instant::now(), invoke(&mut call)),
                };
                let attempt = match future {
                    Ok(future) => {
                        let limit = time_limit(context.timeout, deadline, attempt_started);
                        finish_attempt(future, limit.map(|limit| attempt_started + limit))
                            .instrument(tracing::debug_span!("attempt", attempt = attempts))
                            .await
                    }
                    Err(attempt) => attempt,
                };
                (attempt_started, attempt, Instant::now())
            }
        };
        let attempt_duration = finished - attempt_started;
        let deadline_passed = deadline.is_some_and(|d| finished >= d);

        let (outcome, last, retry_after) = match attempt {
            Attempt::Value(value) => {
                break Answer::new(Ok(value), CallOutcome::Success).recording(
                    permit,
                    AttemptOutcome::Success,
                    attempt_duration,
                );
            }
            Attempt::Panicked(message) => {
                break Answer::new(
                    Err(CallError::Panicked { message, attempts }),
                    CallOutcome::Panic,
                )
                .recording(permit, AttemptOutcome::Panicked, attempt_duration);
            }
            Attempt::TimedOut if deadline_passed => {
                break Answer::new(
                    Err(CallError::DeadlineExceeded { attempts }),
                    CallOutcome::Timeout,
                )
                .recording(permit, AttemptOutcome::TimedOut, attempt_duration);
            }
            Attempt::TimedOut => (AttemptOutcome::TimedOut, LastFailure::TimedOut, None),
            Attempt::Error(error) => {
                let class = call.class_of(&error);
                let outcome = if class.breaker_failure {
                    AttemptOutcome::Failure
                } else {
                    AttemptOutcome::Ignored
                };
                if !class.retryable {
                    break Answer::new(
                        Err(CallError::Failed { error, attempts }),
                        CallOutcome::Failure,
                    )
                    .recording(permit, outcome, attempt_duration);
                }
                (outcome, LastFailure::Error(error), class.retry_after)
            }
        };
        if attempts >= context.max_attempts {
            let answer = match last {
                // With retries switched off, an error is simply the operation's failure.
                LastFailure::Error(error) if attempts == 1 => Answer::new(
                    Err(CallError::Failed { error, attempts }),
                    CallOutcome::Failure,
                ),
                last => given_up(last, attempts, |last, attempts| {
                    CallError::RetriesExhausted { last, attempts }
                }),
            };
            break answer.recording(permit, outcome, attempt_duration);
        }

        let decision = context
            .addr
            .send(AttemptFailed {
                permit,
                outcome,
                attempt_duration,
                attempts_made: attempts,
                previous_delay,
                retry_after,
                deadline_left: deadline.map(|d| d.saturating_duration_since(finished)),
            })
            .await;
        let delay = match decision {
            Err(_) => return Err(CallError::SupervisorGone),
            Ok(RetryDecision::RetryAfter(delay)) => delay,
            Ok(RetryDecision::Exhausted) => {
                break given_up(last, attempts, |last, attempts| {
                    CallError::RetriesExhausted { last, attempts }
                })
            }
            Ok(RetryDecision::Budget) => {
                break given_up(last, attempts, |last, attempts| {
                    CallError::BudgetExhausted { last, attempts }
                })
            }
            Ok(RetryDecision::Open(retry_after)) => {
                break Answer::new(Err(CallError::Open { retry_after }), CallOutcome::Rejected)
            }
        };
        tokio::time::sleep(delay).await;
        previous_delay = delay;
        match context.addr.send(AdmitRetry).await {
            Err(_) => return Err(CallError::SupervisorGone),
            Ok(Ok(next)) => permit = next,
            Ok(Err(rejected)) => {
                break Answer::new(
                    Err(CallError::Open {
                        retry_after: rejected.retry_after,
                    }),
                    CallOutcome::Rejected,
                )
            }
        }
    };
    drop(slot);
    context.addr.do_send(RecordOutcome {
        last_attempt: answer.last_attempt,
        answer: answer.outcome,
        call_duration: started.elapsed(),
    });
    answer.result
}

/// The answer of a call and what the supervisor still has to record.
struct Answer<T, E> {
    result: Result<T, CallError<E>>,
    outcome: CallOutcome,
    last_attempt: Option<(Permit, AttemptOutcome, Duration)>,
}

impl<T, E> Answer<T, E> {
    fn new(result: Result<T, CallError<E>>, outcome: CallOutcome) -> Self {
        Answer {
            result,
            outcome,
            last_attempt: None,
        }
    }

    fn recording(mut self, permit: Permit, outcome: AttemptOutcome, duration: Duration) -> Self {
        self.last_attempt = Some((permit, outcome, duration));
        self
    }
}

/// The answer when retrying stops after a retryable failure: a timeout stays a timeout.
fn given_up<T, E>(
    last: LastFailure<E>,
    attempts: u32,
    with_error: impl FnOnce(E, u32) -> CallError<E>,
) -> Answer<T, E> {
    match last {
        LastFailure::Error(error) => {
            Answer::new(Err(with_error(error, attempts)), CallOutcome::Failure)
        }
        LastFailure::TimedOut => {
            Answer::new(Err(CallError::TimedOut { attempts }), CallOutcome::Timeout)
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

/// Invokes the operation's closure, catching a panic in it.
fn invoke<T, E>(call: &mut Call<T, E>) -> Result<Operation<T, E>, Attempt<T, E>> {
    let operation = &mut call.operation;
    std::panic::catch_unwind(AssertUnwindSafe(operation))
        .map_err(|payload| Attempt::Panicked(panic_message(payload)))
}

/// Runs an attempt's future until it ends or `deadline` passes, catching a panic in it. On
/// timeout the future is dropped, which cancels it.
async fn finish_attempt<T, E>(future: Operation<T, E>, deadline: Option<Instant>) -> Attempt<T, E> {
    let guarded = AssertUnwindSafe(future).catch_unwind();
    let result = match deadline {
        Some(deadline) => match tokio::time::timeout_at(deadline, guarded).await {
            Ok(result) => result,
            Err(_) => return Attempt::TimedOut,
        },
        None => guarded.await,
    };
    match result {
        Ok(Ok(value)) => Attempt::Value(value),
        Ok(Err(error)) => Attempt::Error(error),
        Err(payload) => Attempt::Panicked(panic_message(payload)),
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}
