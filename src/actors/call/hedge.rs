//! One attempt with hedges: when the attempt has not answered within the hedge delay, the
//! supervisor is asked for a hedge ([`Hedge`]: breaker closed, retry budget) and another
//! attempt of the same call starts; up to `max_hedges` of them, one per further delay. The
//! attempts race in the call's task:
//!
//! - the first **value** wins; the other attempts are dropped (cancelled) and recorded as
//!   superseded (their running time goes to the health window);
//! - an attempt that fails while another still runs is recorded as the failure it is, and the
//!   race goes on, unless the failure is final (a permanent error, a panic): that is the
//!   call's answer;
//! - when every attempt has failed, the last failure is the attempt's outcome, and the attempt
//!   loop goes on with it as with any failed attempt (the retry decision).
//!
//! No hedge starts once the call's deadline has passed (it could not end before it); each
//! hedge runs under the same time limit as any attempt, inside it as the current
//! [`Deadline`](crate::deadline::Deadline).
//!
//! The decisive attempt's permit is left in the call's guard, as for an attempt without
//! hedges, so the rest of the loop does not know hedging exists. A call dropped mid-race hands
//! every running attempt's permit back (counted `cancelled`).
//!
//! Every attempt of the race runs in its own span, a child of the call's (a hedge's with
//! `warden.hedge = true`); an attempt that loses or fails while the race goes on ends its span
//! here, the decisive attempt's span goes back to the attempt loop with its outcome.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::answer::{classify, Failure};
use super::attempt::{start_attempt, time_limit, Attempt};
use super::guard::CallGuard;
use super::trace::{AttemptSpan, CallSpan};
use crate::actors::handle::ServiceHandle;
use crate::actors::shared::report::{AttemptRecord, Nanos, Report};
use crate::actors::shared::shadow::Shadow;
use crate::actors::shared::Published;
use crate::actors::supervisor::{Cause, Hedge};
use crate::breaker::Permit;
use crate::criticality::Criticality;
use crate::messages::Call;
use crate::outcome::AttemptOutcome;

/// One attempt in a race: its permit is reported when it ends, loses, or is dropped.
pub(super) struct Runner {
    permit: Option<Permit>,
    /// The call's first attempt (the call is counted into the retry budget with it).
    first: bool,
    started: Instant,
    /// A hedge, not the attempt it hedged.
    hedge: bool,
    span: AttemptSpan,
}

impl Runner {
    pub(super) fn new(
        permit: Permit,
        first: bool,
        started: Instant,
        hedge: bool,
        span: AttemptSpan,
    ) -> Self {
        Runner {
            permit: Some(permit),
            first,
            started,
            hedge,
            span,
        }
    }

    /// The attempt's record, ended `outcome` now; its duration at most `cap`.
    fn record(
        &mut self,
        outcome: AttemptOutcome,
        (in_flight, criticality, shadow): (u32, Criticality, Shadow),
        cap: Duration,
    ) -> Option<AttemptRecord> {
        let permit = self.permit.take()?;
        self.span.ended(outcome);
        Some(AttemptRecord {
            permit,
            outcome,
            duration: Nanos::of(self.started.elapsed().min(cap)),
            first: self.first,
            in_flight,
            criticality,
            shadow,
        })
    }
}

/// The attempts of a race still running. Dropped with the call, it hands their permits back.
struct Race<'a, A> {
    published: &'a Arc<Published>,
    /// Calls in flight when the call was admitted, and its criticality.
    admitted: (u32, Criticality),
    /// The policies the call is a shadow for (its hedges too).
    shadow: Shadow,
    running: Vec<(Runner, Pin<Box<A>>)>,
}

impl<A> Race<'_, A> {
    /// Hands over the record of an attempt that ended (or lost) with `outcome`, its duration
    /// at most `cap`.
    fn report(&self, runner: &mut Runner, outcome: AttemptOutcome, cap: Duration) {
        let (in_flight, criticality) = self.admitted;
        if let Some(record) = runner.record(outcome, (in_flight, criticality, self.shadow), cap) {
            self.published.report(Report {
                attempt: Some(record),
                ..Report::default()
            });
        }
    }

    /// The race is decided: every attempt still running lost (its future is dropped here).
    /// A loser is recorded with the time it ran, but at most `delay`: all that is known of its
    /// latency is that it was not answered within the delay (the attempt a hedge beat) or
    /// within the time it ran. Recording more — the hedged attempt's whole running time, the
    /// delay plus the winner's latency — would feed the next delay a sample above the current
    /// one for every hedge, and the delay would creep up while the slow share sits at the
    /// percentile.
    fn supersede_all(&mut self, delay: Duration) {
        for (mut runner, attempt) in std::mem::take(&mut self.running) {
            drop(attempt);
            self.report(&mut runner, AttemptOutcome::Superseded, delay);
        }
    }
}

