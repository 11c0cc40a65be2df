//! [`RetryPolicy`]: whether and after how long a failed attempt is retried.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::RetryConfig;

/// A validated [`RetryConfig`] plus the RNG its jitter draws from.
///
/// The policy decides only from attempts and delays; whether the error is retryable is the
/// classifier's call ([`ErrorClass`](super::ErrorClass)) and whether the dependency can
/// afford the retry is the [`RetryBudget`](super::RetryBudget)'s.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    config: RetryConfig,
    rng: SmallRng,
}

impl RetryPolicy {
    /// A policy for `config` (assumed validated) whose jitter is seeded with `rng_seed`, so
    /// equal seeds give equal delay sequences.
    pub fn new(config: RetryConfig, rng_seed: u64) -> Self {
        RetryPolicy {
            config,
            rng: SmallRng::seed_from_u64(rng_seed),
        }
    }

    /// Applies a new configuration (assumed validated); the jitter's generator goes on where it
    /// was. Retries decided from now on follow the new schedule.
    pub fn reconfigure(&mut self, config: RetryConfig) {
        self.config = config;
    }

    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Total attempts allowed, including the first.
    pub fn max_attempts(&self) -> u32 {
        self.config.max_attempts
    }

    /// Delay before retry number `attempts_made` (1-based: after one attempt comes retry 1),
    /// or `None` when no retry may happen: the attempts are exhausted
    /// (`attempts_made >= max_attempts`), or the server's `retry_after` hint is longer than
    /// `max_delay`.
    ///
    /// `previous_delay` is the delay returned for the last retry ([`Duration::ZERO`] before
    /// the first). With a hint the delay is `max(backoff delay, hint)`, never above
    /// `max_delay`.
    pub fn next_delay(
        &mut self,
        attempts_made: u32,
        previous_delay: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempts_made >= self.config.max_attempts {
            return None;
        }
        let max_delay = self.config.max_delay;
        let hint = retry_after.unwrap_or(Duration::ZERO);
        if hint > max_delay {
            return None;
        }
        let backoff =
            self.config
                .backoff
                .delay(attempts_made, previous_delay, max_delay, &mut self.rng);
        Some(backoff.max(hint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::Backoff;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Delays until the policy stops, feeding each delay back as the previous one.
    fn delays(policy: &mut RetryPolicy) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut previous = Duration::ZERO;
        let mut attempts = 1;
        while let Some(delay) = policy.next_delay(attempts, previous, None) {
            out.push(delay);
            previous = delay;
            attempts += 1;
        }
        out
    }

    #[test]
    fn stops_after_max_attempts() {
        let mut policy = RetryPolicy::new(RetryConfig::constant(3, ms(10)), 0);
        assert_eq!(policy.max_attempts(), 3);
        assert_eq!(policy.next_delay(1, Duration::ZERO, None), Some(ms(10)));
        assert_eq!(policy.next_delay(2, ms(10), None), Some(ms(10)));
        assert_eq!(policy.next_delay(3, ms(10), None), None);
        assert_eq!(policy.next_delay(u32::MAX, ms(10), None), None);
        assert_eq!(delays(&mut policy), [ms(10), ms(10)]);
    }

    #[test]
    fn none_never_retries() {
        let mut policy = RetryPolicy::new(RetryConfig::off(), 0);
        assert_eq!(policy.next_delay(1, Duration::ZERO, None), None);
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::ZERO)),
            None
        );
    }

    #[test]
    fn default_policy_follows_resilience4j() {
        let mut policy = RetryPolicy::new(RetryConfig::default(), 0);
        assert_eq!(delays(&mut policy), [ms(500), ms(1000)]);
    }

    #[test]
    fn exponential_sequence_through_the_policy() {
        let config = RetryConfig::exponential(7, ms(100)).max_delay(ms(1000));
        let mut policy = RetryPolicy::new(config, 0);
        assert_eq!(
            delays(&mut policy),
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
    }

    #[test]
    fn retry_after_hint_raises_the_delay() {
        let mut policy = RetryPolicy::new(RetryConfig::constant(3, ms(100)), 0);
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        // A hint shorter than the backoff does not shorten it.
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(ms(5))),
            Some(ms(100))
        );
        // A hint exactly at max_delay is honoured.
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(10))),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn retry_after_hint_above_max_delay_stops_retrying() {
        let config = RetryConfig::constant(3, ms(100)).max_delay(Duration::from_secs(2));
        let mut policy = RetryPolicy::new(config, 0);
        assert_eq!(
            policy.next_delay(1, Duration::ZERO, Some(Duration::from_secs(3))),
            None
        );
    }

    #[test]
    fn same_seed_gives_the_same_jitter() {
        let config = RetryConfig::exponential(10, ms(100))
            .full_jitter()
            .max_delay(ms(1000));
        let first = delays(&mut RetryPolicy::new(config.clone(), 42));
        let second = delays(&mut RetryPolicy::new(config.clone(), 42));
        assert_eq!(first.len(), 9);
        assert_eq!(first, second);
        assert_ne!(first, delays(&mut RetryPolicy::new(config.clone(), 43)));
        assert!(first.iter().all(|d| *d <= ms(1000)));
        assert_eq!(
            RetryPolicy::new(config, 1).config().backoff,
            Backoff::FullJitter { base: ms(100) }
        );
    }

    #[test]
    fn decorrelated_jitter_through_the_policy() {
        let config = RetryConfig::exponential(12, ms(50))
            .decorrelated_jitter()
            .max_delay(ms(800));
        let first = delays(&mut RetryPolicy::new(config.clone(), 9));
        assert_eq!(first, delays(&mut RetryPolicy::new(config, 9)));
        let mut previous = ms(50);
        for delay in first {
            assert!(delay >= ms(50) && delay <= (previous * 3).min(ms(800)));
            previous = delay;
        }
    }
}
