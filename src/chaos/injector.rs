//! [`FaultInjector`]: the seeded decision, per attempt, of which fault (if any) to inject.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::config::FaultConfig;
use crate::outcome::FaultKind;

/// A fault to inject into one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then run the operation (the wait counts against the timeout).
    Latency(Duration),
    /// Fail the attempt without calling the operation.
    Error,
    /// Never complete: the attempt's timeout (or the call's deadline) ends it.
    Hang,
}

impl Fault {
    /// The fault's kind, as the metric label.
    pub fn kind(self) -> FaultKind {
        match self {
            Fault::Latency(_) => FaultKind::Latency,
            Fault::Error => FaultKind::Error,
            Fault::Hang => FaultKind::Hang,
        }
    }
}

/// Decides, attempt by attempt, which fault to inject: one uniform draw in `[0, 1)` per
/// attempt, against the cumulative probabilities hang, then error, then latency (see
/// [`FaultConfig`]). Pure: `now` is an argument, the draws come from a seeded generator, so a
/// seed gives the same faults to the same sequence of attempts.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    config: FaultConfig,
    rng: SmallRng,
    /// When injection stops by itself, if it does.
    until: Option<Instant>,
}

impl FaultInjector {
    /// An injector switched on at `now`. `config` is assumed validated
    /// ([`FaultConfig::validate`]); `seed` seeds the draws.
    pub fn new(config: FaultConfig, seed: u64, now: Instant) -> Self {
        FaultInjector {
            until: config
                .expires_after
                .and_then(|after| now.checked_add(after)),
            rng: SmallRng::seed_from_u64(seed),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Whether injection has stopped by itself at `now` (`expires_after` has passed).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now >= until)
    }

    /// The fault for an attempt starting at `now`, if any. Nothing is drawn once expired.
    pub fn decide(&mut self, now: Instant) -> Option<Fault> {
        if self.is_expired(now) {
            return None;
        }
        let c = &self.config;
        let draw: f64 = self.rng.random();
        let hang = c.hang_probability;
        let error = hang + c.error_probability;
        let latency = error + c.latency_probability;
        if draw < hang {
            Some(Fault::Hang)
        } else if draw < error {
            Some(Fault::Error)
        } else if draw < latency {
            Some(Fault::Latency(c.latency))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(config: FaultConfig, n: usize) -> [usize; 4] {
        let now = Instant::now();
        let mut injector = FaultInjector::new(config, 42, now);
        let mut seen = [0; 4];
        for _ in 0..n {
            let i = match injector.decide(now) {
                None => 0,
                Some(Fault::Latency(_)) => 1,
                Some(Fault::Error) => 2,
                Some(Fault::Hang) => 3,
            };
            seen[i] += 1;
        }
        seen
    }

    #[test]
    fn nothing_is_injected_by_an_empty_config() {
        assert_eq!(tally(FaultConfig::new(), 10_000), [10_000, 0, 0, 0]);
    }

    #[test]
    fn probability_one_injects_into_every_attempt() {
        assert_eq!(tally(FaultConfig::new().errors(1.0), 1000)[2], 1000);
        assert_eq!(tally(FaultConfig::new().hangs(1.0), 1000)[3], 1000);
        let latency = FaultConfig::new().latency(1.0, Duration::from_millis(5));
        assert_eq!(tally(latency, 1000)[1], 1000);
    }

    #[test]
    fn each_fault_comes_at_its_rate() {
        let config = FaultConfig::new()
            .errors(0.2)
            .latency(0.3, Duration::from_millis(5))
            .hangs(0.1);
        let [none, latency, error, hang] = tally(config, 100_000);
        // Binomial, n = 100 000: a standard deviation is at most 160; allow 4.
        for (seen, expected) in [
            (none, 40_000),
            (latency, 30_000),
            (error, 20_000),
            (hang, 10_000),
        ] {
            assert!(seen.abs_diff(expected) < 640, "{seen} vs {expected}");
        }
    }

    #[test]
    fn a_seed_gives_the_same_faults() {
        let config = FaultConfig::new().errors(0.5);
        let now = Instant::now();
        let run = |seed| {
            let mut injector = FaultInjector::new(config.clone(), seed, now);
            (0..64).map(|_| injector.decide(now)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn injection_stops_by_itself_when_it_expires() {
        let now = Instant::now();
        let config = FaultConfig::new()
            .errors(1.0)
            .expires_after(Duration::from_secs(60));
        let mut injector = FaultInjector::new(config, 1, now);
        assert_eq!(injector.decide(now), Some(Fault::Error));
        let almost = now + Duration::from_secs(60) - Duration::from_nanos(1);
        assert_eq!(injector.decide(almost), Some(Fault::Error));
        assert!(!injector.is_expired(almost));
        let later = now + Duration::from_secs(60);
        assert!(injector.is_expired(later));
        assert_eq!(injector.decide(later), None);
        // Without an expiry it never stops.
        let mut forever = FaultInjector::new(FaultConfig::new().errors(1.0), 1, now);
        assert_eq!(
            forever.decide(now + Duration::from_secs(1 << 30)),
            Some(Fault::Error)
        );
    }
}
