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

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand::RngCore;
use tokio::sync::watch;
use tokio::time::Instant;

use super::shared::member::KeyShare;
use super::shared::shadow::Modes;
use super::shared::{Published, TALLIED, WOULD_REJECT_TALLIED};
use crate::breaker::Breaker;
use crate::config::SupervisorConfig;
use crate::health::{HealthStatus, HealthWindow};
use crate::hedge::HedgeConfig;
use crate::limit::ConcurrencyLimit;
use crate::messages::CallCounts;
use crate::outcome::RejectReason;
use crate::retry::RetryPolicy;
use crate::throttle::Throttle;
use signals::Signal;

mod control;
mod decide;
pub(crate) mod fleet;
mod health;
mod protocol;
mod reconfigure;
mod record;
mod signals;

pub(crate) use protocol::{Admit, AttemptFailed, Cause, Hedge, RetryDecision, RetryQuestion, Stop};

/// While callers' reports flow, the supervisor drains them once per batch window (and on every
/// message it handles): a lone caller making back-to-back calls wakes it once per window, not
/// once per call. Closed-state bookkeeping lags the calls by about this much at most.
pub(crate) const BATCH_WINDOW: Duration = Duration::from_millis(1);

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
    budget: fleet::Budget,
    /// The fleet's store, when the service is part of a [fleet](crate::fleet).
    fleet: Option<Box<fleet::FleetLink>>,
    /// The fleet quota's wake-ups, until the lease driver starts.
    leases: Option<Arc<crate::actors::shared::rate_limit::Leases>>,
    /// Client-side adaptive throttling, when configured.
    throttle: Option<Box<Throttle>>,
    /// The reject probability last published to the handles.
    throttle_published: f64,
    /// The refusal probability of each criticality last published for the handles.
    throttle_shares: [f64; 3],
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
    subscribers: Vec<crate::messages::Subscriber>,
    /// The parts of the configuration a [reload](reconfigure) compares against and that no
    /// core keeps.
    configured: reconfigure::Configured,
    /// Never sent on: dropped with the supervisor (stopped, or its arbiter gone), which wakes
    /// every call in flight (answered `SupervisorGone`) and every
    /// [`ServiceHandle::stopped`](crate::ServiceHandle::stopped) watcher.
    alive: watch::Sender<()>,
    /// One key of a keyed service: the open-key count it reports to and asks before tripping.
    member: Option<Arc<KeyShare>>,
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
    /// The policies that only observe (also published for the callers).
    modes: Modes,
}

impl Settings {
    fn of(config: &SupervisorConfig) -> Self {
        Settings {
            modes: Modes::of(config),
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
            .field("in_flight", &self.published.bulkhead.in_flight())
            .finish_non_exhaustive()
    }
}

impl ServiceSupervisor {
    /// A supervisor from a validated configuration.
    pub(crate) fn new(
        name: Arc<str>,
        config: SupervisorConfig,
        published: Arc<Published>,
        alive: watch::Sender<()>,
        member: Option<Arc<KeyShare>>,
        fleet: Option<fleet::FleetLink>,
    ) -> Self {
        let leases = published.rate_limit.leases();
        let seed = config.seed.unwrap_or_else(|| rand::rng().next_u64());
        let faults = config.faults.clone();
        let mut supervisor = ServiceSupervisor {
            breaker: Breaker::new(config.breaker.clone(), seed),
            health: HealthWindow::new(config.health.clone()),
            retry: RetryPolicy::new(config.retry.clone(), seed.rotate_left(17) ^ 0x9e37_79b9),
            budget: fleet::Budget::new(&config),
            fleet: fleet.map(Box::new),
            leases,
            throttle: config.throttle.clone().map(|throttle| {
                Box::new(Throttle::new(throttle, seed.rotate_left(29) ^ 0x7f4a_7c15))
            }),
            throttle_published: 0.0,
            throttle_shares: [0.0; 3],
            limiter: config
                .concurrency_limit
                .as_ref()
                .map(|limit| Box::new(ConcurrencyLimit::new(limit).ceiling(config.max_in_flight))),
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
            member,
        };
        supervisor
            .published
            .observing
            .publish(supervisor.settings.modes);
        supervisor.publish_limit(supervisor.settings.initial_limit);
        if let Some(hedge) = &supervisor.hedge {
            // A fixed delay holds from the first call; a derived one once the window knows
            // the dependency's latency.
            let delay = hedge.delay(&mut supervisor.health, Self::now().into_std());
            supervisor.published.hedge_delay.publish(delay);
        }
        // Configured faults (validated with the configuration) apply from the first call.
        if let Some(faults) = faults {
            supervisor.start_faults(faults, Self::now());
        }
        supervisor
    }

