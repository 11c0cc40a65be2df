//! [`PolicyMode`]: whether a policy enforces its decisions or only observes them ("dark
//! mode", as in Finagle).
//!
//! The breaker, the adaptive throttle, the adaptive concurrency limit and the rate limiter each
//! take a `mode`. In [`Observe`](PolicyMode::Observe) a policy makes and records every decision
//! as it would in [`Enforce`](PolicyMode::Enforce), and refuses nothing: a call it would have
//! refused goes ahead, counted `would_reject{reason}` (metric `warden_would_reject_total`,
//! [`CallCounts`](crate::messages::CallCounts), an
//! [`EventKind::WouldReject`](crate::messages::EventKind::WouldReject)), and runs as a *shadow*
//! for that policy: its outcome is not fed back into it, since enforcing it would never have
//! seen that call. So a policy observing a dependency makes the same decisions, at the same
//! times, as it would enforcing them.
//!
//! ```toml
//! [services.payments.breaker]
//! consecutive_failures = 5
//! mode = "observe"
//! ```

use serde::{Deserialize, Serialize};

/// Whether a policy enforces its decisions or only observes them (see the
/// [module docs](self)). Default [`Enforce`](PolicyMode::Enforce). In TOML: `mode =
/// "enforce"` or `mode = "observe"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Refuse what the policy decides to refuse.
    #[default]
    Enforce,
    /// Decide and record as in `Enforce`, refuse nothing: a call the policy would refuse goes
    /// ahead, counted `would_reject`.
    Observe,
}

impl PolicyMode {
    /// Whether this is [`Observe`](PolicyMode::Observe).
    pub const fn is_observe(self) -> bool {
        matches!(self, PolicyMode::Observe)
    }

    /// Whether this is [`Enforce`](PolicyMode::Enforce) (the default).
    pub const fn is_enforce(self) -> bool {
        matches!(self, PolicyMode::Enforce)
    }

    /// The TOML value: `"enforce"` or `"observe"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Observe => "observe",
        }
    }
}

/// Whether `mode` is the default (`Enforce`): a configuration serializes its `mode` only when
/// it observes.
pub(crate) fn is_enforce(mode: &PolicyMode) -> bool {
    mode.is_enforce()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Holder {
        #[serde(default)]
        mode: PolicyMode,
    }

    #[test]
    fn enforce_is_the_default_and_values_are_lowercase() {
        assert_eq!(PolicyMode::default(), PolicyMode::Enforce);
        assert!(PolicyMode::Observe.is_observe() && !PolicyMode::Enforce.is_observe());
        assert!(PolicyMode::Enforce.is_enforce());
        let parsed: Holder = toml::from_str("mode = \"observe\"").unwrap();
        assert_eq!(parsed.mode, PolicyMode::Observe);
        let parsed: Holder = toml::from_str("").unwrap();
        assert_eq!(parsed.mode, PolicyMode::Enforce);
        assert!(toml::from_str::<Holder>("mode = \"Observe\"").is_err());
        assert!(toml::from_str::<Holder>("mode = \"dark\"").is_err());
        for mode in [PolicyMode::Enforce, PolicyMode::Observe] {
            let text = toml::to_string(&Holder { mode }).unwrap();
            assert_eq!(text.trim(), format!("mode = \"{}\"", mode.as_str()));
        }
    }
}
