//! The supervisor's decisions for a call in flight, each made in one place: whether and when a
//! failed attempt is retried ([`decide_retry`], a plain function of the cores), whether a
//! half-open probe is admitted ([`Admit`]), whether a hedge starts ([`Hedge`]). The caller
//! executes the answer and decides nothing again.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::fleet::Budget;
use super::protocol::{Admit, AttemptFailed, Hedge, RetryDecision, RetryQuestion, Stop};
use super::signals::Signal;
use super::ServiceSupervisor;
use crate::actors::shared::report::{AttemptRecord, HeldPermit, Nanos};
use crate::breaker::{Breaker, BreakerState, Rejected};
use crate::outcome::{AttemptOutcome, RejectReason, RetryReason};
use crate::retry::RetryPolicy;

/// How a retry decision treats a breaker that will still be open when the retry's delay ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenBreaker {
    /// No retry into it: [`Stop::Open`].
    Stops,
    /// The breaker only observes: the retry goes (unless something else stops it), as a
    /// shadow for the breaker ([`RetryDecision::ShadowRetryAfter`]); the would-be refusal is
    /// reported with the decision.
    Observed,
    /// The call is a shadow for the breaker already (enforcing, it would not be running): the
    /// breaker is not asked.
    Ignored,
}

/// Whether the call that asked `question` after a failed attempt (with the dependency's
/// `retry_after` hint) is retried at `now`, and after how long. In order: no
/// attempts left; a hint above `max_delay` (deferred); the deadline before the delay ends; an
/// open breaker that will still be open then (as `open` says); the budget. Takes a budget token
/// when it says retry. Also answers whether a breaker that only observes would have stopped the
/// retry (then counted `would_reject`, whatever the decision).
pub(super) fn decide_retry(
    question: RetryQuestion,
    retry_after: Option<Duration>,
    now: Instant,
    retry: &mut RetryPolicy,
    (breaker, open): (&Breaker, OpenBreaker),
    budget: &mut Budget,
) -> (RetryDecision, bool) {
    let max_attempts = if question.no_retry {
        1
    } else {
        retry.config().max_attempts
    };
    if question.attempts_made >= max_attempts {
        return (RetryDecision::Stop(Stop::Exhausted), false);
    }
    if let Some(hint) = retry_after.filter(|hint| *hint > retry.config().max_delay) {
        return (RetryDecision::Stop(Stop::Deferred(hint)), false);
    }
    let Some(delay) =
        retry.next_delay(question.attempts_made, question.previous_delay, retry_after)
    else {
        return (RetryDecision::Stop(Stop::Exhausted), false);
    };
    if question.deadline_left.is_some_and(|left| delay >= left) {
        return (RetryDecision::Stop(Stop::NoTimeLeft), false);
    }
    // Not retried into an open breaker: if it will still be open when the delay ends, stop
    // now instead of sleeping to be rejected. A breaker forced open by an operator stops the
    // retry in either mode.
    let still_open = match breaker.state() {
        BreakerState::ForcedOpen => return (RetryDecision::Stop(Stop::Open(None)), false),
        _ if open == OpenBreaker::Ignored => None,
        BreakerState::Open => breaker
            .open_until()
            .map(Instant::from_std)
            .filter(|until| *until > now + delay)
            .map(|until| Some(until - now)),
        _ => None,
    };
    let observed = match still_open {
        Some(retry_after) if open == OpenBreaker::Stops => {
            return (RetryDecision::Stop(Stop::Open(retry_after)), false)
        }
        still_open => still_open.is_some(),
    };
    if !budget.try_retry(now) {
        return (RetryDecision::Stop(Stop::Budget), observed);
    }
    if observed {
        return (RetryDecision::ShadowRetryAfter(delay), true);
    }
    (RetryDecision::RetryAfter(delay), false)
}

