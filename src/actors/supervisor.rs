//! [`ServiceSupervisor`]: the actor that owns one dependency's breaker, health window, retry
//! policy and budget. It decides; the calls run in their callers' tasks.
//!
//! The supervisor is the only writer of its state. It publishes the breaker state for the
//! handles (so a Closed-state call is admitted without a message), drains the callers' reports
//! in batches (at most one wake-up per [`BATCH_WINDOW`] while calls flow), records each failed
//! attempt and decides its retry when asked ([`AttemptFailed`]), and hands out half-open probe
//! permits ([`Admit`]). Every message it handles drains the pending reports first, so the
//! breaker sees outcomes in the order they were reported and a query reads its caller's own
//! writes. A call never lives in the actor: the mailbox is never blocked by one, and no
//! `ResponseActFuture` is re-polled per wake-up (quadratic in the calls in flight).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::{MessageResponse, OneshotSender};

use actix::prelude::*;
use rand::RngCore;
use tokio::sync::watch;
use tokio::time::Instant;

use super::builder::SupervisorBuilder;
use super::call_driver;
use super::handle::ServiceHandle;
use super::published::Published;
use crate::breaker::{Breaker, BreakerState, Permit, Rejected};
use crate::chaos::{FaultConfig, FaultInjector};
use crate::config::SupervisorConfig;
use crate::error::{CallError, ConfigError};
use crate::health::{HealthSnapshot, HealthStats, HealthStatus, HealthWindow};
use crate::hedge::HedgeConfig;
use crate::limit::ConcurrencyLimit;
use crate::messages::{
    Admit, AttemptFailed, AttemptOutcome, AttemptRecord, BreakerStatus, Call, CallCounts,
    ClearFaults, DisableBreaker, Drain, EventKind, ForceOpen, GetBreakerStatus, GetCallCounts,
    GetHealth, Hedge, HeldPermit, InjectFaults, Report, ResetBreaker, RetryDecision, RetryQuestion,
    StopSupervisor, Subscribe, SupervisorEvent,
};
use crate::observe::{CallOutcome, FaultKind, RejectReason, RetryReason};
use crate::retry::{RetryBudget, RetryPolicy};
use crate::throttle::Throttle;

mod reconfigure;

/// How often, at most, the health status is re-evaluated on the call path (it sorts the latency
/// window). Queries and breaker transitions always evaluate it.
const HEALTH_EVALUATION_INTERVAL: Duration = Duration::from_millis(50);

/// While callers' reports flow, the supervisor drains them once per batch window (and on every
/// message it handles): a lone caller making back-to-back calls wakes it once per window, not
/// once per call. Closed-state bookkeeping lags the calls by about this much at most.
pub const BATCH_WINDOW: Duration = Duration::from_millis(1);

/// The supervisor of one dependency. Start it with [`ServiceSupervisor::builder`]; talk to it
/// through the returned [`ServiceHandle`](crate::ServiceHandle) or its `Addr`.
pub struct ServiceSupervisor {
    name: Arc<str>,
    /// The few settings the supervisor reads after start (the rest lives in its cores and in
    /// the published call settings; an idle supervisor keeps no copy of the whole config).
    settings: Settings,
    breaker: Breaker,
    health: HealthWindow,
    retry: RetryPolicy,
    budget: RetryBudget,
    /// Client-side adaptive throttling, when configured.
    throttle: Option<Box<Throttle>>,
    /// The reject probability last published to the handles.
    throttle_published: f64,
    /// The adaptive concurrency limit, when configured.
    limiter: Option<Box<ConcurrencyLimit>>,
    /// Hedging, when configured: its delay is published after each health evaluation.
    hedge: Option<Box<HedgeConfig>>,
    /// The limit last reported in a [`EventKind::LimitChanged`].
    limit_reported: u32,
    /// The seed the supervisor's generators derive from.
    seed: u64,
    /// Fault injections started so far (each draws from its own seed unless given one).
    fault_injections: u64,
    published: Arc<Published>,
    counts: CallCounts,
    health_status: HealthStatus,
    /// When the health status is next re-evaluated on the call path.
    health_due: Option<Instant>,
    breaker_timer: Option<(Instant, SpawnHandle)>,
    /// The next health re-evaluation without a call or query.
    health_timer: Option<(Instant, SpawnHandle)>,
    /// A drain is scheduled one batch window ahead.
    drain_timer_armed: bool,
    /// Stopped: the last reports are applied, but no timer is set any more (the arbiter's
    /// runtime may be going away).
    stopping: bool,
    subscribers: Vec<Recipient<SupervisorEvent>>,
    /// The parts of the configuration a [reload](reconfigure) compares against and that no
    /// core keeps.
    configured: reconfigure::Configured,
    /// Never sent on: dropped with the supervisor (stopped, or its arbiter gone), which wakes
    /// every call in flight (answered `SupervisorGone`) and every
    /// [`ServiceHandle::stopped`](crate::ServiceHandle::stopped) watcher.
    alive: watch::Sender<()>,
}

