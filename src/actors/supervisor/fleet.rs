//! The supervisor's side of a [fleet](crate::fleet): the lease driver that keeps the callers
//! supplied with the fleet quota's tokens, the periodic sync of the fleet budget, the retry
//! budget they decide with ([`Budget`]: the fleet's while the store answers, the replica's own
//! otherwise), and the one signal for a change between the two.
//!
//! Store operations never run on the supervisor's mailbox: the driver is a task of its own
//! (on the supervisor's runtime), and a budget sync is a task that answers with a message.

use std::sync::{Arc, Weak};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;
use tokio::time::Instant;

use super::signals::Signal;
use super::ServiceSupervisor;
use crate::actors::shared::rate_limit::Leases;
use crate::actors::shared::Published;
use crate::config::SupervisorConfig;
use crate::fleet::{
    BudgetCounts, FleetBudget, FleetConfig, FleetPart, FleetStatus, FleetStore, Next, StoreError,
};
use crate::observe::FleetMetrics;
use crate::retry::{BudgetConfig, RetryBudget};

/// A supervisor's fleet: the store, the key, the settings and the metrics.
#[derive(Debug)]
pub(crate) struct FleetLink {
    pub(crate) store: Arc<dyn FleetStore>,
    pub(crate) key: Arc<str>,
    pub(crate) config: FleetConfig,
    pub(crate) metrics: FleetMetrics,
}

impl FleetLink {
    /// The fleet of the service `service` configured with `config`, on `store`.
    pub(crate) fn new(service: &str, config: FleetConfig, store: Arc<dyn FleetStore>) -> Self {
        FleetLink {
            key: Arc::from(config.key_of(service)),
            metrics: FleetMetrics::register(service),
            store,
            config,
        }
    }
}

/// The retry budget a supervisor decides with: its own window, always counted (so a fallback
/// starts warm), and the fleet's while the store answers.
#[derive(Debug)]
pub(crate) struct Budget {
    local: RetryBudget,
    fleet: Option<Box<FleetBudget>>,
}

impl Budget {
    /// The budget of `config`, shared across the fleet when it has one that shares it.
    pub(crate) fn new(config: &SupervisorConfig) -> Self {
        let budget = &config.retry.budget;
        Budget {
            local: RetryBudget::new(budget.clone()),
            fleet: config
                .fleet
                .as_ref()
                .filter(|fleet| fleet.budget && budget.enabled)
                .map(|fleet| Box::new(FleetBudget::new(budget, fleet))),
        }
    }

    /// A budget of the replica alone.
    #[cfg(test)]
    pub(crate) fn local(config: BudgetConfig) -> Self {
        Budget {
            local: RetryBudget::new(config),
            fleet: None,
        }
    }

    /// Counts a call offered (a first attempt).
    pub(crate) fn record_call(&mut self, now: Instant) {
        self.local.record_call(now.into_std());
        if let Some(fleet) = &mut self.fleet {
            fleet.record_call();
        }
    }

    /// Withdraws one retry (or hedge): the fleet's budget decides while shared, the
    /// replica's own otherwise.
    pub(crate) fn try_retry(&mut self, now: Instant) -> bool {
        let local = self.local.try_retry(now.into_std());
        match self.fleet.as_mut().and_then(|fleet| fleet.try_retry()) {
            Some(fleet) => fleet,
            None => local,
        }
    }

    /// Applies a reloaded budget (see [`RetryBudget::reconfigure`]); the fleet's budget keeps
    /// its store and starts a new view. Returns whether the local counts were kept.
    pub(crate) fn reconfigure(
        &mut self,
        config: BudgetConfig,
        fleet: Option<&FleetConfig>,
    ) -> bool {
        self.fleet = fleet
            .filter(|fleet| fleet.budget && config.enabled)
            .map(|fleet| Box::new(FleetBudget::new(&config, fleet)));
        self.local.reconfigure(config)
    }
}

/// The answer of a budget sync.
pub(crate) struct BudgetSynced(Result<BudgetCounts, StoreError>);

impl Message for BudgetSynced {
    type Result = ();
}

/// The lease driver saw the quota change sides.
pub(crate) struct QuotaShared(pub(crate) bool);

impl Message for QuotaShared {
    type Result = ();
}