impl ServiceSupervisor {
    /// Asks the breaker for a permit; emits any transition it causes. A refusal is counted by
    /// the caller that met it (with its answer), not here.
    fn admit(
        &mut self,
        ctx: &mut Context<Self>,
        now: Instant,
    ) -> Result<crate::breaker::Permit, Rejected> {
        let admission = self.breaker.try_acquire(now.into_std());
        self.after_breaker_change(ctx, now);
        if let Err(rejected) = &admission {
            tracing::debug!(
                service = %self.name,
                state = rejected.state.as_str(),
                retry_after = ?rejected.retry_after,
                "call rejected by circuit breaker"
            );
        }
        admission
    }

    /// Emits what a retry decision means: a retry scheduled, or a refusal (budget, breaker).
    fn signal_decision(
        &mut self,
        now: Instant,
        question: RetryQuestion,
        outcome: AttemptOutcome,
        decision: RetryDecision,
    ) {
        match decision {
            RetryDecision::RetryAfter(delay) | RetryDecision::ShadowRetryAfter(delay) => {
                let reason = if outcome == AttemptOutcome::TimedOut {
                    RetryReason::Timeout
                } else {
                    RetryReason::Error
                };
                let attempt = question.attempts_made + 1;
                self.emit(
                    now,
                    Signal::Retry {
                        attempt,
                        delay,
                        reason,
                    },
                );
            }
            RetryDecision::Stop(Stop::Budget) => {
                self.emit(
                    now,
                    Signal::Rejected {
                        reason: RejectReason::Budget,
                        shed: None,
                    },
                );
                let attempts = question.attempts_made;
                self.emit(now, Signal::BudgetExhausted { attempts });
            }
            RetryDecision::Stop(Stop::Open(_)) => {
                tracing::debug!(service = %self.name, "retry not sent into the open breaker");
                self.emit(
                    now,
                    Signal::Rejected {
                        reason: RejectReason::Open,
                        shed: None,
                    },
                );
            }
            RetryDecision::Stop(Stop::Deferred(hint)) => {
                tracing::debug!(service = %self.name, retry_after = ?hint, "retry deferred: hint above max_delay");
            }
            RetryDecision::Stop(Stop::Final | Stop::Exhausted | Stop::NoTimeLeft) => {}
        }
    }
}

impl Handler<AttemptFailed> for ServiceSupervisor {
    type Result = MessageResult<AttemptFailed>;

    /// Records the failed attempt (after draining what is pending, so the breaker sees
    /// outcomes in the order they were reported), then decides the retry if asked.
    fn handle(&mut self, msg: AttemptFailed, ctx: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        self.drain(ctx, now);
        let _span = msg.span.enter();
        let shadow = msg.permit.shadows();
        let record = AttemptRecord {
            permit: msg.permit.take(),
            outcome: msg.outcome,
            duration: Nanos::of(msg.duration),
            first: msg.first,
            in_flight: msg.in_flight,
            criticality: msg.criticality,
            shadow,
        };
        self.record_attempt(ctx, record, now);
        self.update_throttle(now);
        if let Some(hint) = msg.retry_after {
            self.slow_down(now, hint);
        }
        let Some(question) = msg.retry else {
            return MessageResult(RetryDecision::Stop(Stop::Final));
        };
        let open = if shadow.breaker() {
            OpenBreaker::Ignored
        } else if self.settings.modes.breaker() {
            OpenBreaker::Observed
        } else {
            OpenBreaker::Stops
        };
        let (decision, would_reject) = decide_retry(
            question,
            msg.retry_after,
            now,
            &mut self.retry,
            (&self.breaker, open),
            &mut self.budget,
        );
        if would_reject {
            tracing::debug!(service = %self.name, "circuit open, observed: retry let through");
            let (reason, calls) = (RejectReason::Open, 1);
            self.emit(now, Signal::WouldReject { reason, calls });
        }
        self.signal_decision(now, question, msg.outcome, decision);
        MessageResult(decision)
    }
}

impl Handler<Admit> for ServiceSupervisor {
    type Result = Result<HeldPermit, Rejected>;

    fn handle(&mut self, msg: Admit, ctx: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        self.drain(ctx, now);
        let _span = msg.span.enter();
        let permit = self.admit(ctx, now)?;
        Ok(HeldPermit::new(permit, Arc::clone(&self.published)))
    }
}