/// What a supervisor keeps of its configuration after start.
#[derive(Debug, Clone, Copy)]
struct Settings {
    max_in_flight: u32,
    mailbox_capacity: usize,
    /// Calls allowed in flight before any concurrency-limit sample.
    initial_limit: u32,
    /// The rate limiter's factor while a retry-after hint lasts (1: ignore hints).
    retry_after_factor: f64,
}

impl Settings {
    fn of(config: &SupervisorConfig) -> Self {
        Settings {
            max_in_flight: config.max_in_flight,
            mailbox_capacity: config.mailbox_capacity,
            initial_limit: config.initial_limit(),
            retry_after_factor: config
                .rate_limit
                .as_ref()
                .map_or(1.0, |limit| limit.retry_after_factor),
        }
    }
}

impl std::fmt::Debug for ServiceSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSupervisor")
            .field("name", &self.name)
            .field("state", &self.breaker.state())
            .field("health", &self.health_status)
            .field("in_flight", &self.published.in_flight())
            .finish_non_exhaustive()
    }
}

impl ServiceSupervisor {
    /// A builder for the supervisor of the dependency `name`.
    pub fn builder(name: impl Into<String>) -> SupervisorBuilder {
        SupervisorBuilder::new(name)
    }

    /// A supervisor from a validated configuration.
    pub(crate) fn new(
        name: Arc<str>,
        config: SupervisorConfig,
        published: Arc<Published>,
        alive: watch::Sender<()>,
    ) -> Self {
        let seed = config.seed.unwrap_or_else(|| rand::rng().next_u64());
        let faults = config.faults.clone();
        let mut supervisor = ServiceSupervisor {
            breaker: Breaker::new(config.breaker.clone(), seed),
            health: HealthWindow::new(config.health.clone()),
            retry: RetryPolicy::new(config.retry.clone(), seed.rotate_left(17) ^ 0x9e37_79b9),
            budget: RetryBudget::new(config.retry.budget.clone()),
            throttle: config.throttle.clone().map(|throttle| {
                Box::new(Throttle::new(throttle, seed.rotate_left(29) ^ 0x7f4a_7c15))
            }),
            throttle_published: 0.0,
            limiter: config.concurrency_limit.as_ref().map(|limit| {
                Box::new(ConcurrencyLimit::new(limit).with_ceiling(config.max_in_flight))
            }),
            limit_reported: 0,
            hedge: config.hedge.clone().map(Box::new),
            seed,
            fault_injections: 0,
            name,
            settings: Settings::of(&config),
            published,
            counts: CallCounts::default(),
            health_status: HealthStatus::Healthy,
            health_due: None,
            breaker_timer: None,
            health_timer: None,
            drain_timer_armed: false,
            stopping: false,
            subscribers: Vec::new(),
            configured: reconfigure::Configured::of(&config),
            alive,
        };
        if let Some(hedge) = &supervisor.hedge {
            // A fixed delay holds from the first call; a derived one once the window knows
            // the dependency's latency.
            let delay = hedge.delay(&mut supervisor.health, Self::now().into_std());
            supervisor.published.publish_hedge_delay(delay);
        }
        // Configured faults (validated with the configuration) apply from the first call.
        if let Some(faults) = faults {
            supervisor.start_faults(faults, Self::now());
        }
        supervisor
    }

