//! The health status: re-evaluated on the call path at most every
//! [`HEALTH_EVALUATION_INTERVAL`] (it sorts the latency window), on every query and breaker
//! transition, and by a timer when the window's oldest sample ages out, so a window emptied by
//! time alone is reported too. The hedge delay derived from the window is published here.

use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::signals::Signal;
use super::ServiceSupervisor;
use crate::breaker::BreakerState;
use crate::health::{HealthSnapshot, HealthStats, HealthStatus};

/// How often, at most, the health status is re-evaluated on the call path (it sorts the latency
/// window). Queries and breaker transitions always evaluate it.
const HEALTH_EVALUATION_INTERVAL: Duration = Duration::from_millis(50);

impl ServiceSupervisor {
    pub(super) fn health_snapshot(
        &mut self,
        ctx: &mut Context<Self>,
        now: Instant,
    ) -> HealthSnapshot {
        let (status, stats) = self.evaluate_health(ctx, now);
        HealthSnapshot {
            service: self.name.to_string(),
            status,
            breaker: self.breaker.state(),
            stats,
            fleet: self.fleet_status(),
        }
    }

    /// Re-evaluates the health status at `at` (or earlier, if already due sooner).
    #[inline(always)]
    pub(super) fn schedule_health(&mut self, ctx: &mut Context<Self>, at: Instant) {
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
        self.arm_health_timer(ctx, at);
    }

    /// Arms the health timer for `at`, in place of a later one.
    fn arm_health_timer(&mut self, ctx: &mut Context<Self>, at: Instant) {
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
    pub(super) fn evaluate_health(
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
            self.published.hedge_delay.publish(delay);
        }
        let mut status = self.health.config().classify(&stats, breaker_open);
        if self.breaker.state() == BreakerState::HalfOpen {
            // Recovery is being tested, not yet confirmed: at best degraded.
            status = status.max(HealthStatus::Degraded);
        }
        if status != self.health_status {
            let from = std::mem::replace(&mut self.health_status, status);
            self.emit(
                now,
                Signal::HealthChanged {
                    from,
                    to: status,
                    stats,
                },
            );
        }
        (status, stats)
    }
}
