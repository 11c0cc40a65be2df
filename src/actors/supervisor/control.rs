//! The supervisor's side of the public messages other than calls: queries (health, breaker
//! status, counts), manual breaker commands, fault injection, subscriptions and stop. Each
//! drains the pending reports first, so a query reads its caller's own writes.

use actix::prelude::*;
use tokio::time::Instant;

use super::ServiceSupervisor;
use crate::actors::shared::handoff::Drain;
use crate::chaos::{FaultConfig, FaultInjector};
use crate::error::ConfigError;
use crate::messages::{
    BreakerStatus, ClearFaults, DisableBreaker, ForceOpen, GetBreakerStatus, GetCallCounts,
    GetHealth, InjectFaults, ResetBreaker, StopSupervisor, Subscribe,
};

impl ServiceSupervisor {
    /// Starts injecting `faults` (already checked against the configuration); replaces any
    /// injection in progress.
    pub(super) fn start_faults(&mut self, faults: FaultConfig, now: Instant) {
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
        self.published.faults.set(Some(injector));
    }
}

impl Handler<Drain> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.drain(ctx, Self::now());
        self.arm_drain_timer(ctx);
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
        let call = self.published.settings.load();
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
        self.published.faults.set(None);
        tracing::info!(service = %self.name, "fault injection off");
    }
}

impl Handler<GetCallCounts> for ServiceSupervisor {
    type Result = MessageResult<GetCallCounts>;

    fn handle(&mut self, _: GetCallCounts, ctx: &mut Context<Self>) -> Self::Result {
        self.drain(ctx, Self::now());
        MessageResult(self.counts)
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