    /// Starts injecting `faults` (already checked against the configuration); replaces any
    /// injection in progress.
    fn start_faults(&mut self, faults: FaultConfig, now: Instant) {
        let seed = faults.seed.unwrap_or_else(|| {
            (self.seed ^ 0x6a09_e667_f3bc_c908).wrapping_add(self.fault_injections)
        });
        self.fault_injections += 1;
        tracing::warn!(
            service = %self.name,
            error_probability = faults.error_probability,
            latency_probability = faults.latency_probability,
            latency = ?faults.latency,
            hang_probability = faults.hang_probability,
            expires_after = ?faults.expires_after,
            "fault injection on"
        );
        let injector = FaultInjector::new(faults, seed, now.into_std());
        self.published.set_faults(Some(injector));
    }

    /// A caller injected a fault into one of its attempts.
    fn fault_injected(&mut self, now: Instant, kind: FaultKind) {
        self.published.metrics.fault_injected(kind);
        tracing::debug!(service = %self.name, kind = kind.as_str(), "fault injected");
        self.publish(now, EventKind::FaultInjected { kind });
    }

    /// The dependency's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn now() -> Instant {
        Instant::now()
    }

    /// Sends `kind` to every live subscriber; forgets the ones that are gone.
    fn publish(&mut self, now: Instant, kind: EventKind) {
        if self.subscribers.is_empty() {
            return;
        }
        let event = SupervisorEvent {
            service: Arc::clone(&self.name),
            at: now.into_std(),
            kind,
        };
        self.subscribers.retain(|subscriber| subscriber.connected());
        for subscriber in &self.subscribers {
            subscriber.do_send(event.clone());
        }
    }

    /// Asks the breaker for a permit; publishes any transition it causes. A refusal is not
    /// counted here: the call's answer is, when its caller reports it.
    fn admit(&mut self, ctx: &mut Context<Self>, now: Instant) -> Result<Permit, Rejected> {
        let admission = self.breaker.try_acquire(now.into_std());
        self.after_breaker_change(ctx, now);
        if let Err(rejected) = admission {
            self.published.metrics.rejected(RejectReason::Open);
            tracing::debug!(
                service = %self.name,
                state = rejected.state.as_str(),
                retry_after = ?rejected.retry_after,
                "call rejected by circuit breaker"
            );
        }
        admission
    }

    /// Records one attempt into the breaker and the health window (and, for a call's first
    /// attempt, the call into the retry budget).
    fn record_attempt(&mut self, ctx: &mut Context<Self>, record: AttemptRecord, now: Instant) {
        use crate::breaker::Outcome;
        let AttemptRecord {
            permit,
            outcome,
            duration,
            first,
            in_flight,
        } = record;
        self.sample_limit(now, outcome, duration, in_flight);
        self.counts.attempts += 1;
        if first {
            self.budget.record_call(now.into_std());
        }
        if let Some(throttle) = &mut self.throttle {
            // Accepted: the dependency answered (or the answer says nothing about it).
            let accepted = match outcome {
                AttemptOutcome::Success | AttemptOutcome::Ignored => Some(true),
                AttemptOutcome::Failure | AttemptOutcome::TimedOut | AttemptOutcome::Panicked => {
                    Some(false)
                }
                AttemptOutcome::Cancelled | AttemptOutcome::Superseded => None,
            };
            if let Some(accepted) = accepted {
                throttle.count(now.into_std(), accepted);
            }
        }
        let (breaker_outcome, healthy) = match outcome {
            AttemptOutcome::Cancelled => {
                self.breaker.release(permit, now.into_std());
                self.after_breaker_change(ctx, now);
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
                self.published.metrics.timeout();
                tracing::debug!(service = %self.name, after = ?duration, "attempt timed out");
                self.publish(now, EventKind::TimedOut { after: duration });
                (Outcome::failure(duration), false)
            }
        };
        self.breaker.record(permit, breaker_outcome, now.into_std());
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

    /// Drains breaker transitions: logs them, exports them, publishes the new state for the
    /// handles, and (re)arms the timer of the next time-driven transition.
    fn after_breaker_change(&mut self, ctx: &mut Context<Self>, now: Instant) {
        let transitions: Vec<_> = {
            let pending = self.breaker.drain_transitions();
            if pending.len() == 0 {
                // The common case on the call path: nothing changed, nothing to collect.
                return;
            }
            pending.collect()
        };
        for transition in transitions {
            let snapshot = transition.snapshot;
            tracing::info!(
                service = %self.name,
                from = transition.from.as_str(),
                to = transition.to.as_str(),
                reason = transition.reason.as_str(),
                open_for = ?transition.open_for,
                calls = snapshot.calls,
                failures = snapshot.failures,
                slow_calls = snapshot.slow_calls,
                failure_rate = snapshot.failure_rate,
                slow_call_rate = snapshot.slow_call_rate,
                consecutive_failures = snapshot.consecutive_failures,
                "circuit breaker transition"
            );
            self.published
                .metrics
                .transition(transition.from, transition.to);
            self.publish(now, EventKind::StateChanged(transition));
        }
        let open_until = self.breaker.open_until().map(Instant::from_std);
        self.published
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

    fn health_snapshot(&mut self, ctx: &mut Context<Self>, now: Instant) -> HealthSnapshot {
        let (status, stats) = self.evaluate_health(ctx, now);
        HealthSnapshot {
            service: self.name.to_string(),
            status,
            breaker: self.breaker.state(),
            stats,
        }
    }

    /// Re-evaluates the health status at `at` (or earlier, if already due sooner).
    fn schedule_health(&mut self, ctx: &mut Context<Self>, at: Instant) {
        if self.stopping {
            return;
        }
        if self
            .health_timer
            .as_ref()
            .is_some_and(|(due, _)| *due <= at)
        {
            return;
        }
        if let Some((_, handle)) = self.health_timer.take() {
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(at.saturating_duration_since(Self::now()), |act, ctx| {
            act.health_timer = None;
            let now = Self::now();
            act.drain(ctx, now);
            act.evaluate_health(ctx, now);
        });
        self.health_timer = Some((at, handle));
    }

    /// Re-evaluates the health status; reports a change. Schedules the next evaluation for
    /// when the window's oldest sample ages out (`max_age`), so a window emptied by time alone
    /// is reported too, without any call or query.
    fn evaluate_health(
        &mut self,
        ctx: &mut Context<Self>,
        now: Instant,
    ) -> (HealthStatus, HealthStats) {
        self.health_due = Some(now + HEALTH_EVALUATION_INTERVAL);
        if let Some(expiry) = self.health.next_expiry(now.into_std()) {
            self.schedule_health(ctx, Instant::from_std(expiry));
        }
        let breaker_open = matches!(
            self.breaker.state(),
            BreakerState::Open | BreakerState::ForcedOpen
        );
        let stats = self.health.stats(now.into_std());
        if let Some(hedge) = self.hedge.as_deref().filter(|hedge| hedge.is_derived()) {
            let delay = hedge.delay(&mut self.health, now.into_std());
            self.published.publish_hedge_delay(delay);
        }
        let mut status = self.health.config().classify(&stats, breaker_open);
        if self.breaker.state() == BreakerState::HalfOpen {
            // Recovery is being tested, not yet confirmed: at best degraded.
            status = status.max(HealthStatus::Degraded);
        }
        if status != self.health_status {
            tracing::info!(
                service = %self.name,
                from = self.health_status.as_str(),
                to = status.as_str(),
                "service health changed"
            );
            let from = std::mem::replace(&mut self.health_status, status);
            self.published.metrics.health(status);
            self.publish(
                now,
                EventKind::HealthChanged {
                    from,
                    to: status,
                    stats,
                },
            );
        }
        (status, stats)
    }

    /// Applies the callers' pending reports, in the order they were handed over. Returns how
    /// many there were.
    fn drain(&mut self, ctx: &mut Context<Self>, now: Instant) -> usize {
        let published = Arc::clone(&self.published);
        let drained = published
            .reports
            .drain(|report| self.apply(ctx, report, now));
        if drained > 0 {
            self.update_throttle(now);
        }
        drained
    }

    /// Feeds a finished attempt to the adaptive concurrency limit and publishes the limit when it
    /// moves. A timeout is a drop (the dependency is queueing); an error is no sample (it says
    /// little about queueing), a success or an ignored error is a normal one.
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
        self.published.publish_limit(limit);
        let reported = self.limit_reported;
        if limit.abs_diff(reported) >= (reported / 10).max(1) {
            self.limit_reported = limit;
            tracing::debug!(service = %self.name, from = reported, to = limit, "concurrency limit changed");
            self.publish(
                now,
                EventKind::LimitChanged {
                    from: reported,
                    to: limit,
                },
            );
        }
    }

    /// The dependency asked for `hint` of quiet (a 429's `Retry-After`): the rate limiter, if
    /// any and if told to, lowers the rate until then.
    fn slow_down(&mut self, now: Instant, hint: Duration) {
        let factor = self.settings.retry_after_factor;
        if factor >= 1.0 {
            return;
        }
        let until = now + hint;
        if !self
            .published
            .penalize_rate(now.into_std(), until.into_std(), factor)
        {
            return;
        }
        tracing::info!(service = %self.name, ?hint, factor, "rate lowered on the dependency's retry-after");
        self.publish(
            now,
            EventKind::RateLowered {
                factor,
                until: until.into_std(),
            },
        );
    }

    /// Publishes the throttle's reject probability when it changed; reports it when it
    /// crossed 0, 10 % or 50 %.
    fn update_throttle(&mut self, now: Instant) {
        let Some(throttle) = &self.throttle else {
            return;
        };
        let snapshot = throttle.snapshot(now.into_std());
        let probability = snapshot.reject_probability;
        if probability == self.throttle_published {
            return;
        }
        let band = |p: f64| u8::from(p > 0.0) + u8::from(p > 0.1) + u8::from(p > 0.5);
        let from = std::mem::replace(&mut self.throttle_published, probability);
        self.published.publish_throttle(probability);
        self.published.metrics.throttle(probability);
        if band(from) != band(probability) {
            tracing::info!(
                service = %self.name,
                from,
                to = probability,
                requests = snapshot.requests,
                accepts = snapshot.accepts,
                "adaptive throttle changed"
            );
            self.publish(
                now,
                EventKind::ThrottleChanged {
                    from,
                    to: probability,
                    requests: snapshot.requests,
                    accepts: snapshot.accepts,
                },
            );
        }
    }

    fn apply(&mut self, ctx: &mut Context<Self>, report: Report, now: Instant) {
        if report.throttled {
            if let Some(throttle) = &mut self.throttle {
                throttle.count(now.into_std(), false);
            }
            self.published.metrics.rejected(RejectReason::Throttled);
            if report.answer.is_none() {
                self.counts.rejected_throttled += 1;
                self.published.metrics.call(CallOutcome::Rejected, 0.0);
            }
        }
        if let Some(kind) = report.fault {
            self.fault_injected(now, kind);
        }
        if report.hedge_won {
            self.counts.hedges_won += 1;
            self.published.metrics.hedge_won();
        }
        if let Some(attempt) = report.attempt {
            self.record_attempt(ctx, attempt, now);
        }
        if let Some((answer, call_duration)) = report.answer {
            self.count_answer(answer, call_duration);
        }
    }

    /// Drains again one batch window from now, and then once per window for as long as
    /// reports keep coming; after a window without any, lets the callers wake it again.
    fn arm_drain_timer(&mut self, ctx: &mut Context<Self>) {
        if self.drain_timer_armed || self.stopping {
            return;
        }
        self.drain_timer_armed = true;
        ctx.run_later(BATCH_WINDOW, |act, ctx| {
            act.drain_timer_armed = false;
            let drained = act.drain(ctx, Self::now());
            if drained > 0 || act.published.reports.rest() {
                act.arm_drain_timer(ctx);
            }
        });
    }

    fn count_answer(&mut self, answer: CallOutcome, call_duration: Duration) {
        let counter = match answer {
            CallOutcome::Success => &mut self.counts.success,
            CallOutcome::Failure => &mut self.counts.failure,
            CallOutcome::Timeout => &mut self.counts.timeout,
            CallOutcome::Panic => &mut self.counts.panic,
            CallOutcome::Rejected => &mut self.counts.rejected_open,
            CallOutcome::Cancelled => &mut self.counts.cancelled,
            CallOutcome::Fallback => &mut self.counts.fallback,
            CallOutcome::Coalesced => &mut self.counts.coalesced,
        };
        *counter += 1;
        self.published
            .metrics
            .call(answer, call_duration.as_secs_f64());
    }
}

impl Actor for ServiceSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.settings.mailbox_capacity);
        let limit = self.settings.initial_limit;
        self.limit_reported = limit;
        self.published.metrics.limit(limit);
        self.published.metrics.state(self.breaker.state());
        self.published.metrics.health(self.health_status);
        tracing::debug!(service = %self.name, "supervisor started");
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        // What callers handed over until now still counts (metrics, last events).
        self.stopping = true;
        self.drain(ctx, Self::now());
        // Calls in flight learn it when `alive` is dropped with `self`, right after this.
        tracing::debug!(
            service = %self.name,
            in_flight = self.published.in_flight(),
            "supervisor stopped"
        );
    }
}

