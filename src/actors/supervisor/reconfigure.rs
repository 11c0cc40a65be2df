//! [`Reconfigure`]: a running supervisor takes a new configuration without losing its state
//! where the change allows. The breaker keeps its state (an open breaker stays open until its
//! period ends), the health window its samples, the retry budget its counts; settings the
//! callers read (timeout, deadline, attempts, bulkhead limit, throttle, rate limit) are
//! replaced in the shared state, for the calls that start afterwards. A policy switched between
//! `mode = "enforce"` and `"observe"` keeps its state (the adaptive limit what it learned, the
//! rate limiter its tokens).

use actix::prelude::*;

use super::signals::Signal;
use super::{ServiceSupervisor, Settings};
use crate::actors::shared::settings::CallSettings;
use crate::actors::shared::shadow::Modes;
use crate::chaos::FaultConfig;
use crate::config::SupervisorConfig;
use crate::error::ConfigError;
use crate::limit::{ConcurrencyLimit, ConcurrencyLimitConfig};
use crate::messages::{Reconfiguration, Reconfigure};
use crate::throttle::Throttle;

/// The parts of the running configuration that no core keeps a copy of.
#[derive(Debug, Default)]
pub(super) struct Configured {
    concurrency_limit: Option<ConcurrencyLimitConfig>,
    faults: Option<FaultConfig>,
    seed: Option<u64>,
}

impl Configured {
    pub(super) fn of(config: &SupervisorConfig) -> Self {
        Configured {
            concurrency_limit: config.concurrency_limit.clone(),
            faults: config.faults.clone(),
            seed: config.seed,
        }
    }
}

impl Handler<Reconfigure> for ServiceSupervisor {
    type Result = Result<Reconfiguration, ConfigError>;

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) -> Self::Result {
        let config = msg.0;
        config.validate()?;
        if config.fleet.as_ref() != self.fleet.as_ref().map(|link| &link.config) {
            // The store and the key are where the fleet's counts live: a replica moving to
            // another would leave its counts behind.
            return Err(ConfigError::invalid(
                "fleet",
                "cannot be changed by a reload: restart the service to join another fleet",
            ));
        }
        let now = Self::now();
        // What callers reported so far is recorded under the settings it ran with.
        self.drain(ctx, now);
        let change = self.reconfigure(ctx, config, now);
        if change.is_change() {
            self.emit(now, Signal::Reconfigured(change.clone()));
        }
        Ok(change)
    }
}

