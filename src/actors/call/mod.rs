//! The caller's side of a call: its whole life runs in the task that awaits it, whichever
//! thread or runtime that is (a [`ServiceHandle`]'s caller, or the supervisor's arbiter for a
//! [`Call`] sent to the supervisor's address).
//!
//! ```text
//! gates ──▶ slot ──▶ attempts ──▶ answer ──▶ fallback
//! breaker, throttle,   (coalesce:   admission, attempt   supervisor's   on an error, if
//! rate limit,          follow or    (hedged?), failure   decision →     the call has one
//! back-pressure        lead)        → supervisor, sleep  CallError
//! ```
//!
//! - [`gates`]: refusals before a slot, counted once (through the hand-off);
//! - [`coalesce`]: a coalesced call follows a call of its key in flight, or leads one;
//! - [`attempts`]: the attempt loop; [`attempt`]: one attempt under its time limit;
//!   [`hedge`]: one attempt raced against hedges;
//! - [`answer`]: the supervisor's decision turned into the caller's [`CallError`];
//! - [`guard`]: what a call in flight holds, and its last report;
//! - [`fallback`]: the fallback, for failures and refusals;
//! - [`trace`]: the call's span and its attempts' spans
//!   ([`observe::spans`](crate::observe::spans) names their attributes).
//!
//! What is decided where: admission reads the state the supervisor publishes (Closed admits
//! here, Open refuses here, HalfOpen asks the supervisor for a probe permit); a success is
//! handed over without waiting; a failed attempt is recorded by the supervisor before the
//! call goes on (one round trip), and the supervisor decides the retry, its delay and the
//! budget. A call dropped by its caller is cancelled where it stands: the attempt's future is
//! dropped, the slot freed, a permit handed back and the call counted `cancelled`. When the
//! supervisor stops, a call in flight is cancelled and answered [`CallError::SupervisorGone`].

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use actix::{AsyncContext, Context, Handler, ResponseFuture};
use pin_project_lite::pin_project;
use tokio::time::Instant;

mod answer;
mod attempt;
mod attempts;
mod coalesce;
mod fallback;
mod gates;
mod guard;
mod hedge;
mod trace;

use self::gates::{Slot, Stopped};
use self::guard::CallGuard;
use self::trace::{CallSpan, Counted, Traced};
use super::handle::ServiceHandle;
use super::shared::admission::Admission;
use super::supervisor::ServiceSupervisor;
use crate::criticality::Criticality;
use crate::error::CallError;
use crate::flights::{FlightGuard, Joined};
use crate::messages::Call;
use crate::outcome::CallOutcome;

/// The ways to run a call from a handle: [`call`](ServiceHandle::call) for a closure,
/// [`send`](ServiceHandle::send) for a prepared [`Call`].
impl ServiceHandle {
    /// Runs `operation` through the supervisor (see [`Call::new`]), in the task that awaits
    /// this future: no thread hop, and the returned future is `Send` when `operation` and its
    /// future are.
    ///
    /// A call the published state admits (breaker closed) asks the supervisor nothing and
    /// never waits for it; its outcome is handed over for the supervisor to record in batches.
    /// A failed attempt asks the supervisor (one round trip) whether and when to retry; while
    /// the breaker is half-open the supervisor hands out the probe permits; while it is open
    /// the call is refused here at once.
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // A plain call has no fallback: while the breaker is open it is refused right here,
        // before the call and its attempt loop are even built.
        let prechecked = precheck(self)?;
        run(self, Call::new(operation), Some(prechecked)).await
    }

    /// Runs a prepared [`Call`] (e.g. one with a classifier) like [`call`](Self::call).
    pub async fn send<T, E, F, Fut>(&self, call: Call<T, E, F>) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        run(self, call, None).await
    }

    /// The refusal a call starting now gets without running (supervisor gone, breaker open),
    /// counted as a call would count it; `None` when a call would go ahead (the breaker only
    /// observes: the call's own gates count the would-be refusal, once).
    #[cfg(feature = "tower")]
    pub(crate) fn refusal<E>(&self) -> Option<CallError<E>> {
        if !self.is_alive() {
            return Some(CallError::SupervisorGone);
        }
        match self.published.admission.admit() {
            Admission::Refused(_) if !self.refuses_at_once() => None,
            Admission::Refused(retry_after) => {
                tracing::debug!(service = %self.name, ?retry_after, "call rejected: circuit open");
                gates::Refusal::Open(retry_after)
                    .refuse::<(), E>(&self.published, Criticality::current())
                    .err()
            }
            _ => None,
        }
    }
}