/// A call sent to the supervisor's address runs on its arbiter, through the same attempt loop
/// as a call made with a [`ServiceHandle`] (so its future need not be `Send`).
impl<T, E, F, Fut> Handler<Call<T, E, F>> for ServiceSupervisor
where
    T: 'static,
    E: 'static,
    F: FnMut() -> Fut + 'static,
    Fut: Future<Output = Result<T, E>> + 'static,
{
    type Result = CallReply<T, E>;

    fn handle(&mut self, call: Call<T, E, F>, ctx: &mut Context<Self>) -> Self::Result {
        let handle = ServiceHandle::new(
            Arc::clone(&self.name),
            ctx.address(),
            Arc::clone(&self.published),
            self.alive.subscribe(),
        );
        CallReply(Box::pin(async move {
            call_driver::run(&handle, call, None).await
        }))
    }
}

/// The supervisor's reply to a [`Call`] sent to its address: the call, run as its own task on
/// the supervisor's arbiter (so the mailbox is never blocked by it).
pub struct CallReply<T, E>(Pin<Box<dyn Future<Output = Result<T, CallError<E>>>>>);

impl<T, E> std::fmt::Debug for CallReply<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CallReply").finish_non_exhaustive()
    }
}

impl<T: 'static, E: 'static, F: 'static> MessageResponse<ServiceSupervisor, Call<T, E, F>>
    for CallReply<T, E>
{
    fn handle(
        self,
        _: &mut Context<ServiceSupervisor>,
        tx: Option<OneshotSender<Result<T, CallError<E>>>>,
    ) {
        actix::spawn(async move {
            let answer = self.0.await;
            if let Some(tx) = tx {
                // The caller may have gone; nobody is left to tell.
                let _ = tx.send(answer);
            }
        });
    }
}

