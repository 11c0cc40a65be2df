//! A recorded state change and why it happened.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::state::BreakerState;
use super::totals::WindowSnapshot;

/// One state change of a breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// State before the change.
    pub from: BreakerState,
    /// State after the change.
    pub to: BreakerState,
    /// Why the state changed.
    pub reason: TransitionReason,
    /// The `now` passed to the call that applied the change.
    pub at: Instant,
    /// The window just before the change cleared it (why the breaker opened or closed).
    pub snapshot: WindowSnapshot,
    /// How long the breaker stays open, when `to` is [`BreakerState::Open`].
    pub open_for: Option<Duration>,
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionReason {
    /// Closed → Open: `consecutive_failures` failures in a row.
    ConsecutiveFailures,
    /// Closed → Open: the failure rate reached `failure_rate_threshold`.
    FailureRate,
    /// Closed → Open: the slow-call rate reached `slow_call_rate_threshold`.
    SlowCallRate,
    /// Open → HalfOpen: the open duration elapsed.
    OpenElapsed,
    /// HalfOpen → Open: a probe failed (or was slow, when slow calls are tracked).
    ProbeFailed,
    /// HalfOpen → Closed: every probe succeeded.
    ProbesSucceeded,
    /// HalfOpen → Open: no decision within `half_open_max_wait`.
    HalfOpenTimeout,
    /// Any → ForcedOpen by [`super::Breaker::force_open`].
    ForcedOpen,
    /// Any → Disabled by [`super::Breaker::disable`].
    Disabled,
    /// Any → Closed by [`super::Breaker::reset`].
    Reset,
}

impl TransitionReason {
    /// The snake_case name, as used in metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransitionReason::ConsecutiveFailures => "consecutive_failures",
            TransitionReason::FailureRate => "failure_rate",
            TransitionReason::SlowCallRate => "slow_call_rate",
            TransitionReason::OpenElapsed => "open_elapsed",
            TransitionReason::ProbeFailed => "probe_failed",
            TransitionReason::ProbesSucceeded => "probes_succeeded",
            TransitionReason::HalfOpenTimeout => "half_open_timeout",
            TransitionReason::ForcedOpen => "forced_open",
            TransitionReason::Disabled => "disabled",
            TransitionReason::Reset => "reset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_names() {
        let all = [
            TransitionReason::ConsecutiveFailures,
            TransitionReason::FailureRate,
            TransitionReason::SlowCallRate,
            TransitionReason::OpenElapsed,
            TransitionReason::ProbeFailed,
            TransitionReason::ProbesSucceeded,
            TransitionReason::HalfOpenTimeout,
            TransitionReason::ForcedOpen,
            TransitionReason::Disabled,
            TransitionReason::Reset,
        ];
        for reason in all {
            let json = serde_json::to_string(&reason).expect("serializes");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }
}