impl ServiceSupervisor {
    /// Applies `config` (validated) at `now`; answers what changed.
    fn reconfigure(
        &mut self,
        ctx: &mut Context<Self>,
        config: SupervisorConfig,
        now: tokio::time::Instant,
    ) -> Reconfiguration {
        let mut change = Reconfiguration::default();
        let calls = self.published.settings.load();
        if config.timeout != calls.timeout {
            change.changed.push("timeout");
        }
        if config.deadline != calls.deadline {
            change.changed.push("deadline");
        }
        if config.max_in_flight != self.settings.max_in_flight {
            change.changed.push("max_in_flight");
        }
        if config.mailbox_capacity != self.settings.mailbox_capacity {
            change.changed.push("mailbox_capacity");
            ctx.set_mailbox_capacity(config.mailbox_capacity);
        }

        if config.breaker != *self.breaker.config() {
            change.changed.push("breaker");
            if !self.breaker.reconfigure(config.breaker.clone()) {
                change.reset.push("breaker.window");
            }
        }
        if config.retry != *self.retry.config() {
            change.changed.push("retry");
            if config.retry.budget != self.retry.config().budget
                && !self
                    .budget
                    .reconfigure(config.retry.budget.clone(), config.fleet.as_ref())
            {
                change.reset.push("retry.budget");
            }
            self.retry.reconfigure(config.retry.clone());
        }
        let health_changed = config.health != *self.health.config();
        if health_changed {
            change.changed.push("health");
            self.health.reconfigure(config.health.clone());
        }

        let throttle_before = self.throttle.as_ref().map(|t| t.config().clone());
        if config.throttle != throttle_before {
            change.changed.push("throttle");
            match (&mut self.throttle, config.throttle.clone()) {
                (Some(throttle), Some(new)) => {
                    if !throttle.reconfigure(new) {
                        change.reset.push("throttle");
                    }
                }
                (_, Some(new)) => {
                    self.throttle = Some(Box::new(Throttle::new(
                        new,
                        self.seed.rotate_left(29) ^ 0x7f4a_7c15,
                    )));
                }
                (_, None) => {
                    self.throttle = None;
                    let from = std::mem::replace(&mut self.throttle_published, 0.0);
                    self.throttle_shares = [0.0; 3];
                    self.published.throttle.publish([0.0; 3]);
                    let (requests, accepts) = (0, 0);
                    let to = 0.0;
                    self.emit(
                        now,
                        Signal::Throttle {
                            from,
                            to,
                            requests,
                            accepts,
                        },
                    );
                }
            }
            self.update_throttle(now);
        }

        // Switching a policy between enforcing and observing keeps its state: the same
        // decisions go on, refused or let through from the next call on.
        let modes = Modes::of(&config);
        let modes_changed = modes != self.settings.modes;
        if modes_changed {
            self.settings.modes = modes;
            self.published.observing.publish(modes);
        }
        let limit_mode_only = match (
            &self.configured.concurrency_limit,
            &config.concurrency_limit,
        ) {
            (Some(running), Some(new)) => running != new && running.same_but_mode(new),
            _ => false,
        };
        if config.concurrency_limit != self.configured.concurrency_limit && !limit_mode_only {
            change.changed.push("concurrency_limit");
            if self.limiter.is_some() && config.concurrency_limit.is_some() {
                change.reset.push("concurrency_limit");
            }
            self.limiter = config
                .concurrency_limit
                .as_ref()
                .map(|limit| Box::new(ConcurrencyLimit::new(limit).ceiling(config.max_in_flight)));
        } else {
            if limit_mode_only {
                change.changed.push("concurrency_limit");
            }
            if let Some(limiter) = &mut self.limiter {
                // The same algorithm keeps what it learned, within the new bulkhead.
                limiter.set_ceiling(config.max_in_flight);
            }
        }
        if change.changed.contains(&"max_in_flight")
            || change.changed.contains(&"concurrency_limit")
        {
            let limit = self
                .limiter
                .as_ref()
                .map_or(config.max_in_flight, |limiter| limiter.limit())
                .min(config.max_in_flight);
            self.settings.max_in_flight = config.max_in_flight;
            self.publish_limit(limit);
            // The new limit is reported as the configuration's change, not as a move.
            self.limit_reported = limit;
            self.emit(now, Signal::LimitChanged { to: limit });
        }

        if config.rate_limit != self.published.rate_limit.config() {
            change.changed.push("rate_limit");
            self.published.rate_limit.set(config.rate_limit.clone());
        }
        if self.published.reserves.publish(config.criticality.as_ref()) {
            change.changed.push("criticality");
        }
        if config.faults != self.configured.faults {
            change.changed.push("faults");
            match config.faults.clone() {
                Some(faults) => self.start_faults(faults, now),
                None => {
                    self.published.faults.set(None);
                    tracing::info!(service = %self.name, "fault injection off");
                }
            }
        }
        if config.hedge.as_ref() != self.hedge.as_deref() {
            change.changed.push("hedge");
            self.hedge = config.hedge.clone().map(Box::new);
            let delay = self
                .hedge
                .as_deref()
                .and_then(|hedge| hedge.delay(&mut self.health, now.into_std()));
            self.published.hedge_delay.publish(delay);
        }
        if config.seed != self.configured.seed {
            // The generators go on where they are: a new seed applies from a restart.
            change.changed.push("seed");
        }

        // Callers read these from the next call on.
        self.published.settings.store(CallSettings::of(&config));
        self.settings = Settings::of(&config);
        self.configured = Configured::of(&config);
        // New health thresholds apply at once (a status change is reported as usual).
        if change.changed.contains(&"breaker") || health_changed {
            self.evaluate_health(ctx, now);
        }
        change
    }
}