impl Handler<Drain> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.drain(ctx, Self::now());
        self.arm_drain_timer(ctx);
    }
}

impl Handler<AttemptFailed> for ServiceSupervisor {
    type Result = MessageResult<AttemptFailed>;

    fn handle(&mut self, msg: AttemptFailed, ctx: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        self.drain(ctx, now);
        let record = AttemptRecord {
            permit: msg.permit.take(),
            outcome: msg.outcome,
            duration: msg.duration,
            first: msg.first,
            in_flight: msg.in_flight,
        };
        self.record_attempt(ctx, record, now);
        self.update_throttle(now);
        if let Some(hint) = msg.retry_after {
            self.slow_down(now, hint);
        }
        let decision = match msg.retry {
            Some(question) => self.decide_retry(question, msg.outcome, msg.retry_after, now),
            None => RetryDecision::Recorded,
        };
        MessageResult(decision)
    }
}

impl ServiceSupervisor {
    fn decide_retry(
        &mut self,
        msg: RetryQuestion,
        outcome: AttemptOutcome,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> RetryDecision {
        let retry = self.retry.config();
        if msg.attempts_made < retry.max_attempts {
            if let Some(hint) = retry_after.filter(|hint| *hint > retry.max_delay) {
                tracing::debug!(service = %self.name, retry_after = ?hint, "retry deferred: hint above max_delay");
                return RetryDecision::Deferred(hint);
            }
        }
        let Some(delay) = self
            .retry
            .next_delay(msg.attempts_made, msg.previous_delay, retry_after)
        else {
            return RetryDecision::Exhausted;
        };
        if msg.deadline_left.is_some_and(|left| delay >= left) {
            return RetryDecision::Exhausted;
        }
        // Not retried into an open breaker: if it will still be open when the delay ends,
        // stop now instead of sleeping to be rejected.
        let still_open = match self.breaker.state() {
            BreakerState::ForcedOpen => Some(None),
            BreakerState::Open => self
                .breaker
                .open_until()
                .map(Instant::from_std)
                .filter(|until| *until > now + delay)
                .map(|until| Some(until - now)),
            _ => None,
        };
        if let Some(retry_after) = still_open {
            self.published.metrics.rejected(RejectReason::Open);
            tracing::debug!(service = %self.name, "retry not sent into the open breaker");
            return RetryDecision::Open(retry_after);
        }
        if !self.budget.try_retry(now.into_std()) {
            self.counts.rejected_budget += 1;
            self.published.metrics.rejected(RejectReason::Budget);
            tracing::warn!(
                service = %self.name,
                attempts = msg.attempts_made,
                "retry rejected: retry budget exhausted"
            );
            self.publish(now, EventKind::RetryBudgetExhausted);
            return RetryDecision::Budget;
        }
        let reason = if outcome == AttemptOutcome::TimedOut {
            RetryReason::Timeout
        } else {
            RetryReason::Error
        };
        self.counts.retries += 1;
        self.published.metrics.retry(reason);
        tracing::debug!(
            service = %self.name,
            attempt = msg.attempts_made + 1,
            delay = ?delay,
            reason = reason.as_str(),
            "retrying"
        );
        self.publish(
            now,
            EventKind::RetryScheduled {
                attempt: msg.attempts_made + 1,
                delay,
                reason,
            },
        );
        RetryDecision::RetryAfter(delay)
    }
}

impl Handler<Admit> for ServiceSupervisor {
    type Result = Result<HeldPermit, Rejected>;

