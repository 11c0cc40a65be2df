//! What `/status.json` and `/health` answer: serializable views holding only states, counts,
//! rates, latencies, limits and the breaker's reasons.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::actors::KeyedSnapshot;
use crate::breaker::{BreakerState, Transition, TransitionReason, WindowSnapshot};
use crate::health::{HealthSnapshot, HealthStatus};
use crate::messages::CallCounts;

/// The status of every service of a registry (`/status.json`), sorted by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatusView {
    /// When it was made (milliseconds since the Unix epoch).
    pub generated_at_unix_ms: u64,
    /// The sampling period of the history (`None`: sampled on demand only).
    pub sample_every_ms: Option<u64>,
    /// Samples of history kept per service.
    pub history_len: usize,
    /// Readiness, as `/health` decides it.
    pub ready: bool,
    /// One entry per registered service.
    pub services: Vec<ServiceStatus>,
    /// One entry per keyed service: its keys, the open ones, and the top keys (open first,
    /// then by failures).
    pub keyed: Vec<KeyedSnapshot>,
}

/// The status of one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ServiceStatus {
    /// The service (dependency) name.
    pub name: String,
    /// The breaker's state now.
    pub breaker: BreakerState,
    /// The health verdict now.
    pub health: HealthStatus,
    /// Whether this service decides readiness.
    pub critical: bool,
    /// While the breaker is open: milliseconds until a probe is let through.
    pub retry_after_ms: Option<u64>,
    /// For one replica of a [fleet](crate::fleet): whether its quota and budget are shared
    /// through the fleet's store now (`false`: on its own share, the store away).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetStatus>,
    /// Calls in the health window.
    pub window_calls: u32,
    /// Failed calls in the health window.
    pub window_failures: u32,
    /// Success rate over the health window (`None`: no calls).
    pub success_rate: Option<f64>,
    /// Median latency over the health window, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Calls answered per second between the last two samples.
    pub calls_per_sec: Option<f64>,
    /// Calls in flight now.
    pub in_flight: u32,
    /// Calls allowed in flight now (bulkhead or adaptive limit).
    pub limit: u32,
    /// The policies that only observe ([`PolicyMode::Observe`](crate::PolicyMode)): `breaker`,
    /// `throttle`, `concurrency_limit`, `rate_limit`. Their would-be refusals are in
    /// [`totals`](Self::totals) (`would_reject_*`). Omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub observing: Vec<&'static str>,
    /// While the adaptive concurrency limit only observes: the limit it would enforce
    /// ([`limit`](Self::limit) is then `max_in_flight`). Omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_limit: Option<u32>,
    /// Totals since the supervisor started, by outcome.
    pub totals: CallCounts,
    /// The breaker's window now.
    pub breaker_window: WindowSnapshot,
    /// Samples, oldest first.
    pub history: Vec<HistoryPoint>,
    /// The last breaker transitions, newest first.
    pub transitions: Vec<TransitionView>,
}

/// One sample of a service's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HistoryPoint {
    /// When it was taken (milliseconds since the Unix epoch).
    pub at_unix_ms: u64,
    /// Success rate over the health window then.
    pub success_rate: Option<f64>,
    /// p95 latency then, in milliseconds.
    pub p95_ms: Option<f64>,
    /// Calls answered per second since the previous sample.
    pub calls_per_sec: Option<f64>,
}

/// One breaker transition and why it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TransitionView {
    /// When the page learnt of it (milliseconds since the Unix epoch).
    pub at_unix_ms: u64,
    /// State left.
    pub from: BreakerState,
    /// State entered.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// How long the breaker stays open, when it opened (milliseconds).
    pub open_for_ms: Option<u64>,
    /// The breaker's window that made the decision.
    pub window: WindowSnapshot,
    /// The reason in words, from the reason and the window's counts only, e.g.
    /// `"3 consecutive failures; open for 30s"`.
    pub summary: String,
}

impl TransitionView {
    pub(super) fn new(at: SystemTime, transition: &Transition) -> Self {
        TransitionView {
            at_unix_ms: unix_ms(at),
            from: transition.from,
            to: transition.to,
            reason: transition.reason,
            open_for_ms: transition.open_for.map(|d| d.as_millis() as u64),
            window: transition.snapshot,
            summary: summary(transition),
        }
    }
}

/// The reason of `transition` in words.
fn summary(transition: &Transition) -> String {
    let window = &transition.snapshot;
    let mut text = match transition.reason {
        TransitionReason::ConsecutiveFailures => {
            format!("{} consecutive failures", window.consecutive_failures)
        }
        TransitionReason::FailureRate => format!(
            "failure rate {:.0}% over {} calls",
            window.failure_rate * 100.0,
            window.calls
        ),
        TransitionReason::SlowCallRate => format!(
            "slow-call rate {:.0}% over {} calls",
            window.slow_call_rate * 100.0,
            window.calls
        ),
        TransitionReason::OpenElapsed => "open period over; next call is a probe".to_string(),
        TransitionReason::ProbeFailed => "a probe failed".to_string(),
        TransitionReason::ProbesSucceeded => "every probe succeeded".to_string(),
        TransitionReason::HalfOpenTimeout => "no probe answered in time".to_string(),
        TransitionReason::ForcedOpen => "forced open by an operator".to_string(),
        TransitionReason::Disabled => "disabled by an operator".to_string(),
        TransitionReason::Reset => "reset by an operator".to_string(),
    };
    if let Some(open_for) = transition.open_for {
        let open_for = std::time::Duration::from_millis(open_for.as_millis() as u64);
        text.push_str(&format!(
            "; open for {}",
            humantime::format_duration(open_for)
        ));
    }
    text
}

/// Readiness (`/health`): Kubernetes readiness semantics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Readiness {
    /// True while every critical service is healthy or degraded (HTTP 200); false when one is
    /// unhealthy or missing (HTTP 503).
    pub ready: bool,
    /// Critical services that are not registered.
    pub missing: Vec<String>,
    /// Every registered service's health, sorted by name.
    pub services: Vec<ReadinessEntry>,
    /// Every keyed service's keys and open keys (`top` empty); they do not decide readiness.
    pub keyed: Vec<KeyedSnapshot>,
}

/// One service's health in [`Readiness`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReadinessEntry {
    /// Its health (serialized flat).
    #[serde(flatten)]
    pub health: HealthSnapshot,
    /// Whether it decides readiness.
    pub critical: bool,
}

/// Milliseconds since the Unix epoch (0 before it).
pub(super) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
