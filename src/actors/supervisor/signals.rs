//! The one signal fan-out: every decision the supervisor makes and every outcome a caller
//! reports becomes one [`Signal`], and [`ServiceSupervisor::emit`] turns it into everything it
//! is owed, in one place — the [`CallCounts`](crate::messages::CallCounts), the metrics, the
//! `tracing` event and the subscribers' [`EventKind`] — so they agree by construction. The
//! `tracing` events of a signal caused by a call's question (a failed attempt, a half-open
//! admission, a hedge) are emitted inside that call's span, which travels with the question:
//! they are the span's events ([`spans`](crate::observe::spans) names them).
//!
//! | signal | counts | metric | tracing | event |
//! |---|---|---|---|---|
//! | `Answered` | by outcome (a refusal by reason) | `calls_total`, `call_duration_seconds` | | |
//! | `Rejected` | `rejected_budget` (the others count as answers), `shed` | `calls_rejected_total`, `calls_shed_total` | | |
//! | `Refused` | by reason, `shed` | `calls_rejected_total`, `calls_shed_total`, `calls_total`, `call_duration_seconds` | | |
//! | `WouldReject` | `would_reject_*` by reason | `would_reject_total` | debug | `WouldReject` |
//! | `Attempt` | `attempts` | | | |
//! | `TimedOut` | | `timeouts_total` | debug | `TimedOut` |
//! | `Retry` | `retries` | `retry_attempts_total` | debug | `RetryScheduled` |
//! | `BudgetExhausted` | | | warn | `RetryBudgetExhausted` |
//! | `Transition` | | `circuit_state`, `circuit_transitions_total` | info | `StateChanged` |
//! | `HealthChanged` | | `service_health` | info | `HealthChanged` |
//! | `Throttle` | | `throttle_probability` | info (band crossed) | `ThrottleChanged` (band crossed) |
//! | `LimitChanged` | | `concurrency_limit` | debug (≥ 10 %) | `LimitChanged` (≥ 10 %) |
//! | `RateLowered` | | | info | `RateLowered` |
//! | `Hedged`, `HedgeWon` | `hedges`, `hedges_won` | `hedges_started_total`, `hedges_won_total` | debug | `Hedged` |
//! | `FaultInjected` | | `faults_injected_total` | debug | `FaultInjected` |
//! | `Reconfigured` | | | info | `Reconfigured` |
//! | `Fleet` | | `fleet_fallback`, `fleet_fallbacks_total` | warn (fell back), info (shared again) | `FleetFallback`, `FleetRestored` |

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::ServiceSupervisor;
use crate::breaker::Transition;
use crate::criticality::Criticality;
use crate::fleet::FleetPart;
use crate::health::{HealthStats, HealthStatus};
use crate::messages::{CallCounts, EventKind, Reconfiguration, SupervisorEvent};
use crate::observe::spans;
use crate::outcome::{CallOutcome, FaultKind, RejectReason, RetryReason};

/// One decision or outcome, emitted once (see the module docs).
#[derive(Debug)]
pub(super) enum Signal {
    /// A call was answered; a refusal (`Rejected`) names its reason.
    Answered {
        outcome: CallOutcome,
        refused: Option<RejectReason>,
        duration: Duration,
    },
    /// A call or a retry was refused (and the call answered otherwise: a fallback, its last
    /// failure); `shed` names the criticality of a call refused before its first attempt.
    Rejected {
        reason: RejectReason,
        shed: Option<Criticality>,
    },
    /// `calls` calls of `criticality` were refused for `reason` and answered with the refusal.
    Refused {
        reason: RejectReason,
        criticality: Criticality,
        calls: u64,
    },
    /// `calls` calls (or retries) would have been refused for `reason` by a policy that only
    /// observes, and went ahead.
    WouldReject { reason: RejectReason, calls: u64 },
    /// An attempt ran the operation (recorded).
    Attempt,
    /// An attempt timed out.
    TimedOut { after: Duration },
    /// A retry was scheduled.
    Retry {
        attempt: u32,
        delay: Duration,
        reason: RetryReason,
    },
    /// A retry was refused by the budget.
    BudgetExhausted { attempts: u32 },
    /// The breaker changed state.
    Transition(Transition),
    /// The health status changed.
    HealthChanged {
        from: HealthStatus,
        to: HealthStatus,
        stats: HealthStats,
    },
    /// The throttle's reject probability moved.
    Throttle {
        from: f64,
        to: f64,
        requests: u64,
        accepts: u64,
    },
    /// The adaptive concurrency limit moved.
    LimitChanged { to: u32 },
    /// The rate was lowered on the dependency's retry-after hint.
    RateLowered {
        hint: Duration,
        factor: f64,
        until: std::time::Instant,
    },
    /// A hedge was started.
    Hedged { after: Duration, hedge: u32 },
    /// A hedge answered its call.
    HedgeWon,
    /// A fault was injected into an attempt.
    FaultInjected(FaultKind),
    /// The configuration was reloaded.
    Reconfigured(Reconfiguration),
    /// A part of the fleet moved between the fleet's store (`shared`) and the replica's own
    /// share.
    Fleet { part: FleetPart, shared: bool },
}