    fn handle(&mut self, _: Admit, ctx: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        self.drain(ctx, now);
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
        self.breaker.poll(now.into_std());
        self.after_breaker_change(ctx, now);
        if !matches!(
            self.breaker.state(),
            BreakerState::Closed | BreakerState::Disabled
        ) {
            tracing::debug!(service = %self.name, "hedge not started: breaker not closed");
            return None;
        }
        if !self.budget.try_retry(now.into_std()) {
            tracing::debug!(service = %self.name, "hedge not started: retry budget exhausted");
            return None;
        }
        let permit = self.admit(ctx, now).ok()?;
        self.counts.hedges += 1;
        self.published.metrics.hedge_started();
        tracing::debug!(service = %self.name, after = ?msg.after, hedge = msg.hedge, "hedging");
        self.publish(
            now,
            EventKind::Hedged {
                after: msg.after,
                hedge: msg.hedge,
            },
        );
        Some(HeldPermit::new(permit, Arc::clone(&self.published)))
    }
}

impl Handler<GetHealth> for ServiceSupervisor {
    type Result = MessageResult<GetHealth>;

    fn handle(&mut self, _: GetHealth, ctx: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        self.drain(ctx, now);
        self.breaker.poll(now.into_std());
        self.after_breaker_change(ctx, now);
        MessageResult(self.health_snapshot(ctx, now))
    }
}

impl Handler<GetBreakerStatus> for ServiceSupervisor {
    type Result = MessageResult<GetBreakerStatus>;