impl Handler<Hedge> for ServiceSupervisor {
    type Result = Option<HeldPermit>;

    /// A hedge starts only while the breaker admits freely (closed, or disabled) and the retry
    /// budget has room: it is one more attempt against the dependency, like a retry.
    fn handle(&mut self, msg: Hedge, ctx: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        self.drain(ctx, now);
        let _span = msg.span.enter();
        self.breaker.poll(now.into_std());
        self.after_breaker_change(ctx, now);
        if !matches!(
            self.breaker.state(),
            BreakerState::Closed | BreakerState::Disabled
        ) {
            tracing::debug!(service = %self.name, "hedge not started: breaker not closed");
            return None;
        }
        if !self.budget.try_retry(now) {
            tracing::debug!(service = %self.name, "hedge not started: retry budget exhausted");
            return None;
        }
        let permit = self.admit(ctx, now).ok()?;
        let (after, hedge) = (msg.after, msg.hedge);
        self.emit(now, Signal::Hedged { after, hedge });
        Some(HeldPermit::new(permit, Arc::clone(&self.published)))
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;
    use crate::breaker::{BreakerConfig, Outcome};
    use crate::retry::{BudgetConfig, RetryConfig};

    fn question(attempts_made: u32) -> RetryQuestion {
        RetryQuestion {
            attempts_made,
            previous_delay: Duration::ZERO,
            deadline_left: None,
            no_retry: false,
        }
    }

    struct Cores {
        retry: RetryPolicy,
        breaker: Breaker,
        budget: Budget,
    }

    impl Cores {
        fn new(retry: RetryConfig) -> Self {
            Cores {
                budget: Budget::local(retry.budget.clone()),
                retry: RetryPolicy::new(retry, 7),
                breaker: Breaker::new(BreakerConfig::consecutive(1), 7),
            }
        }

        fn decide(&mut self, question: RetryQuestion, hint: Option<Duration>) -> RetryDecision {
            self.decide_with(question, hint, OpenBreaker::Stops).0
        }

        fn decide_with(
            &mut self,
            question: RetryQuestion,
            hint: Option<Duration>,
            open: OpenBreaker,
        ) -> (RetryDecision, bool) {
            decide_retry(
                question,
                hint,
                Instant::now(),
                &mut self.retry,
                (&self.breaker, open),
                &mut self.budget,
            )
        }
    }

    const DELAY: Duration = Duration::from_millis(100);

    #[test]
    fn retries_until_the_attempts_are_spent() {
        let mut cores =
            Cores::new(RetryConfig::constant(3, DELAY).budget(crate::retry::BudgetConfig::off()));
        assert_eq!(
            cores.decide(question(1), None),
            RetryDecision::RetryAfter(DELAY)
        );
        assert_eq!(
            cores.decide(question(2), None),
            RetryDecision::RetryAfter(DELAY)
        );
        assert_eq!(
            cores.decide(question(3), None),
            RetryDecision::Stop(Stop::Exhausted)
        );
    }

    #[test]
    fn a_call_that_must_not_run_twice_is_never_retried() {
        let mut cores =
            Cores::new(RetryConfig::constant(3, DELAY).budget(crate::retry::BudgetConfig::off()));
        let once = RetryQuestion {
            no_retry: true,
            ..question(1)
        };
        assert_eq!(
            cores.decide(once, None),
            RetryDecision::Stop(Stop::Exhausted)
        );
        // Even with a hint above max_delay: no deferral for a call with no retry to defer.
        let hint = Some(Duration::from_secs(3600));
        assert_eq!(
            cores.decide(once, hint),
            RetryDecision::Stop(Stop::Exhausted)
        );
    }

    #[test]
    fn a_hint_above_max_delay_defers_and_the_deadline_stops() {
        let mut cores = Cores::new(
            RetryConfig::constant(3, DELAY)
                .max_delay(Duration::from_secs(1))
                .budget(crate::retry::BudgetConfig::off()),
        );
        let hint = Duration::from_secs(5);
        assert_eq!(
            cores.decide(question(1), Some(hint)),
            RetryDecision::Stop(Stop::Deferred(hint))
        );
        let near = RetryQuestion {
            deadline_left: Some(DELAY / 2),
            ..question(1)
        };
        assert_eq!(
            cores.decide(near, None),
            RetryDecision::Stop(Stop::NoTimeLeft)
        );
    }

    #[test]
    fn no_retry_into_a_breaker_still_open_when_the_delay_ends() {
        let mut cores =
            Cores::new(RetryConfig::constant(3, DELAY).budget(crate::retry::BudgetConfig::off()));
        let now = Instant::now().into_std();
        let permit = cores.breaker.try_acquire(now).unwrap();
        cores.breaker.record(permit, Outcome::failure(DELAY), now);
        assert_eq!(cores.breaker.state(), BreakerState::Open);
        assert!(matches!(
            cores.decide(question(1), None),
            RetryDecision::Stop(Stop::Open(Some(_)))
        ));
        cores.breaker.force_open(now);
        assert_eq!(
            cores.decide(question(1), None),
            RetryDecision::Stop(Stop::Open(None))
        );
    }

    #[test]
    fn a_breaker_that_observes_lets_the_retry_go_as_its_shadow_and_says_so() {
        let mut cores =
            Cores::new(RetryConfig::constant(3, DELAY).budget(crate::retry::BudgetConfig::off()));
        let now = Instant::now().into_std();
        let permit = cores.breaker.try_acquire(now).unwrap();
        cores.breaker.record(permit, Outcome::failure(DELAY), now);
        assert_eq!(cores.breaker.state(), BreakerState::Open);
        // Enforced: stopped, nothing observed.
        let (decision, observed) = cores.decide_with(question(1), None, OpenBreaker::Stops);
        assert!(matches!(decision, RetryDecision::Stop(Stop::Open(Some(_)))));
        assert!(!observed);
        // Observed: the same retry goes, a shadow for the breaker, and the would-be refusal is
        // reported.
        assert_eq!(
            cores.decide_with(question(1), None, OpenBreaker::Observed),
            (RetryDecision::ShadowRetryAfter(DELAY), true)
        );
        // A shadow already: the breaker is not asked, nothing is reported again.
        assert_eq!(
            cores.decide_with(question(1), None, OpenBreaker::Ignored),
            (RetryDecision::RetryAfter(DELAY), false)
        );
        // The rest of the decision still applies: no attempts left is no attempts left.
        assert_eq!(
            cores.decide_with(question(3), None, OpenBreaker::Observed),
            (RetryDecision::Stop(Stop::Exhausted), false)
        );
        // A breaker forced open by an operator stops the retry in either mode.
        cores.breaker.force_open(now);
        assert_eq!(
            cores.decide_with(question(1), None, OpenBreaker::Observed),
            (RetryDecision::Stop(Stop::Open(None)), false)
        );
    }

    #[test]
    fn an_observed_open_breaker_is_reported_even_when_the_budget_stops_the_retry() {
        let budget = BudgetConfig {
            min_per_second: 0,
            ratio: 0.0,
            ..BudgetConfig::default()
        };
        let mut cores = Cores::new(RetryConfig::constant(3, DELAY).budget(budget));
        let now = Instant::now().into_std();
        let permit = cores.breaker.try_acquire(now).unwrap();
        cores.breaker.record(permit, Outcome::failure(DELAY), now);
        assert_eq!(
            cores.decide_with(question(1), None, OpenBreaker::Observed),
            (RetryDecision::Stop(Stop::Budget), true)
        );
    }

    #[test]
    fn the_budget_refuses_a_retry_it_cannot_pay_for() {
        let budget = BudgetConfig {
            min_per_second: 0,
            ratio: 0.0,
            ..BudgetConfig::default()
        };
        let mut cores = Cores::new(RetryConfig::constant(3, DELAY).budget(budget));
        assert_eq!(
            cores.decide(question(1), None),
            RetryDecision::Stop(Stop::Budget)
        );
    }
}
