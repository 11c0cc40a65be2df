//! What the supervisor records: each caller's report ([`apply`](ServiceSupervisor::apply)),
//! each attempt into the breaker, the health window, the retry budget, the throttle and the
//! adaptive limit ([`record_attempt`](ServiceSupervisor::record_attempt); a shadow attempt of
//! observe-only mode skips the policies it is a shadow for), and what follows a
//! breaker change (the state published for the handles, the timer of the next time-driven
//! transition).

use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::signals::Signal;
use super::ServiceSupervisor;
use crate::actors::shared::report::{AttemptRecord, Report};
use crate::breaker::Outcome;
use crate::criticality::Criticality;
use crate::outcome::{AttemptOutcome, RejectReason};

impl ServiceSupervisor {
    /// Applies one caller's report.
    pub(super) fn apply(&mut self, ctx: &mut Context<Self>, report: Report, now: Instant) {
        if let Some(reason) = report.refused {
            self.record_refusals(now, reason, report.criticality, 1);
            // A call refused before its first attempt (answered by its fallback) was shed; a
            // retry refused by the breaker was not (its call had an attempt).
            let shed = report.attempt.is_none().then_some(report.criticality);
            self.emit(now, Signal::Rejected { reason, shed });
        }
        if let Some(kind) = report.fault {
            self.emit(now, Signal::FaultInjected(kind));
        }
        if report.hedge_won {
            self.emit(now, Signal::HedgeWon);
        }
        if let Some(attempt) = report.attempt {
            self.record_attempt(ctx, attempt, now);
        }
        if let Some((outcome, duration)) = report.answer {
            let duration = duration.get();
            let refused = report.refused;
            self.emit(
                now,
                Signal::Answered {
                    outcome,
                    refused,
                    duration,
                },
            );
        }
    }

    /// Records `calls` calls of `criticality` refused for `reason` where a record is owed: a
    /// call the throttle refused is a request the dependency did not accept.
    pub(super) fn record_refusals(
        &mut self,
        now: Instant,
        reason: RejectReason,
        criticality: Criticality,
        calls: u64,
    ) {
        if reason == RejectReason::Throttled {
            if let Some(throttle) = &mut self.throttle {
                throttle.count_refused_as(now.into_std(), criticality, calls);
            }
        }
    }

    /// Records one attempt into the breaker and the health window (and, for a call's first
    /// attempt, the call into the retry budget).
    pub(super) fn record_attempt(
        &mut self,
        ctx: &mut Context<Self>,
        record: AttemptRecord,
        now: Instant,
    ) {
        let AttemptRecord {
            permit,
            outcome,
            duration,
            first,
            in_flight,
            criticality,
            shadow,
        } = record;
        let duration = duration.get();
        // A shadow (observe-only mode) is recorded everywhere but into the policies that,
        // enforcing, would have refused it: they decide as if it had never run.
        if !shadow.limit() {
            self.sample_limit(now, outcome, duration, in_flight);
        }
        self.emit(now, Signal::Attempt);
        if first {
            self.budget.record_call(now);
        }
        if let (Some(throttle), false) = (&mut self.throttle, shadow.throttle()) {
            // Accepted: the dependency answered (or the answer says nothing about it).
            let accepted = match outcome {
                AttemptOutcome::Success | AttemptOutcome::Ignored => Some(true),
                AttemptOutcome::Failure | AttemptOutcome::TimedOut | AttemptOutcome::Panicked => {
                    Some(false)
                }
                AttemptOutcome::Cancelled | AttemptOutcome::Superseded => None,
            };
            if let Some(accepted) = accepted {
                throttle.count_as(now.into_std(), criticality, accepted);
            }
        }
        let (breaker_outcome, healthy) = match outcome {
            AttemptOutcome::Cancelled => {
                if !shadow.breaker() {
                    self.breaker.release(permit, now.into_std());
                    self.after_breaker_change(ctx, now);
                }
                return;
            }
            // A hedge race's loser: its running time (at most the hedge delay) is a lower bound
            // of its latency, kept so the window (and the hedge delay derived from it) still
            // sees the slow attempts.
            AttemptOutcome::Superseded => (Outcome::ignored(duration), true),
            AttemptOutcome::Success => (Outcome::success(duration), true),
            AttemptOutcome::Ignored => (Outcome::ignored(duration), true),
            AttemptOutcome::Failure | AttemptOutcome::Panicked => {
                (Outcome::failure(duration), false)
            }
            AttemptOutcome::TimedOut => {
                self.emit(now, Signal::TimedOut { after: duration });
                (Outcome::failure(duration), false)
            }
        };
        if !shadow.breaker() {
            if let (Some(share), false) = (&self.member, healthy) {
                // One key of a keyed service trips only while the cap on open keys allows it.
                self.breaker.hold_closed(!share.may_open());
            }
            self.breaker.record(permit, breaker_outcome, now.into_std());
        }
        self.health.record(now.into_std(), healthy, duration);
        self.after_breaker_change(ctx, now);
        match self.health_due {
            Some(due) if now < due => {
                // Not re-evaluated now (it sorts the window): at `due` at the latest, so a
                // burst followed by silence is still reported.
                self.schedule_health(ctx, due);
            }
            _ => {
                self.evaluate_health(ctx, now);
            }
        }
    }

