//! Observe-only mode ([`PolicyMode::Observe`](crate::mode::PolicyMode)) in the shared state: which
//! policies observe ([`Observing`], one word the supervisor publishes and a caller reads only
//! on a refusal path), and which policies a call is a shadow for ([`Shadow`], carried by the
//! call into each of its attempts' records).
//!
//! A call is a *shadow* for a policy that would have refused it (or its retry) had it enforced:
//! the call runs, and the supervisor records its attempts everywhere except into that policy,
//! which enforcing would never have seen them. So a policy that observes makes the same
//! decisions as it would enforcing them.

use crate::config::SupervisorConfig;
use crate::sync::{AtomicU32, Ordering};

const BREAKER: u8 = 1;
const THROTTLE: u8 = 1 << 1;
const LIMIT: u8 = 1 << 2;
const RATE_LIMIT: u8 = 1 << 3;

/// The policies a call is a shadow for: its attempts are not recorded into them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shadow(u8);

impl Shadow {
    /// A shadow for nothing: every attempt is recorded everywhere.
    pub(crate) const NONE: Shadow = Shadow(0);
    /// The breaker would have refused the call (open, or half-open with every probe taken) or
    /// its retry: no attempt of the call is recorded into the breaker.
    pub(crate) const BREAKER: Shadow = Shadow(BREAKER);
    /// The throttle would have refused the call: its attempts are not counted as the
    /// throttle's requests and accepts.
    pub(crate) const THROTTLE: Shadow = Shadow(THROTTLE);
    /// The call took a slot above the adaptive concurrency limit: its attempts are not samples
    /// of the limit.
    pub(crate) const LIMIT: Shadow = Shadow(LIMIT);

    /// Whether the call is a shadow for everything `policies` names.
    pub(crate) fn contains(self, policies: Shadow) -> bool {
        self.0 & policies.0 == policies.0
    }

    /// Whether the call is a shadow for the breaker.
    pub(crate) fn breaker(self) -> bool {
        self.contains(Shadow::BREAKER)
    }

    /// Whether the call is a shadow for the throttle.
    pub(crate) fn throttle(self) -> bool {
        self.contains(Shadow::THROTTLE)
    }

    /// Whether the call is a shadow for the adaptive concurrency limit.
    pub(crate) fn limit(self) -> bool {
        self.contains(Shadow::LIMIT)
    }

    /// This set and `other`'s policies.
    #[must_use]
    pub(crate) fn with(self, other: Shadow) -> Shadow {
        Shadow(self.0 | other.0)
    }

    /// Adds `other`'s policies.
    pub(crate) fn insert(&mut self, other: Shadow) {
        *self = self.with(other);
    }
}

/// Which policies only observe, as the supervisor decides them from its configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Modes(u8);

impl Modes {
    /// The policies of `config` whose `mode` is `observe` (a policy that is not configured
    /// observes nothing).
    pub(crate) fn of(config: &SupervisorConfig) -> Modes {
        let mut bits = 0;
        if config.breaker.mode.is_observe() {
            bits |= BREAKER;
        }
        if config
            .throttle
            .as_ref()
            .is_some_and(|t| t.mode.is_observe())
        {
            bits |= THROTTLE;
        }
        if config
            .concurrency_limit
            .as_ref()
            .is_some_and(|l| l.mode().is_observe())
        {
            bits |= LIMIT;
        }
        if config
            .rate_limit
            .as_ref()
            .is_some_and(|r| r.mode.is_observe())
        {
            bits |= RATE_LIMIT;
        }
        Modes(bits)
    }

    /// Whether the breaker observes.
    pub(crate) fn breaker(self) -> bool {
        self.0 & BREAKER != 0
    }

    /// Whether the throttle observes.
    pub(crate) fn throttle(self) -> bool {
        self.0 & THROTTLE != 0
    }

    /// Whether the adaptive concurrency limit observes.
    pub(crate) fn limit(self) -> bool {
        self.0 & LIMIT != 0
    }

    /// Whether the rate limiter observes.
    pub(crate) fn rate_limit(self) -> bool {
        self.0 & RATE_LIMIT != 0
    }

    /// Whether any policy observes.
    #[cfg(all(test, not(warden_loom)))]
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }

    /// The names of the policies that observe, in the order of the configuration
    /// (`breaker`, `throttle`, `concurrency_limit`, `rate_limit`).
    pub(crate) fn names(self) -> Vec<&'static str> {
        [
            (BREAKER, "breaker"),
            (THROTTLE, "throttle"),
            (LIMIT, "concurrency_limit"),
            (RATE_LIMIT, "rate_limit"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
}

/// The published [`Modes`]: written by the supervisor (at start and on a reload), read by a
/// caller only where a policy would refuse it, so a call that nothing refuses never reads it.
#[derive(Debug, Default)]
pub(crate) struct Observing(AtomicU32);

impl Observing {
    /// Publishes which policies observe.
    pub(crate) fn publish(&self, modes: Modes) {
        self.0.store(u32::from(modes.0), Ordering::Relaxed);
    }

    /// The policies that observe now.
    pub(crate) fn load(&self) -> Modes {
        Modes(self.0.load(Ordering::Relaxed) as u8)
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;
    use crate::breaker::BreakerConfig;
    use crate::limit::ConcurrencyLimitConfig;
    use crate::ratelimit::RateLimitConfig;
    use crate::throttle::ThrottleConfig;

    #[test]
    fn a_shadow_set_holds_exactly_the_policies_put_in() {
        let mut shadow = Shadow::NONE;
        assert!(!shadow.breaker() && !shadow.throttle() && !shadow.limit());
        shadow.insert(Shadow::THROTTLE);
        assert!(shadow.throttle() && !shadow.breaker() && !shadow.limit());
        let both = shadow.with(Shadow::LIMIT);
        assert!(both.throttle() && both.limit() && !both.breaker());
        assert!(both.contains(Shadow::THROTTLE.with(Shadow::LIMIT)));
        assert!(!both.contains(Shadow::BREAKER.with(Shadow::LIMIT)));
        assert!(both.contains(Shadow::NONE));
    }

    #[test]
    fn only_configured_policies_in_observe_mode_observe() {
        let mut config = SupervisorConfig::default();
        assert!(!Modes::of(&config).any());
        // A policy that is not configured observes nothing, whatever a default would say.
        config.breaker = BreakerConfig::default().observe();
        config.rate_limit = Some(RateLimitConfig::per_second(5.0));
        let modes = Modes::of(&config);
        assert!(modes.breaker() && !modes.throttle() && !modes.limit() && !modes.rate_limit());
        assert_eq!(modes.names(), ["breaker"]);
        config.throttle = Some(ThrottleConfig::default().observe());
        config.concurrency_limit = Some(ConcurrencyLimitConfig::default().observe());
        config.rate_limit = Some(RateLimitConfig::per_second(5.0).observe());
        config.breaker = BreakerConfig::default();
        let modes = Modes::of(&config);
        assert!(!modes.breaker() && modes.throttle() && modes.limit() && modes.rate_limit());
        assert_eq!(
            modes.names(),
            ["throttle", "concurrency_limit", "rate_limit"]
        );
        let published = Observing::default();
        assert_eq!(published.load(), Modes::default());
        published.publish(modes);
        assert_eq!(published.load(), modes);
    }
}
