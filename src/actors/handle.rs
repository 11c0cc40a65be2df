//! [`ServiceHandle`]: the cloneable, `Send + Sync` way to call a supervised dependency from any
//! thread or runtime.

use std::future::Future;
use std::sync::Arc;

use actix::Addr;
use tokio::sync::watch;

use super::shared::admission::Admission;
use super::shared::Published;
use super::supervisor::ServiceSupervisor;
use crate::breaker::BreakerState;
use crate::chaos::FaultConfig;
use crate::error::{ControlError, SupervisorGone};
use crate::health::HealthSnapshot;
use crate::messages::{
    BreakerStatus, CallCounts, ClearFaults, DisableBreaker, ForceOpen, GetBreakerStatus,
    GetCallCounts, GetHealth, InjectFaults, ResetBreaker, StopSupervisor,
};

/// A handle to one supervisor. Cheap to clone; `Send + Sync`.
///
/// [`call`](Self::call) runs the operation in the caller's own task: it admits the call from the
/// state the supervisor publishes (refusing at once while the breaker is open), takes the
/// bulkhead slot, and only talks to the supervisor when an attempt fails or the breaker is
/// half-open. So a call costs about what an in-task library costs, and one dependency's calls
/// spread over every core the caller's runtime has.
///
/// A handle is bound to one running supervisor. Once that supervisor has stopped (by
/// [`stop`](Self::stop), because every handle to it was dropped, or because its arbiter died),
/// every call through the handle is answered [`CallError::SupervisorGone`](crate::CallError::SupervisorGone) at once; a
/// supervisor restarted by the [`Registry`](crate::Registry) is a new one, reached through a
/// fresh handle from [`RegistryHandle::get`](crate::actors::RegistryHandle::get).
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    pub(super) name: Arc<str>,
    pub(super) addr: Addr<ServiceSupervisor>,
    pub(super) published: Arc<Published>,
    /// Closed when the supervisor is dropped.
    alive: watch::Receiver<()>,
}

impl ServiceHandle {
    pub(crate) fn new(
        name: Arc<str>,
        addr: Addr<ServiceSupervisor>,
        published: Arc<Published>,
        alive: watch::Receiver<()>,
    ) -> Self {
        ServiceHandle {
            name,
            addr,
            published,
            alive,
        }
    }

    /// The dependency's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The supervisor's address, to send it messages directly.
    pub fn addr(&self) -> &Addr<ServiceSupervisor> {
        &self.addr
    }

    /// Whether the supervisor is still running.
    #[inline]
    pub fn is_alive(&self) -> bool {
        self.addr.connected() && self.alive.has_changed().is_ok()
    }

