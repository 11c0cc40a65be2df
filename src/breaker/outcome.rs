//! The result of one call, as reported to the breaker.

use std::time::Duration;

/// How a call ended, from the breaker's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// The call succeeded (it still counts as slow if it took too long).
    Success,
    /// The call failed and counts against the dependency.
    Failure,
    /// The call's result says nothing about the dependency's health (e.g. cancelled by the
    /// caller, or an error the classifier ignores). Recorded nowhere; frees a probe slot.
    Ignored,
}

/// The result of one admitted call: its kind and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// How the call ended.
    pub kind: OutcomeKind,
    /// How long the call took; compared with `slow_call_duration`.
    pub duration: Duration,
}

impl Outcome {
    /// A successful call that took `duration`.
    pub fn success(duration: Duration) -> Self {
        Outcome {
            kind: OutcomeKind::Success,
            duration,
        }
    }

    /// A failed call that took `duration`.
    pub fn failure(duration: Duration) -> Self {
        Outcome {
            kind: OutcomeKind::Failure,
            duration,
        }
    }

    /// A call whose result is ignored, that took `duration`.
    pub fn ignored(duration: Duration) -> Self {
        Outcome {
            kind: OutcomeKind::Ignored,
            duration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_kind_and_duration() {
        let d = Duration::from_millis(7);
        assert_eq!(Outcome::success(d).kind, OutcomeKind::Success);
        assert_eq!(Outcome::failure(d).kind, OutcomeKind::Failure);
        assert_eq!(Outcome::ignored(d).kind, OutcomeKind::Ignored);
        assert_eq!(Outcome::failure(d).duration, d);
    }
}