/// The first checks of a call without a fallback, made before the call and its attempt loop
/// are even built: the supervisor is running, and the published state admits the call. The
/// refusal is counted; the admission is handed to [`run`], which does not check again.
/// A refused call still has its span (opened and closed at once).
pub(crate) fn precheck<E>(handle: &ServiceHandle) -> Result<Prechecked, CallError<E>> {
    if !handle.is_alive() {
        CallSpan::refused(handle, None, CallError::<()>::SupervisorGone.kind());
        return Err(CallError::SupervisorGone);
    }
    let criticality = Criticality::current();
    match gates::breaker(handle, handle.published.admission.admit(), criticality) {
        Err(refusal) => {
            let kind = refusal.error::<()>().kind();
            CallSpan::refused(handle, Some(CallOutcome::Rejected), kind);
            refusal.refuse(&handle.published, criticality)
        }
        Ok(admission) => Ok(Prechecked(admission, criticality)),
    }
}

/// A call's first admission, made by [`precheck`], and the criticality it was made for (the
/// current one: the call has none of its own).
#[derive(Debug)]
pub(crate) struct Prechecked(Admission, Criticality);

/// Runs `call` through the supervisor behind `handle`, in the current task (see the module
/// docs), inside the call's span. Inlined: the call's future is built in place, not copied.
#[inline(always)]
pub(crate) fn run<'a, T, E, F, Fut>(
    handle: &'a ServiceHandle,
    call: Call<T, E, F>,
    prechecked: Option<Prechecked>,
) -> Traced<impl Future<Output = Counted<T, E>> + use<'a, T, E, F, Fut>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let span = CallSpan::start(handle);
    Traced::new(span.clone(), answer(handle, call, prechecked, span))
}