    /// Resolves once the supervisor has stopped and its state is dropped (after
    /// [`stop`](Self::stop), when every handle and call in flight is gone, or when its arbiter
    /// died). The future holds no reference to the supervisor, so it does not keep it alive.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut alive = self.alive.clone();
        async move {
            // Nothing is ever sent: this ends when the sender (the supervisor) is dropped.
            while alive.changed().await.is_ok() {}
        }
    }

    /// Stops the supervisor: calls in flight are cancelled and answered
    /// [`CallError::SupervisorGone`](crate::CallError::SupervisorGone), and so is every later call through any handle to it.
    /// Returns once the stop is requested; await [`stopped`](Self::stopped) to know it is done.
    /// A supervisor started by a [`Registry`](crate::Registry) is restarted by it.
    pub async fn stop(&self) -> Result<(), SupervisorGone> {
        self.ask(StopSupervisor).await
    }

    /// The breaker state last published by the supervisor (read without a mailbox hop).
    pub(crate) fn published_state(&self) -> Option<BreakerState> {
        self.published.admission.state()
    }

    /// Whether a call starting now would be refused at once because the breaker is open (its
    /// open period still running) or forced open: read from the state the supervisor
    /// publishes, without a mailbox hop. False while closed, disabled or half-open (where the
    /// supervisor hands out probe permits), and once an open period has ended. While the
    /// breaker only observes ([`PolicyMode::Observe`](crate::mode::PolicyMode)) this still says
    /// whether it is open, but the call would run (counted `would_reject`).
    pub fn is_open(&self) -> bool {
        matches!(self.published.admission.admit(), Admission::Refused(_))
    }

    /// Whether a call starting now would be refused at once by the breaker: open (or forced
    /// open), and enforcing.
    #[cfg(feature = "tower")]
    pub(crate) fn refuses_at_once(&self) -> bool {
        self.is_open()
            && (!self.published.observing.load().breaker()
                || self.published.admission.state() == Some(BreakerState::ForcedOpen))
    }

    /// The policies of this service that only observe ([`PolicyMode::Observe`](crate::mode::PolicyMode)),
    /// by their configuration name (`breaker`, `throttle`, `concurrency_limit`, `rate_limit`),
    /// as the supervisor last published them. Empty when every policy enforces.
    pub fn observing(&self) -> Vec<&'static str> {
        self.published.observing.load().names()
    }

    /// While the adaptive concurrency limit only observes: the limit it would enforce (the
    /// calls in flight above it are counted `would_reject{reason="overloaded"}`; [`limit`](Self::limit)
    /// is then `max_in_flight`). `None` otherwise.
    pub fn observed_limit(&self) -> Option<u32> {
        self.published.bulkhead.observed_limit()
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u32 {
        self.published.bulkhead.in_flight()
    }

    /// Calls allowed in flight now: the bulkhead's `max_in_flight`, or the adaptive
    /// concurrency limit when one is configured (and enforced: see
    /// [`observed_limit`](Self::observed_limit)).
    pub fn limit(&self) -> u32 {
        self.published.bulkhead.limit()
    }

    /// The dependency's health.
    pub async fn health(&self) -> Result<HealthSnapshot, SupervisorGone> {
        self.ask(GetHealth).await
    }

    /// The breaker's state and window.
    pub async fn breaker_status(&self) -> Result<BreakerStatus, SupervisorGone> {
        self.ask(GetBreakerStatus).await
    }

    /// Totals of the supervisor's answers.
    pub async fn counts(&self) -> Result<CallCounts, SupervisorGone> {
        self.ask(GetCallCounts).await
    }

    /// Resets the breaker to Closed; returns the new state.
    pub async fn reset(&self) -> Result<BreakerState, SupervisorGone> {
        self.ask(ResetBreaker).await
    }

    /// Forces the breaker open until reset; returns the new state.
    pub async fn force_open(&self) -> Result<BreakerState, SupervisorGone> {
        self.ask(ForceOpen).await
    }

    /// Disables the breaker until reset; returns the new state.
    pub async fn disable(&self) -> Result<BreakerState, SupervisorGone> {
        self.ask(DisableBreaker).await
    }

    /// Starts injecting `faults` into this supervisor's attempts, for tests and game days (see
    /// [`chaos`](crate::chaos)), replacing any injection in progress; calls in every task see
    /// it from their next attempt. Refused with a [`ConfigError`](crate::ConfigError) naming
    /// the field when the configuration is invalid, when it would hang attempts of a
    /// supervisor without a timeout or deadline, or when the cargo feature `fault-injection` is
    /// off. A supervisor restarted by a [`Registry`](crate::Registry) starts with its
    /// configured faults only.
    pub async fn inject_faults(&self, faults: FaultConfig) -> Result<(), ControlError> {
        Ok(self.ask(InjectFaults(faults)).await??)
    }

    /// Stops injecting faults (nothing happens if none were being injected).
    pub async fn clear_faults(&self) -> Result<(), SupervisorGone> {
        self.ask(ClearFaults).await
    }

    /// Applies `config` to the running supervisor without losing its state where the change
    /// allows, and answers what changed. An invalid configuration changes nothing and is
    /// answered with the [`ConfigError`](crate::ConfigError) naming the field.
    ///
    /// Kept: the breaker's state (an open breaker stays open until its period ends; permits
    /// in flight stay valid), its consecutive-failure count and open-duration growth, its
    /// outcome window when the window's kind and size are unchanged; the health window's
    /// samples (the newest `window_size` when it shrinks); the retry budget's counts when its
    /// window length is unchanged; the throttle's counts when its window and buckets are
    /// unchanged; the rate limiter's tokens (up to the new burst) and retry-after penalty; the
    /// call counts, subscribers and a manual breaker override.
    ///
    /// Started afresh (listed in [`Reconfiguration::reset`]): the breaker's outcome window
    /// when its kind or size changes, the retry budget's counts when its window length changes
    /// or it is switched on or off, the throttle's counts when its window or buckets change,
    /// the adaptive concurrency limit when its configuration changes (from its initial value).
    ///
    /// Applied from the next call: timeout, deadline, attempts and retry schedule, bulkhead
    /// limit, throttle, rate limit; calls in flight finish with the settings they started
    /// with. New thresholds apply from the next recorded outcome (a reconfiguration never
    /// trips the breaker by itself); a new open duration from the next opening. A new `seed`
    /// applies from a restart only.
    ///
    /// The supervisor publishes one [`EventKind::Reconfigured`](crate::messages::EventKind)
    /// and logs one `info` line when something changed. A supervisor started by a
    /// [`Registry`](crate::Registry) is best reconfigured through
    /// [`RegistryHandle::reload`](crate::actors::RegistryHandle::reload), so that a restart
    /// uses the new configuration too.
    ///
    /// [`Reconfiguration::reset`]: crate::messages::Reconfiguration::reset
    pub async fn reconfigure(
        &self,
        config: crate::config::SupervisorConfig,
    ) -> Result<crate::messages::Reconfiguration, ControlError> {
        config.validate()?;
        Ok(self.ask(crate::messages::Reconfigure(config)).await??)
    }

    /// Subscribes to this supervisor's [events](crate::messages::SupervisorEvent): an actix
    /// `Recipient` or a tokio `mpsc::Sender` (see [`Subscriber`](crate::messages::Subscriber)).
    pub async fn subscribe(
        &self,
        subscriber: impl Into<crate::messages::Subscriber>,
    ) -> Result<(), SupervisorGone> {
        self.ask(crate::messages::Subscribe(subscriber.into()))
            .await
    }

    async fn ask<M>(&self, message: M) -> Result<M::Result, SupervisorGone>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        ServiceSupervisor: actix::Handler<M>,
    {
        self.addr.send(message).await.map_err(|_| SupervisorGone)
    }
}