impl ServiceSupervisor {
    /// Turns `signal` into counts, metrics, tracing and subscriber events. Inlined, so each
    /// call site keeps only its own variant's arm: one fan-out in the source, no dispatch (and
    /// no copy of the signal) on the call path.
    #[inline(always)]
    pub(super) fn emit(&mut self, now: Instant, signal: Signal) {
        let metrics = &self.published.metrics;
        let service = &*self.name;
        let event = match signal {
            Signal::Answered {
                outcome,
                refused,
                duration,
            } => {
                let counts = &mut self.counts;
                let counter = match outcome {
                    CallOutcome::Success => &mut counts.success,
                    CallOutcome::Failure => &mut counts.failure,
                    CallOutcome::Timeout => &mut counts.timeout,
                    CallOutcome::Panic => &mut counts.panic,
                    CallOutcome::Rejected => {
                        rejected(counts, refused.unwrap_or(RejectReason::Open))
                    }
                    CallOutcome::Cancelled => &mut counts.cancelled,
                    CallOutcome::Fallback => &mut counts.fallback,
                    CallOutcome::Coalesced => &mut counts.coalesced,
                };
                *counter += 1;
                metrics.call(outcome, duration.as_secs_f64());
                None
            }
            Signal::Rejected { reason, shed } => {
                if reason == RejectReason::Budget {
                    self.counts.rejected_budget += 1;
                }
                metrics.rejected(reason);
                if let Some(criticality) = shed {
                    self.counts.shed[criticality.index()] += 1;
                    metrics.shed(criticality);
                }
                None
            }
            Signal::Refused {
                reason,
                criticality,
                calls,
            } => {
                *rejected(&mut self.counts, reason) += calls;
                self.counts.shed[criticality.index()] += calls;
                metrics.refused(reason, criticality, calls);
                None
            }
            Signal::WouldReject { reason, calls } => {
                *would_reject(&mut self.counts, reason) += calls;
                metrics.would_reject(reason, calls);
                tracing::debug!(
                    service,
                    reason = reason.as_str(),
                    calls,
                    "would have been rejected (observe-only mode): let through"
                );
                Some(EventKind::WouldReject { reason, calls })
            }
            Signal::Attempt => {
                self.counts.attempts += 1;
                None
            }
            Signal::TimedOut { after } => {
                metrics.timeout();
                tracing::debug!(
                    message = spans::EVENT_TIMED_OUT,
                    service,
                    after_ms = spans::millis(after)
                );
                Some(EventKind::TimedOut { after })
            }
            Signal::Retry {
                attempt,
                delay,
                reason,
            } => {
                self.counts.retries += 1;
                metrics.retry(reason);
                tracing::debug!(
                    message = spans::EVENT_RETRY_SCHEDULED,
                    service,
                    attempt = i64::from(attempt),
                    delay_ms = spans::millis(delay),
                    reason = reason.as_str()
                );
                Some(EventKind::RetryScheduled {
                    attempt,
                    delay,
                    reason,
                })
            }
            Signal::BudgetExhausted { attempts } => {
                tracing::warn!(
                    message = spans::EVENT_RETRY_BUDGET_EXHAUSTED,
                    service,
                    attempts = i64::from(attempts)
                );
                Some(EventKind::RetryBudgetExhausted)
            }
            Signal::Transition(transition) => {
                let snapshot = transition.snapshot;
                tracing::info!(
                    message = spans::EVENT_BREAKER_TRANSITION,
                    service,
                    from = transition.from.as_str(),
                    to = transition.to.as_str(),
                    reason = transition.reason.as_str(),
                    open_for = ?transition.open_for,
                    calls = snapshot.calls,
                    failures = snapshot.failures,
                    slow_calls = snapshot.slow_calls,
                    failure_rate = snapshot.failure_rate,
                    slow_call_rate = snapshot.slow_call_rate,
                    consecutive_failures = snapshot.consecutive_failures
                );
                metrics.transition(transition.from, transition.to);
                Some(EventKind::StateChanged(transition))
            }
            Signal::HealthChanged { from, to, stats } => {
                tracing::info!(
                    service,
                    from = from.as_str(),
                    to = to.as_str(),
                    "service health changed"
                );
                metrics.health(to);
                Some(EventKind::HealthChanged { from, to, stats })
            }
            Signal::Throttle {
                from,
                to,
                requests,
                accepts,
            } => {
                metrics.throttle(to);
                // Reported when it crosses 0, 10 % or 50 %.
                let band = |p: f64| u8::from(p > 0.0) + u8::from(p > 0.1) + u8::from(p > 0.5);
                (band(from) != band(to)).then(|| {
                    tracing::info!(
                        service,
                        from,
                        to,
                        requests,
                        accepts,
                        "adaptive throttle changed"
                    );
                    EventKind::ThrottleChanged {
                        from,
                        to,
                        requests,
                        accepts,
                    }
                })
            }
            Signal::LimitChanged { to } => {
                metrics.limit(to);
                // Reported when it moved by 10 % or more since the last report.
                let reported = self.limit_reported;
                (to.abs_diff(reported) >= (reported / 10).max(1)).then(|| {
                    self.limit_reported = to;
                    tracing::debug!(service, from = reported, to, "concurrency limit changed");
                    EventKind::LimitChanged { from: reported, to }
                })
            }
            Signal::RateLowered {
                hint,
                factor,
                until,
            } => {
                tracing::info!(
                    service,
                    ?hint,
                    factor,
                    "rate lowered on the dependency's retry-after"
                );
                Some(EventKind::RateLowered { factor, until })
            }
            Signal::Hedged { after, hedge } => {
                self.counts.hedges += 1;
                metrics.hedge_started();
                tracing::debug!(
                    message = spans::EVENT_HEDGE_STARTED,
                    service,
                    hedge = i64::from(hedge),
                    after_ms = spans::millis(after)
                );
                Some(EventKind::Hedged { after, hedge })
            }
            Signal::HedgeWon => {
                self.counts.hedges_won += 1;
                metrics.hedge_won();
                None
            }
            Signal::FaultInjected(kind) => {
                metrics.fault_injected(kind);
                tracing::debug!(service, kind = kind.as_str(), "fault injected");
                Some(EventKind::FaultInjected { kind })
            }
            Signal::Reconfigured(change) => {
                tracing::info!(service, changed = ?change.changed, reset = ?change.reset, "supervisor reconfigured");
                Some(EventKind::Reconfigured(change))
            }
            Signal::Fleet { part, shared } => {
                if let Some(link) = &self.fleet {
                    link.metrics.shared(part, shared);
                }
                let part_name = part.as_str();
                Some(if shared {
                    tracing::info!(
                        service,
                        part = part_name,
                        "fleet store answers again: shared"
                    );
                    EventKind::FleetRestored { part }
                } else {
                    tracing::warn!(
                        service,
                        part = part_name,
                        "fleet store unreachable: deciding on the local share"
                    );
                    EventKind::FleetFallback { part }
                })
            }
        };
        if let Some(kind) = event {
            self.publish(now, kind);
        }
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
            subscriber.deliver(event.clone());
        }
    }
}

/// The count of calls a policy that observes would have refused for `reason` (a retry budget
/// always enforces: nothing is counted `budget`).
fn would_reject(counts: &mut CallCounts, reason: RejectReason) -> &mut u64 {
    match reason {
        RejectReason::Open | RejectReason::Budget => &mut counts.would_reject_open,
        RejectReason::Overloaded => &mut counts.would_reject_overloaded,
        RejectReason::Throttled => &mut counts.would_reject_throttled,
        RejectReason::RateLimited => &mut counts.would_reject_rate_limited,
    }
}

/// The count of calls refused for `reason`.
fn rejected(counts: &mut CallCounts, reason: RejectReason) -> &mut u64 {
    match reason {
        RejectReason::Open => &mut counts.rejected_open,
        RejectReason::Overloaded => &mut counts.rejected_overloaded,
        RejectReason::Throttled => &mut counts.rejected_throttled,
        RejectReason::RateLimited => &mut counts.rejected_rate_limited,
        RejectReason::Budget => &mut counts.rejected_budget,
    }
}
