//! [`ServiceHandle`]: the cloneable, `Send + Sync` way to call a supervised dependency from any
//! thread or runtime.

use std::future::Future;
use std::sync::Arc;

use actix::Addr;

use super::published::Published;
use super::supervisor::ServiceSupervisor;
use crate::breaker::BreakerState;
use crate::error::{CallError, SupervisorGone};
use crate::health::HealthSnapshot;
use crate::messages::{
    BreakerStatus, Call, CallCounts, DisableBreaker, ForceOpen, GetBreakerStatus, GetCallCounts,
    GetHealth, ResetBreaker,
};
use crate::observe::{CallOutcome, RejectReason};

/// A handle to one supervisor. Cheap to clone; awaitable from any runtime.
///
/// [`call`](Self::call) fails fast without a mailbox hop while the breaker is open (it reads the
/// state the supervisor publishes) and takes the bulkhead slot before sending, so an outage or a
/// burst never piles messages up in the mailbox.
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    name: Arc<str>,
    addr: Addr<ServiceSupervisor>,
    published: Arc<Published>,
}

impl ServiceHandle {
    pub(crate) fn new(
        name: Arc<str>,
        addr: Addr<ServiceSupervisor>,
        published: Arc<Published>,
    ) -> Self {
        ServiceHandle {
            name,
            addr,
            published,
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
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u32 {
        self.published.in_flight()
    }

    /// Runs `operation` through the supervisor (see [`Call::new`]).
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, CallError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
    {
        // Refused before the operation is boxed into a `Call`: no allocation while open.
        if let Some(retry_after) = self.published.fast_reject() {
            return Err(CallError::Open { retry_after });
        }
        self.send_admitted(Call::new(operation)).await
    }

    /// Sends a prepared [`Call`] (e.g. one with a classifier).
    pub async fn send<T, E>(&self, call: Call<T, E>) -> Result<T, CallError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        if let Some(retry_after) = self.published.fast_reject() {
            return Err(CallError::Open { retry_after });
        }
        self.send_admitted(call).await
    }

    /// Sends `call`, which the published breaker state lets through, taking a bulkhead slot.
    async fn send_admitted<T, E>(&self, mut call: Call<T, E>) -> Result<T, CallError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        match self.published.try_reserve() {
            Some(slot) => call.slot = Some(slot),
            None => {
                self.published.metrics.rejected(RejectReason::Overloaded);
                self.published.metrics.call(CallOutcome::Rejected, 0.0);
                return Err(CallError::Overloaded);
            }
        }
        self.addr
            .send(call)
            .await
            .unwrap_or(Err(CallError::SupervisorGone))
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

    /// Subscribes `recipient` to this supervisor's [events](crate::messages::SupervisorEvent).
    pub async fn subscribe(
        &self,
        recipient: actix::Recipient<crate::messages::SupervisorEvent>,
    ) -> Result<(), SupervisorGone> {
        self.ask(crate::messages::Subscribe(recipient)).await
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