impl<A> Drop for Race<'_, A> {
    fn drop(&mut self) {
        for (mut runner, attempt) in std::mem::take(&mut self.running) {
            drop(attempt);
            self.report(&mut runner, AttemptOutcome::Cancelled, Duration::MAX);
        }
    }
}

/// Runs the attempt `first` (its permit taken) with hedges after `delay`; returns the decisive
/// attempt's outcome, start and span, its permit left in `guard` (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(super) async fn hedged<T, E, F, Fut>(
    handle: &ServiceHandle,
    call: &mut Call<T, E, F>,
    guard: &mut CallGuard<'_>,
    first: Runner,
    attempts: u32,
    deadline: Option<Instant>,
    delay: Duration,
    trace: &CallSpan,
) -> (Attempt<T, E>, Instant, AttemptSpan)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let published = &handle.published;
    let settings = published.settings.load();
    let attempt_deadline =
        |started: Instant| time_limit(settings.timeout, deadline, started).map(|l| started + l);
    let first_attempt = start_attempt(call, published, attempt_deadline(first.started))
        .instrument(first.span.span().clone());
    if tokio::runtime::Handle::try_current().is_err() {
        // Nothing to time the hedge with: the attempt runs alone.
        let started = first.started;
        guard.permit = first.permit.map(|permit| (permit, first.first));
        return (first_attempt.await, started, first.span);
    }
    let mut race = Race {
        published,
        admitted: (guard.in_flight, guard.criticality),
        shadow: guard.shadow,
        running: Vec::with_capacity(1 + settings.max_hedges as usize),
    };
    let first_started = first.started;
    race.running.push((first, Box::pin(first_attempt)));
    let mut hedges = 0u32;
    let mut timer = pin!(tokio::time::sleep_until(first_started + delay));
    // The supervisor's answer to a hedge request, while one is asked.
    let mut asking: Option<Pin<Box<actix::dev::Request<_, Hedge>>>> = None;
    let mut hedging = true;
    let (mut winner, attempt) = std::future::poll_fn(|cx| loop {
        let mut i = 0;
        while i < race.running.len() {
            let Poll::Ready(attempt) = race.running[i].1.as_mut().poll(cx) else {
                i += 1;
                continue;
            };
            let (mut runner, ended) = race.running.swap_remove(i);
            drop(ended);
            // A hedge being asked for does not count: if it is refused, this failure would be
            // lost.
            let others = !race.running.is_empty();
            // An attempt that fails while another runs is recorded, and the race goes on.
            let failed = match attempt {
                Attempt::Error(error) if others => match classify(call, error, attempts) {
                    (outcome, Failure::Retryable(_), _) => outcome,
                    (outcome, failure, retry_after) => {
                        return Poll::Ready((
                            runner,
                            Attempt::Classified(outcome, failure, retry_after),
                        ))
                    }
                },
                Attempt::TimedOut if others => AttemptOutcome::TimedOut,
                Attempt::Injected if others => AttemptOutcome::Failure,
                attempt => return Poll::Ready((runner, attempt)),
            };
            race.report(&mut runner, failed, Duration::MAX);
        }
        if let Some(request) = asking.as_mut() {
            let Poll::Ready(answer) = request.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            asking = None;
            let now = Instant::now();
            match answer.ok().flatten() {
                // Admitted once the deadline had passed: the hedge could not end before it.
                // The permit is handed back unused (dropped), and no hedge follows.
                Some(_) if deadline.is_some_and(|d| now >= d) => hedging = false,
                Some(held) => {
                    let span = AttemptSpan::start(trace, attempts, true, published, deadline, now);
                    let attempt = start_attempt(call, published, attempt_deadline(now))
                        .instrument(span.span().clone());
                    let runner = Runner::new(held.take(), false, now, true, span);
                    race.running.push((runner, Box::pin(attempt)));
                    if hedges < settings.max_hedges {
                        timer.as_mut().reset(now + delay);
                    }
                }
                // Refused (breaker not closed, budget spent) or the supervisor is gone.
                None => hedging = false,
            }
            // Poll the new attempt, or see whether the race ended while the supervisor was
            // asked.
            continue;
        }
        if hedging && hedges < settings.max_hedges && timer.as_mut().poll(cx).is_ready() {
            // No hedge that could not end before the deadline is asked for.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                hedging = false;
                continue;
            }
            hedges += 1;
            let after = Instant::now() - first_started;
            asking = Some(Box::pin(handle.addr.send(Hedge {
                after,
                hedge: hedges,
                span: Cause::of(trace.span()),
            })));
            continue;
        }
        return Poll::Pending;
    })
    .await;
    race.supersede_all(delay);
    if winner.hedge && matches!(attempt, Attempt::Value(_)) {
        guard.hedge_won = true;
    }
    let started = winner.started;
    guard.permit = winner.permit.take().map(|permit| (permit, winner.first));
    (attempt, started, winner.span)
}