    /// Drains breaker transitions: emits them, publishes the new state for the handles, and
    /// (re)arms the timer of the next time-driven transition.
    #[inline]
    pub(super) fn after_breaker_change(&mut self, ctx: &mut Context<Self>, now: Instant) {
        // The common case on the call path: nothing changed, nothing to collect.
        if self.breaker.has_transitions() {
            self.breaker_changed(ctx, now);
        }
    }

    /// [`after_breaker_change`](Self::after_breaker_change), with transitions pending.
    fn breaker_changed(&mut self, ctx: &mut Context<Self>, now: Instant) {
        let transitions: Vec<_> = self.breaker.drain_transitions().collect();
        for transition in transitions {
            if let Some(share) = &self.member {
                share.moved(transition.from, transition.to);
            }
            self.emit(now, Signal::Transition(transition));
        }
        let open_until = self.breaker.open_until().map(Instant::from_std);
        self.published
            .admission
            .publish(self.breaker.state(), self.breaker.epoch(), open_until);
        self.evaluate_health(ctx, now);
        self.arm_breaker_timer(ctx, now);
    }

    fn arm_breaker_timer(&mut self, ctx: &mut Context<Self>, now: Instant) {
        if self.stopping {
            return;
        }
        let next = self.breaker.next_deadline().map(Instant::from_std);
        if self.breaker_timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, handle)) = self.breaker_timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            let handle = ctx.run_later(at.saturating_duration_since(now), |act, ctx| {
                act.breaker_timer = None;
                if !ctx.connected() {
                    // No handle, call or subscriber-facing address is left: nobody can reach
                    // it again. Without this, the timer would keep an idle supervisor alive
                    // forever, cycling Open → HalfOpen → (wait expires) → Open.
                    ctx.stop();
                    return;
                }
                let now = Self::now();
                act.drain(ctx, now);
                act.breaker.poll(now.into_std());
                act.after_breaker_change(ctx, now);
                act.arm_breaker_timer(ctx, now);
            });
            self.breaker_timer = Some((at, handle));
        }
    }

    /// Feeds a finished attempt to the adaptive concurrency limit and publishes the limit when
    /// it moves. A timeout is a drop (the dependency is queueing); an error is no sample (it
    /// says little about queueing), a success or an ignored error is a normal one.
    fn sample_limit(
        &mut self,
        now: Instant,
        outcome: AttemptOutcome,
        duration: Duration,
        in_flight: u32,
    ) {
        let Some(limiter) = &mut self.limiter else {
            return;
        };
        let dropped = match outcome {
            AttemptOutcome::Success | AttemptOutcome::Ignored => false,
            AttemptOutcome::TimedOut => true,
            AttemptOutcome::Failure
            | AttemptOutcome::Panicked
            | AttemptOutcome::Cancelled
            | AttemptOutcome::Superseded => return,
        };
        let Some(limit) = limiter.on_sample(now.into_std(), duration, in_flight, dropped) else {
            return;
        };
        self.publish_limit(limit);
        self.emit(now, Signal::LimitChanged { to: limit });
    }

    /// Publishes the calls allowed in flight for the handles: `limit` (at most
    /// `max_in_flight`), or, while the adaptive limit only observes, `max_in_flight` with
    /// `limit` beside it as the observed limit.
    pub(super) fn publish_limit(&self, limit: u32) {
        let max_in_flight = self.settings.max_in_flight;
        let bulkhead = &self.published.bulkhead;
        if self.settings.modes.limit() {
            bulkhead.set_limit(max_in_flight);
            bulkhead.set_observed_limit(Some(limit.min(max_in_flight)));
        } else {
            bulkhead.set_observed_limit(None);
            bulkhead.set_limit(limit.min(max_in_flight));
        }
    }

    /// The dependency asked for `hint` of quiet (a 429's `Retry-After`): the rate limiter, if
    /// any and if told to, lowers the rate until then.
    pub(super) fn slow_down(&mut self, now: Instant, hint: Duration) {
        let factor = self.settings.retry_after_factor;
        if factor >= 1.0 {
            return;
        }
        let until = now + hint;
        if self
            .published
            .rate_limit
            .penalize(now.into_std(), until.into_std(), factor)
        {
            let until = until.into_std();
            self.emit(
                now,
                Signal::RateLowered {
                    hint,
                    factor,
                    until,
                },
            );
        }
    }

    /// Publishes the throttle's reject probability when it changed.
    pub(super) fn update_throttle(&mut self, now: Instant) {
        let Some(throttle) = &self.throttle else {
            return;
        };
        let snapshot = throttle.snapshot(now.into_std());
        if snapshot.reject_probabilities != self.throttle_shares {
            // The mix of criticalities moves the shares even while the probability stays.
            self.throttle_shares = snapshot.reject_probabilities;
            self.published
                .throttle
                .publish(snapshot.reject_probabilities);
        }
        let probability = snapshot.reject_probability;
        if probability == self.throttle_published {
            return;
        }
        let from = std::mem::replace(&mut self.throttle_published, probability);
        self.emit(
            now,
            Signal::Throttle {
                from,
                to: probability,
                requests: snapshot.requests,
                accepts: snapshot.accepts,
            },
        );
    }
}
