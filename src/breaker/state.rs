//! The five states a breaker can be in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; outcomes are recorded and may trip the breaker.
    Closed,
    /// Calls are rejected until the open duration has elapsed.
    Open,
    /// A limited number of probe calls decide whether to close or reopen.
    HalfOpen,
    /// Opened by an operator: rejects everything until reset.
    ForcedOpen,
    /// Switched off by an operator: admits everything, records nothing, until reset.
    Disabled,
}

impl BreakerState {
    /// Every state, in `as_u8` order.
    pub const ALL: [BreakerState; 5] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::Disabled,
    ];

    /// The snake_case name, as used in configuration, metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }

    /// A compact code for publishing the state through an `AtomicU8` (index in [`Self::ALL`]).
    pub fn as_u8(&self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
        }
    }

    /// The state for a code produced by [`Self::as_u8`]; `None` for any other value.
    #[inline]
    pub fn from_u8(code: u8) -> Option<BreakerState> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_codes_round_trip_and_match_all_order() {
        for (index, state) in BreakerState::ALL.iter().enumerate() {
            assert_eq!(usize::from(state.as_u8()), index);
            assert_eq!(BreakerState::from_u8(state.as_u8()), Some(*state));
        }
        assert_eq!(BreakerState::from_u8(5), None);
        assert_eq!(BreakerState::from_u8(u8::MAX), None);
    }

    #[test]
    fn names_match_serde_and_display() {
        let names: Vec<&str> = BreakerState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["closed", "open", "half_open", "forced_open", "disabled"]
        );
        for state in BreakerState::ALL {
            let json = serde_json::to_string(&state).expect("serializes");
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(state.to_string(), state.as_str());
            let back: BreakerState = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, state);
        }
    }
}
