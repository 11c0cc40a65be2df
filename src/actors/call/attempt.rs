//! One attempt: the operation invoked and its future run under its time limit (the per-attempt
//! timeout or the call's deadline, whichever is sooner), a panic in either caught; or, while
//! faults are injected and one is drawn for it, the fault ([`chaos`](crate::chaos)), which
//! then takes the same path as a real attempt. On timeout the future is dropped, which cancels
//! it. The operation is invoked and its future polled inside the attempt's time limit as the
//! current [`Deadline`](crate::deadline::Deadline): what it reads, and what the calls it makes inherit.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::answer::{panic_message, Failure};
use crate::actors::shared::report::Report;
use crate::actors::shared::Published;
use crate::chaos::Fault;
use crate::criticality::{self, Criticality};
use crate::deadline::within;
use crate::messages::Call;
use crate::outcome::AttemptOutcome;

/// How one attempt ended.
pub(super) enum Attempt<T, E> {
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
#[inline(always)]
pub(super) fn start_attempt<T, E, F, Fut>(
    call: &mut Call<T, E, F>,
    published: &Published,
    deadline: Option<Instant>,
) -> impl Future<Output = Attempt<T, E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match published.faults.draw() {
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
#[inline(always)]
fn run_attempt<T, E, F, Fut>(call: &mut Call<T, E, F>, deadline: Option<Instant>) -> Timed<Fut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let operation = &mut call.operation;
    let criticality = call.criticality;
    // Invoked, like its future polled, inside the attempt's deadline (`Deadline::current`)
    // and the call's own criticality, if it has one (`Criticality::current`).
    let invoked = within(deadline, || {
        criticality::within(criticality, || {
            std::panic::catch_unwind(AssertUnwindSafe(operation))
        })
    });
    let (future, panicked) = match invoked {
        Ok(future) => (Some(future), None),
        Err(payload) => (None, Some(panic_message(payload))),
    };
    Timed {
        future,
        panicked,
        timer: None,
        deadline,
        criticality,
    }
}

pin_project! {
    /// An attempt's future under its time limit. The timer is only set up once the future has
    /// returned `Pending`: an operation that is done at its first poll never touches it.
    pub(super) struct Timed<Fut> {
        #[pin]
        future: Option<Fut>,
        panicked: Option<String>,
        #[pin]
        timer: Option<Sleep>,
        deadline: Option<Instant>,
        criticality: Option<Criticality>,
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
        let (deadline, criticality) = (*this.deadline, *this.criticality);
        match within(deadline, || {
            criticality::within(criticality, || {
                std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
            })
        }) {
            Ok(Poll::Ready(Ok(value))) => return Poll::Ready(Attempt::Value(value)),
            Ok(Poll::Ready(Err(error))) => return Poll::Ready(Attempt::Error(error)),
            Ok(Poll::Pending) => {}
            Err(payload) => {
                // A future that panicked is never polled again.
                this.future.set(None);
                return Poll::Ready(Attempt::Panicked(panic_message(payload)));
            }
        }
        let Some(deadline) = deadline else {
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
#[inline]
pub(super) fn time_limit(
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
