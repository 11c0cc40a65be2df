//! Events a supervisor publishes to its subscribers (Resilience4j's event publisher, as actix
//! messages): breaker transitions, health changes, retries and timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Message, Recipient};

use crate::breaker::Transition;
use crate::health::{HealthStats, HealthStatus};
use crate::outcome::{FaultKind, RejectReason, RetryReason};

/// Something a supervisor wants its subscribers to know. Delivered to every
/// [`Subscribe`]d recipient, in the order it happened.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SupervisorEvent {
    /// The service (dependency) name.
    pub service: Arc<str>,
    /// When it happened (the supervisor's clock; paused in tests).
    pub at: Instant,
    /// What happened.
    pub kind: EventKind,
}

/// What a [`SupervisorEvent`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// The breaker changed state; the transition carries the reason and the window snapshot that
    /// caused it.
    StateChanged(Transition),
    /// The health status changed.
    HealthChanged {
        /// Status before.
        from: HealthStatus,
        /// Status now.
        to: HealthStatus,
        /// The window the new status was computed from.
        stats: HealthStats,
    },
    /// A retry was scheduled.
    RetryScheduled {
        /// Number of the attempt that will run after the delay (2 = first retry).
        attempt: u32,
        /// Backoff delay before it.
        delay: Duration,
        /// Why the previous attempt failed.
        reason: RetryReason,
    },
    /// An attempt was cancelled by the per-attempt timeout or the deadline.
    TimedOut {
        /// How long it ran.
        after: Duration,
    },
    /// An attempt had not answered within the hedge delay: a hedge (another attempt of the same
    /// idempotent call) started.
    Hedged {
        /// How long the hedged attempt had been running.
        after: Duration,
        /// Which hedge of the attempt (1 = the first).
        hedge: u32,
    },
    /// A retry was due but the retry budget refused it.
    RetryBudgetExhausted,
    /// A fault was injected into an attempt on purpose ([fault injection](crate::chaos)).
    FaultInjected {
        /// Which fault.
        kind: FaultKind,
    },
    /// The dependency asked for quiet (a retry-after hint) and the rate limiter lowered its
    /// rate to `factor ×` until `until`.
    RateLowered {
        /// The factor applied to the rate.
        factor: f64,
        /// When the normal rate resumes.
        until: Instant,
    },
    /// The adaptive concurrency limit moved by at least 10 % (or 1) since it was last reported.
    LimitChanged {
        /// The limit last reported.
        from: u32,
        /// Calls allowed in flight now.
        to: u32,
    },
    /// The supervisor applied a new configuration ([`Reconfigure`](crate::messages::Reconfigure),
    /// e.g. from a [registry reload](crate::actors::RegistryHandle::reload)) that changed
    /// something.
    Reconfigured(Reconfiguration),
    /// The fleet's store failed or timed out: this replica's `part` decides on its own share
    /// (the quota on `rate / expected_replicas`, retries on its own budget) until the store
    /// answers again ([fleet](crate::fleet)).
    FleetFallback {
        /// The quota or the budget.
        part: crate::fleet::FleetPart,
    },
    /// The fleet's store answers again: `part` is shared with the fleet once more.
    FleetRestored {
        /// The quota or the budget.
        part: crate::fleet::FleetPart,
    },
    /// The adaptive throttle's reject probability crossed one of 0, 10 % or 50 % (up or down).
    ThrottleChanged {
        /// The probability before.
        from: f64,
        /// The probability now: the share of new calls refused locally.
        to: f64,
        /// Requests counted in the throttle's window (refused ones included).
        requests: u64,
        /// Requests the dependency accepted in the window.
        accepts: u64,
    },
    /// A policy that only observes ([`PolicyMode::Observe`](crate::mode::PolicyMode)) would have
    /// refused `calls` calls (or retries) for `reason`, and let them through. Reported in
    /// batches (at most one event per reason each time the supervisor drains its callers'
    /// reports, about once per millisecond while calls flow), not once per call.
    WouldReject {
        /// Which policy would have refused: `Open` (breaker), `Throttled`, `RateLimited`,
        /// `Overloaded` (adaptive concurrency limit).
        reason: RejectReason,
        /// How many calls.
        calls: u64,
    },
}

/// What a reconfiguration changed, and what it had to start afresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconfiguration {
    /// The configuration fields that changed, by their name in [`SupervisorConfig`]
    /// (`timeout`, `breaker`, `retry`, `max_in_flight`, …), in the order of that struct. Empty
    /// when the new configuration equals the running one.
    ///
    /// [`SupervisorConfig`]: crate::config::SupervisorConfig
    pub changed: Vec<&'static str>,
    /// The state the change could not keep and that starts empty: `breaker.window` (another
    /// window kind or size), `retry.budget` (another window length, or switched on or off),
    /// `throttle` (another window or bucket count), `concurrency_limit` (another algorithm or
    /// settings: the limit starts again from its initial value). Everything else is kept.
    pub reset: Vec<&'static str>,
}

impl Reconfiguration {
    /// Whether anything changed.
    pub fn is_change(&self) -> bool {
        !self.changed.is_empty()
    }
}

/// Subscribe to a supervisor's events (or, sent to the [`Registry`](crate::Registry), to every
/// supervisor's, present and future).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Subscriber);

/// Where a supervisor delivers its [events](SupervisorEvent): an actix actor's
/// [`Recipient`], or the sending half of a tokio channel (no actix needed to listen).
///
/// A subscriber that is gone (actor stopped, receiver dropped) is forgotten at the next event.
/// Events are never waited for: a channel that is full drops the event, as a lagging
/// `broadcast` receiver would, so a slow listener never slows the supervisor. Give the channel
/// room for bursts (a breaker trip brings a transition and a health change at once).
///
/// ```
/// # async fn example(handle: warden::ServiceHandle) -> Result<(), warden::SupervisorGone> {
/// let (events, mut received) = tokio::sync::mpsc::channel(64);
/// handle.subscribe(events).await?;
/// while let Some(event) = received.recv().await {
///     println!("{}: {:?}", event.service, event.kind);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Subscriber(Delivery);

#[derive(Debug, Clone)]
enum Delivery {
    Actor(Recipient<SupervisorEvent>),
    Channel(tokio::sync::mpsc::Sender<SupervisorEvent>),
}

impl Subscriber {
    /// Whether anyone still listens.
    pub(crate) fn connected(&self) -> bool {
        match &self.0 {
            Delivery::Actor(recipient) => recipient.connected(),
            Delivery::Channel(sender) => !sender.is_closed(),
        }
    }

    /// Delivers `event` without waiting (dropped if a channel is full).
    pub(crate) fn deliver(&self, event: SupervisorEvent) {
        match &self.0 {
            Delivery::Actor(recipient) => recipient.do_send(event),
            Delivery::Channel(sender) => {
                let _ = sender.try_send(event);
            }
        }
    }
}

impl From<Recipient<SupervisorEvent>> for Subscriber {
    fn from(recipient: Recipient<SupervisorEvent>) -> Self {
        Subscriber(Delivery::Actor(recipient))
    }
}

impl From<tokio::sync::mpsc::Sender<SupervisorEvent>> for Subscriber {
    fn from(sender: tokio::sync::mpsc::Sender<SupervisorEvent>) -> Self {
        Subscriber(Delivery::Channel(sender))
    }
}