/// The call's answer (see [`run`]) and how it was counted (`None`: nobody counted it).
async fn answer<T, E, F, Fut>(
    handle: &ServiceHandle,
    mut call: Call<T, E, F>,
    prechecked: Option<Prechecked>,
    trace: CallSpan,
) -> Counted<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut fallback = call.fallback.take();
    let coalesce = call.coalesce.take();
    // Its own, else the one it is made in (`Criticality::scope`, or a call's operation), as
    // read by the precheck if there was one (in this task, at this poll).
    let criticality = match (call.criticality, &prechecked) {
        (Some(criticality), _) => criticality,
        (None, Some(Prechecked(_, current))) => *current,
        (None, None) => Criticality::current(),
    };
    let mut prechecked = prechecked.map(|Prechecked(admission, _)| admission);
    if prechecked.is_none() && !handle.is_alive() {
        return (Err(CallError::SupervisorGone), None);
    }
    let published = &handle.published;
    // When a coalesced call started (a follower's duration is timed from it).
    let started = coalesce.as_ref().map(|_| Instant::now());
    // One round for a call; more only for a coalesced call whose leader was cancelled.
    let (admission, shadow, slot, flight) = 'round: loop {
        if let Some(Joined::Follow(answer)) = coalesce
            .as_ref()
            .map(|coalesce| coalesce.join(&published.flights, false))
        {
            if let Some(answer) = coalesce::follow(published, answer, &mut fallback, started).await
            {
                return answer;
            }
            continue;
        }
        // Through the gates, this round leaves the loop with its slot; else it stops here.
        let stopped = 'gates: {
            let admitted = gates::admission(handle, prechecked.take(), criticality);
            trace.admitted(published);
            let (admission, shadow) = match admitted {
                Ok(admitted) => admitted,
                Err(refusal) => break 'gates Stopped::Refused(refusal),
            };
            let (slot, token) = match gates::slot_at_once(handle, criticality) {
                Slot::Ready(Ok(slot)) => slot,
                Slot::Ready(Err(stopped)) => break 'gates stopped,
                Slot::Wait(token) => {
                    trace::waiting(token.as_ref());
                    match gates::slot_after_waiting(handle, token, criticality).await {
                        Ok(slot) => slot,
                        Err(stopped) => break 'gates stopped,
                    }
                }
            };
            // With its slot, a coalesced call leads its key's flight, unless another call of the
            // key took a slot first (it then gives its slot back and follows that one).
            let flight = match coalesce
                .as_ref()
                .map(|coalesce| coalesce.join(&published.flights, true))
            {
                Some(Joined::Lead(id)) => Some(id),
                Some(Joined::Follow(answer)) => {
                    // This call will not be sent: its slot and its token go back.
                    drop(slot);
                    gates::give_back(published, token);
                    let followed = coalesce::follow(published, answer, &mut fallback, started);
                    if let Some(answer) = followed.await {
                        return answer;
                    }
                    continue 'round;
                }
                Some(Joined::Vacant | Joined::Alone) | None => None,
            };
            // The call is sent: its token is spent (a reservation dropped keeps it spent).
            let _spent = token;
            break 'round (admission, shadow, slot, flight);
        };
        match stopped {
            Stopped::Refused(refusal) => {
                let (answer, outcome) =
                    fallback::refused(published, refusal, criticality, fallback).await;
                return (answer, Some(outcome));
            }
            Stopped::Gone => return (Err(CallError::SupervisorGone), None),
            Stopped::NoRuntime => return (Err(CallError::NoRuntime { attempts: 0 }), None),
        }
    };
    let mut guard = CallGuard::new(published, slot, shadow);
    // Declared after the call's guard, so dropped before it: the flight ends (its followers
    // start over) before the slot is given back.
    let flight = flight.and_then(|id| {
        let coalesce = coalesce.as_ref()?;
        Some(FlightGuard::new(&published.flights, coalesce, id))
    });
    // Moved here, after the guard and the flight, so dropped before them, and dropped as soon
    // as the attempts are done: as when the attempt loop owned it.
    let mut attempted = call;
    let answer = UntilGone::new(
        handle,
        attempts::drive(handle, &mut attempted, admission, &mut guard, &trace),
    )
    .await;
    drop(attempted);
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
            let result = fallback::serve(fallback, error, attempts, &mut outcome).await;
            // With the supervisor gone there is nobody to count it to.
            if guard.outcome.is_some() {
                guard.outcome = outcome;
            }
            result
        }
        (result, _) => result,
    };
    let outcome = guard.outcome;
    guard.finish();
    (result, outcome)
}

pin_project! {
    /// `call`, unless the supervisor goes away first: then the call (and the attempt in
    /// flight) is dropped and answered `SupervisorGone`. The watch is only set up if the call
    /// has to wait, so a call that is done at its first poll pays nothing for it. A struct, not
    /// an async fn: the call's future is built in place, never moved into a pinned copy.
    struct UntilGone<'a, F> {
        handle: &'a ServiceHandle,
        #[pin]
        call: F,
        gone: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    }
}

impl<'a, F> UntilGone<'a, F> {
    #[inline(always)]
    fn new(handle: &'a ServiceHandle, call: F) -> Self {
        UntilGone {
            handle,
            call,
            gone: None,
        }
    }
}

impl<T, E, F> Future for UntilGone<'_, F>
where
    F: Future<Output = Result<T, CallError<E>>>,
{
    type Output = Result<T, CallError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.call.poll(cx) {
            return Poll::Ready(answer);
        }
        let handle = *this.handle;
        let gone = this.gone.get_or_insert_with(|| Box::pin(handle.stopped()));
        match gone.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(CallError::SupervisorGone)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A call sent to the supervisor's address runs on its arbiter, as a task of its own (the
/// mailbox is never blocked by it, and it is no actor future), through the same pipeline as a
/// call made with a [`ServiceHandle`] (so its future need not be `Send`).
impl<T, E, F, Fut> Handler<Call<T, E, F>> for ServiceSupervisor
where
    T: 'static,
    E: 'static,
    F: FnMut() -> Fut + 'static,
    Fut: Future<Output = Result<T, E>> + 'static,
{
    type Result = ResponseFuture<Result<T, CallError<E>>>;

    fn handle(&mut self, call: Call<T, E, F>, ctx: &mut Context<Self>) -> Self::Result {
        let (name, published, alive) = self.shared();
        let handle = ServiceHandle::new(name, ctx.address(), published, alive);
        Box::pin(async move { run(&handle, call, None).await })
    }
}