    fn handle(&mut self, _: GetBreakerStatus, ctx: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        self.drain(ctx, now);
        self.breaker.poll(now.into_std());
        self.after_breaker_change(ctx, now);
        MessageResult(BreakerStatus {
            state: self.breaker.state(),
            retry_after: self
                .breaker
                .open_until()
                .map(|until| Instant::from_std(until).saturating_duration_since(now)),
            window: self.breaker.window_snapshot(now.into_std()),
        })
    }
}

impl Handler<StopSupervisor> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, _: StopSupervisor, ctx: &mut Context<Self>) {
        tracing::info!(service = %self.name, "supervisor stop requested");
        ctx.stop();
    }
}

impl Handler<Subscribe> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

impl Handler<InjectFaults> for ServiceSupervisor {
    type Result = Result<(), ConfigError>;

    fn handle(&mut self, msg: InjectFaults, ctx: &mut Context<Self>) -> Self::Result {
        let call = self.published.settings();
        crate::config::check_faults(&msg.0, call.timeout, call.deadline)?;
        let now = Self::now();
        self.drain(ctx, now);
        self.start_faults(msg.0, now);
        Ok(())
    }
}

impl Handler<ClearFaults> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, _: ClearFaults, ctx: &mut Context<Self>) {
        self.drain(ctx, Self::now());
        self.published.set_faults(None);
        tracing::info!(service = %self.name, "fault injection off");
    }
}