    /// The dependency's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn now() -> Instant {
        Instant::now()
    }

    /// Applies the callers' pending reports, in the order they were handed over. Returns how
    /// many there were.
    fn drain(&mut self, ctx: &mut Context<Self>, now: Instant) -> usize {
        let published = Arc::clone(&self.published);
        let drained = published
            .reports
            .drain(|report| self.apply(ctx, report, now));
        let tallies = self.published.reports.take_tallies();
        let (refused, would_reject) = tallies.split_at(TALLIED.len());
        for (&(reason, criticality), &calls) in TALLIED.iter().zip(refused) {
            if calls == 0 {
                continue;
            }
            self.record_refusals(now, reason, criticality, calls);
            self.emit(
                now,
                Signal::Refused {
                    reason,
                    criticality,
                    calls,
                },
            );
        }
        // Recorded as the refusals they would have been (a throttle counts them in their
        // class), then reported once per reason.
        let mut by_reason: [(RejectReason, u64); 4] = [
            (RejectReason::Open, 0),
            (RejectReason::RateLimited, 0),
            (RejectReason::Overloaded, 0),
            (RejectReason::Throttled, 0),
        ];
        for (&(reason, criticality), &calls) in WOULD_REJECT_TALLIED.iter().zip(would_reject) {
            if calls == 0 {
                continue;
            }
            self.record_refusals(now, reason, criticality, calls);
            if let Some((_, sum)) = by_reason.iter_mut().find(|(r, _)| *r == reason) {
                *sum += calls;
            }
        }
        for (reason, calls) in by_reason {
            if calls > 0 {
                self.emit(now, Signal::WouldReject { reason, calls });
            }
        }
        let drained = drained + tallies.iter().filter(|calls| **calls > 0).count();
        // Also without new reports: the window ages (a bucket leaving it moves the
        // probability), and the callers gate on what was published last. Refreshed at every
        // drain, the published probability depends on the window and the time alone, not on
        // how many reports happened to wake the supervisor (an observing throttle's shadows
        // bring more of them than the calls an enforcing one lets through).
        if drained > 0 || self.throttle.is_some() {
            self.update_throttle(now);
        }
        drained
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

    /// What a handle to this supervisor shares with it: the name, the shared cells, and the
    /// watch that tells a call the supervisor is gone.
    pub(crate) fn shared(&self) -> (Arc<str>, Arc<Published>, watch::Receiver<()>) {
        (
            Arc::clone(&self.name),
            Arc::clone(&self.published),
            self.alive.subscribe(),
        )
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
        let leases = self.leases.take();
        self.start_fleet(ctx, leases);
        tracing::debug!(service = %self.name, "supervisor started");
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        // What callers handed over until now still counts (metrics, last events).
        self.stopping = true;
        self.drain(ctx, Self::now());
        if let Some(share) = &self.member {
            share.gone(self.breaker.state());
        }
        // Calls in flight learn it when `alive` is dropped with `self`, right after this.
        tracing::debug!(
            service = %self.name,
            in_flight = self.published.bulkhead.in_flight(),
            "supervisor stopped"
        );
    }
}
