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
//! calls may be in flight now, always within `[min_limit, max_limit]`, and never above the
//! [ceiling](ConcurrencyLimit::ceiling) when there is one) and
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

/// `(min, max)` from the configured bounds and a ceiling: `1 ≤ min ≤ max`, and `max ≤ ceiling`
/// when `ceiling ≥ 1`. A ceiling below `min_limit` wins (the limit can never be above what can
/// be used).
fn bounds(min_limit: u32, max_limit: u32, ceiling: u32) -> (u32, u32) {
    let max = max_limit.min(ceiling).max(1);
    (min_limit.clamp(1, max), max)
}

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

    /// The same limit, never above `ceiling`: the calls that can actually be in flight (a
    /// bulkhead's `max_in_flight`). The initial limit is lowered to it too.
    ///
    /// Why: a limit above what can be used is never tested by the calls, yet both algorithms
    /// keep raising it while the dependency is busy. Published clamped to the ceiling, it
    /// looks right, but the first decreases only take it back down to the ceiling: the first
    /// congestion signals do not reduce the load. With the ceiling in the core a decrease acts
    /// at once.
    pub fn ceiling(mut self, ceiling: u32) -> Self {
        self.set_ceiling(ceiling);
        self
    }

    /// Replaces the ceiling (say a reload changed `max_in_flight`) and keeps what was learned:
    /// the limit is only lowered to the new ceiling if it is above it, and may grow up to a
    /// raised one. Returns the new limit when it changed.
    pub fn set_ceiling(&mut self, ceiling: u32) -> Option<u32> {
        match self {
            ConcurrencyLimit::Aimd(a) => a.set_ceiling(ceiling),
            ConcurrencyLimit::Gradient(g) => g.set_ceiling(ceiling),
        }
    }

    /// Calls allowed in flight now, within `[min_limit, max_limit]` and at most the ceiling.
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

    /// Issue 18: `max_in_flight = 8`, `max_limit = 50`, `backoff_ratio = 0.5`. Under load the
    /// limit sat at 8 while the core grew towards 50, so the first halving was invisible. With
    /// the ceiling the limit stays at 8, and one slow round trip halves it at once.
    #[test]
    fn the_limit_never_winds_up_past_max_in_flight_aimd() {
        let ms = Duration::from_millis;
        let config = ConcurrencyLimitConfig::Aimd(AimdConfig {
            initial_limit: 20,
            max_limit: 50,
            backoff_ratio: 0.5,
            latency_threshold: ms(100),
            ..AimdConfig::default()
        });
        let mut limit = ConcurrencyLimit::new(&config).ceiling(8);
        assert_eq!(limit.limit(), 8, "the initial limit is clamped too");
        let mut t = Instant::now();
        for _ in 0..1_000 {
            t += ms(10);
            // every call slot busy, every answer fast: AIMD would grow each round trip
            assert_eq!(limit.on_sample(t, ms(10), 8, false), None);
        }
        assert_eq!(limit.limit(), 8);
        t += ms(10);
        assert_eq!(
            limit.on_sample(t, ms(150), 8, false),
            Some(4),
            "acts at once"
        );
        // without the ceiling the same history leaves the limit far above 8
        let mut unbounded = ConcurrencyLimit::new(&config);
        let mut t = Instant::now();
        for _ in 0..1_000 {
            t += ms(10);
            unbounded.on_sample(t, ms(10), 8, false);
        }
        assert!(unbounded.limit() > 8, "{}", unbounded.limit());
    }

    /// The same check for gradient2: no queueing grows the estimate by `sqrt(limit)` per busy
    /// sample, towards `max_limit`; with the ceiling it stays at `max_in_flight`, and one drop
    /// or one very slow sample takes it below at once.
    #[test]
    fn the_limit_never_winds_up_past_max_in_flight_gradient2() {
        let ms = Duration::from_millis;
        let config = ConcurrencyLimitConfig::Gradient(GradientConfig {
            initial_limit: 20,
            max_limit: 50,
            ..GradientConfig::default()
        });
        let loaded = || {
            let mut limit = ConcurrencyLimit::new(&config).ceiling(8);
            assert_eq!(limit.limit(), 8, "the initial limit is clamped too");
            let t0 = Instant::now();
            for _ in 0..1_000 {
                assert_eq!(limit.on_sample(t0, ms(10), 8, false), None);
            }
            assert_eq!(limit.limit(), 8);
            limit
        };
        let t0 = Instant::now();
        let mut dropped = loaded();
        assert_eq!(dropped.on_sample(t0, ms(10), 8, true), Some(7), "8 × 0.9");
        let mut slow = loaded();
        let lowered = slow.on_sample(t0, ms(1_000), 8, false);
        assert!(lowered.is_some_and(|l| l < 8), "{lowered:?}");

        let mut unbounded = ConcurrencyLimit::new(&config);
        for _ in 0..1_000 {
            unbounded.on_sample(t0, ms(10), 8, false);
        }
        // without the ceiling the estimate stays at 20 (grows only while 2 × 8 ≥ limit), and
        // a drop leaves it above 8: invisible to the calls
        assert_eq!(unbounded.limit(), 20);
        assert_eq!(unbounded.on_sample(t0, ms(10), 8, true), Some(18));
    }

    #[test]
    fn a_new_ceiling_keeps_what_was_learned() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for config in [
            ConcurrencyLimitConfig::default(),
            ConcurrencyLimitConfig::Gradient(GradientConfig::default()),
        ] {
            let mut limit = ConcurrencyLimit::new(&config).ceiling(32);
            assert_eq!(limit.limit(), 20);
            assert_eq!(limit.set_ceiling(64), None, "raised: nothing to do yet");
            assert_eq!(limit.set_ceiling(10), Some(10), "lowered below the limit");
            for _ in 0..100 {
                limit.on_sample(t0, ms(1), 10, false);
            }
            assert_eq!(limit.limit(), 10);
            limit.on_sample(t0 + ms(1), ms(1), 10, true);
            let learned = limit.limit();
            assert!(learned < 10);
            assert_eq!(
                limit.set_ceiling(200),
                None,
                "a raised ceiling keeps the limit"
            );
            assert_eq!(limit.limit(), learned);
            // a ceiling below min_limit wins: the limit is never above what can be used
            let min_5 = match &config {
                ConcurrencyLimitConfig::Aimd(c) => ConcurrencyLimitConfig::Aimd(AimdConfig {
                    min_limit: 5,
                    ..c.clone()
                }),
                ConcurrencyLimitConfig::Gradient(c) => {
                    ConcurrencyLimitConfig::Gradient(GradientConfig {
                        min_limit: 5,
                        ..c.clone()
                    })
                }
            };
            let mut tight = ConcurrencyLimit::new(&min_5).ceiling(3);
            assert_eq!(tight.limit(), 3);
            assert_eq!(tight.on_sample(t0, ms(1), 3, true), None);
            assert_eq!(tight.limit(), 3);
        }
    }
}