impl ServiceSupervisor {
    /// Starts what the fleet needs: the lease driver (a fleet quota) and the budget syncs.
    pub(super) fn start_fleet(&mut self, ctx: &mut Context<Self>, leases: Option<Arc<Leases>>) {
        let Some(link) = &self.fleet else { return };
        if let Some(leases) = leases {
            let driver = lease_driver(
                Arc::downgrade(&self.published),
                leases,
                Arc::clone(&link.store),
                Arc::clone(&link.key),
                link.config.timeout,
                ctx.address().recipient(),
                self.alive.subscribe(),
            );
            tokio::spawn(driver);
        }
        if self.budget.fleet.is_some() {
            let every = link.config.sync_every.min(link.config.reconnect_min);
            self.sync_budget(ctx);
            ctx.run_interval(every, |act, ctx| act.sync_budget(ctx));
        }
    }

    /// Sends the budget counts to the store, if a sync is due.
    fn sync_budget(&mut self, ctx: &mut Context<Self>) {
        let (Some(link), Some(fleet)) = (&self.fleet, &mut self.budget.fleet) else {
            return;
        };
        let Some(deposit) = fleet.sync_due(Self::now()) else {
            return;
        };
        let (store, key, timeout) = (
            Arc::clone(&link.store),
            Arc::clone(&link.key),
            link.config.timeout,
        );
        let window = fleet.window();
        let answer = ctx.address();
        tokio::spawn(async move {
            let synced = tokio::time::timeout(timeout, store.sync_budget(&key, window, deposit))
                .await
                .unwrap_or_else(|_| Err(StoreError::new("timed out")));
            answer.do_send(BudgetSynced(synced));
        });
    }

    /// Whether the fleet's quota and budget are shared now (`None`: not part of a fleet).
    pub(crate) fn fleet_status(&self) -> Option<FleetStatus> {
        self.fleet.as_ref()?;
        Some(FleetStatus {
            quota_shared: self.published.rate_limit.fleet_shared(),
            budget_shared: self.budget.fleet.as_ref().map(|fleet| fleet.is_shared()),
        })
    }
}

impl Handler<BudgetSynced> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, msg: BudgetSynced, _: &mut Context<Self>) {
        let now = Self::now();
        let Some(fleet) = &mut self.budget.fleet else {
            return;
        };
        if let Some(shared) = fleet.synced(now, msg.0) {
            self.emit(
                now,
                Signal::Fleet {
                    part: FleetPart::Budget,
                    shared,
                },
            );
        }
    }
}

impl Handler<QuotaShared> for ServiceSupervisor {
    type Result = ();

    fn handle(&mut self, msg: QuotaShared, _: &mut Context<Self>) {
        let now = Self::now();
        self.emit(
            now,
            Signal::Fleet {
                part: FleetPart::Quota,
                shared: msg.0,
            },
        );
    }
}

/// Keeps a fleet quota supplied: asks the store for a lease when [`FleetQuota::poll`]
/// (crate::fleet::FleetQuota::poll) says so, under `timeout`, and sleeps otherwise until a call
/// asks or the next token is due. Ends with the supervisor (its `alive` watch closes) or when
/// the fleet quota is gone.
async fn lease_driver(
    published: Weak<Published>,
    leases: Arc<Leases>,
    store: Arc<dyn FleetStore>,
    key: Arc<str>,
    timeout: Duration,
    changes: Recipient<QuotaShared>,
    mut alive: watch::Receiver<()>,
) {
    loop {
        let asked = leases.asked.notified();
        let next = {
            let Some(published) = published.upgrade() else {
                return;
            };
            published.rate_limit.poll_fleet(Instant::now())
        };
        let Some((next, interval, burst)) = next else {
            return;
        };
        match next {
            Next::Ask(tokens) => {
                let asked_at = Instant::now();
                let answer =
                    tokio::time::timeout(timeout, store.take(&key, interval, burst, tokens))
                        .await
                        .unwrap_or_else(|_| Err(StoreError::new("timed out")));
                let now = Instant::now();
                if let Err(error) = &answer {
                    tracing::debug!(key = &*key, %error, "fleet lease failed");
                }
                let Some(published) = published.upgrade() else {
                    return;
                };
                if let Some(shared) = published.rate_limit.leased(now, answer, now - asked_at) {
                    changes.do_send(QuotaShared(shared));
                }
            }
            Next::Sleep(until) => {
                tokio::select! {
                    () = asked => {}
                    () = tokio::time::sleep_until(until) => {}
                    gone = alive.changed() => if gone.is_err() { return },
                }
            }
            Next::Idle => {
                tokio::select! {
                    () = asked => {}
                    gone = alive.changed() => if gone.is_err() { return },
                }
            }
        }
    }
}