impl Handler<GetCallCounts> for ServiceSupervisor {
    type Result = MessageResult<GetCallCounts>;

    fn handle(&mut self, _: GetCallCounts, ctx: &mut Context<Self>) -> Self::Result {
        self.drain(ctx, Self::now());
        let mut counts = self.counts;
        counts.rejected_open += self.published.fast_rejections();
        counts.rejected_overloaded += self.published.overloads();
        counts.rejected_rate_limited += self.published.rate_limited();
        MessageResult(counts)
    }
}

macro_rules! manual_command {
    ($msg:ty, $method:ident, $what:literal) => {
        impl Handler<$msg> for ServiceSupervisor {
            type Result = MessageResult<$msg>;

            fn handle(&mut self, _: $msg, ctx: &mut Context<Self>) -> Self::Result {
                let now = Self::now();
                self.drain(ctx, now);
                tracing::info!(service = %self.name, command = $what, "manual breaker command");
                self.breaker.$method(now.into_std());
                if $what == "reset" {
                    self.health.clear();
                }
                self.after_breaker_change(ctx, now);
                self.evaluate_health(ctx, now);
                MessageResult(self.breaker.state())
            }
        }
    };
}

manual_command!(ResetBreaker, reset, "reset");
manual_command!(ForceOpen, force_open, "force_open");
manual_command!(DisableBreaker, disable, "disable");
