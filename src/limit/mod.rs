//! Adaptive concurrency limits: how many calls a dependency may have in flight, learned from
//! the latency and drops of the calls that complete (Netflix `concurrency-limits`).
//!
//! Two algorithms, each a small pure struct, and an enum choosing one from configuration:
//!
//! - [`Aimd`]: additive increase, multiplicative decrease. A fast successful sample while the
//!   dependency is busy raises the limit by 1; a drop or a sample slower than
//!   `latency_threshold` multiplies it by `backoff_ratio`.
//! - [`Gradient`]: Netflix's gradient2. The ratio of a long-term RTT average to a short-term one
//!   measures queueing; the limit follows `limit × gradient + queue_size`, smoothed.
//! - [`ConcurrencyLimit`]: either of them, built from a [`ConcurrencyLimitConfig`].
//!
//! Every algorithm answers the same two questions: [`limit`](ConcurrencyLimit::limit) (how many
//! calls may be in flight now, always within `[min_limit, max_limit]`) and
//! [`on_sample`](ConcurrencyLimit::on_sample) (one call completed: here is its round-trip time,
//! how many calls were in flight when it started — itself included — and whether it was
//! dropped; the new limit is returned when it changed).
//!
//! A **drop** is a call whose RTT says nothing useful about queueing because it did not
//! complete normally: it timed out, or the dependency refused it for overload (the outcomes a
//! breaker counts as failures because of load). A call refused locally, before it was sent, is
//! no sample at all.
//!
//! The cores are pure: time comes in as `now: Instant` (neither algorithm depends on it today;
//! it is part of the verb so a windowed algorithm can be added without changing callers) and
//! nothing is random.

mod aimd;
mod config;
mod gradient;

pub use aimd::Aimd;
pub use config::{AimdConfig, ConcurrencyLimitConfig, GradientConfig, QueueSize};
pub use gradient::Gradient;

use std::time::{Duration, Instant};

/// An adaptive concurrency limit of the configured algorithm.
#[derive(Debug, Clone)]
pub enum ConcurrencyLimit {
    /// Additive increase, multiplicative decrease.
    Aimd(Aimd),
    /// Netflix gradient2.
    Gradient(Gradient),
}

impl ConcurrencyLimit {
    /// The algorithm `config` chooses, at its initial limit. `config` is assumed validated
    /// ([`ConcurrencyLimitConfig::validate`]).
    pub fn new(config: &ConcurrencyLimitConfig) -> Self {
        match config {
            ConcurrencyLimitConfig::Aimd(c) => ConcurrencyLimit::Aimd(Aimd::new(c.clone())),
            ConcurrencyLimitConfig::Gradient(c) => {
                ConcurrencyLimit::Gradient(Gradient::new(c.clone()))
            }
        }
    }

    /// Calls allowed in flight now, within `[min_limit, max_limit]`.
    pub fn limit(&self) -> u32 {
        match self {
            ConcurrencyLimit::Aimd(a) => a.limit(),
            ConcurrencyLimit::Gradient(g) => g.limit(),
        }
    }

    /// One call completed at `now` after `rtt`, with `in_flight` calls in flight when it started
    /// (itself included); `dropped` when it timed out or was refused for overload. Returns the
    /// new limit when it changed.
    pub fn on_sample(
        &mut self,
        now: Instant,
        rtt: Duration,
        in_flight: u32,
        dropped: bool,
    ) -> Option<u32> {
        match self {
            ConcurrencyLimit::Aimd(a) => a.on_sample(now, rtt, in_flight, dropped),
            ConcurrencyLimit::Gradient(g) => g.on_sample(now, rtt, in_flight, dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_to_the_configured_algorithm() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut aimd = ConcurrencyLimit::new(&ConcurrencyLimitConfig::default());
        assert!(matches!(aimd, ConcurrencyLimit::Aimd(_)));
        assert_eq!(aimd.limit(), 20);
        let answers: Vec<_> = (0..20)
            .map(|_| aimd.on_sample(t0, ms(1), 20, false))
            .collect();
        assert_eq!(answers.last(), Some(&Some(21)), "+1 per 20 busy samples");
        assert_eq!(aimd.on_sample(t0, ms(1), 1, false), None);
        assert_eq!(aimd.on_sample(t0, ms(1), 1, true), Some(18));

        let mut gradient =
            ConcurrencyLimit::new(&ConcurrencyLimitConfig::Gradient(GradientConfig::default()));
        assert!(matches!(gradient, ConcurrencyLimit::Gradient(_)));
        assert_eq!(gradient.limit(), 20);
        assert_eq!(
            gradient.on_sample(t0, ms(10), 1, false),
            None,
            "app-limited"
        );
        let mut changed = None;
        for _ in 0..10 {
            changed = changed.or(gradient.on_sample(t0, ms(10), 20, false));
        }
        assert!(changed.is_some_and(|l| l > 20), "{changed:?}");
        assert_eq!(changed.map(|_| gradient.limit() > 20), Some(true));
    }
}
