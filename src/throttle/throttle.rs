//! The adaptive throttle: admission with the SRE reject probability, and accept counting.

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::config::ThrottleConfig;
use super::window::RequestWindow;
use crate::criticality::{shed_order, Criticality};

/// A request rejected locally by [`Throttle::admit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled {
    /// The reject probability when the request was refused, in `(0, max_reject_probability]`.
    pub probability: f64,
}

/// What the throttle's window holds at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThrottleSnapshot {
    /// Requests counted by [`Throttle::admit`] in the window, rejected ones included.
    pub requests: u64,
    /// Requests the backend accepted, counted by [`Throttle::record`], in the window.
    pub accepts: u64,
    /// The probability the next request is rejected (the share of all requests refused).
    pub reject_probability: f64,
    /// The requests in the window by [criticality](crate::criticality), least critical first
    /// (as [`Criticality::ALL`]).
    pub requests_by_criticality: [u64; 3],
    /// The refusal probability of each criticality, least critical first: the refusals fall on
    /// sheddable requests first ([`shed_order`]).
    pub reject_probabilities: [f64; 3],
}

/// Client-side adaptive throttle for one dependency. See the [module docs](super) for the rule
/// and for what counts as an accept.
#[derive(Debug, Clone)]
pub struct Throttle {
    config: ThrottleConfig,
    window: RequestWindow,
    rng: SmallRng,
}

impl Throttle {
    /// An empty throttle. `config` is assumed validated ([`ThrottleConfig::validate`]);
    /// `rng_seed` seeds the rejection draws.
    pub fn new(config: ThrottleConfig, rng_seed: u64) -> Self {
        Throttle {
            window: RequestWindow::new(config.window, config.buckets),
            config,
            rng: SmallRng::seed_from_u64(rng_seed),
        }
    }

    /// Applies a new configuration (assumed validated). The requests and accepts counted are
    /// kept when the window and its buckets are unchanged (the new `k` and limits apply to them
    /// at once); otherwise the window starts empty. Returns whether the counts were kept.
    pub fn reconfigure(&mut self, config: ThrottleConfig) -> bool {
        let keep = config.window == self.config.window && config.buckets == self.config.buckets;
        if !keep {
            self.window = RequestWindow::new(config.window, config.buckets);
        }
        self.config = config;
        keep
    }

    /// The configuration.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Ask to send one request at `now`.
    ///
    /// The reject probability is computed from the window as it is before this request, then
    /// the request is counted whatever the answer. It is refused when a uniform draw in
    /// `[0, 1)` is below that probability; no number is drawn while the probability is 0, so
    /// a throttle that never rejects never touches its RNG.
    pub fn admit(&mut self, now: Instant) -> Result<(), Throttled> {
        self.admit_as(now, Criticality::Default)
    }

    /// [`admit`](Self::admit) for a request of `criticality`: its probability is its class's
    /// share of the refusals ([`shed_order`]), so sheddable requests are refused first.
    pub fn admit_as(&mut self, now: Instant, criticality: Criticality) -> Result<(), Throttled> {
        let probability = self.reject_probabilities(now)[criticality.index()];
        self.window.add(now, criticality.index(), 1, 0);
        if probability > 0.0 && self.rng.random::<f64>() < probability {
            Err(Throttled { probability })
        } else {
            Ok(())
        }
    }

    /// Report the outcome of an admitted request at `now`: `accepted` when the breaker would
    /// count it as a success or ignore it (see the [module docs](super)). Accepts are counted
    /// at the instant they are recorded; a request not accepted changes nothing, as `admit`
    /// counted it already.
    pub fn record(&mut self, now: Instant, accepted: bool) {
        if accepted {
            self.window.add(now, Criticality::Default.index(), 0, 1);
        }
    }

    /// Counts one request decided elsewhere — by an owner that publishes
    /// [`reject_probability`](Self::reject_probability) and lets other threads admit or reject
    /// with it — at `now`: `accepted` when it was sent and the backend accepted it. The same
    /// counts as [`admit`](Self::admit) followed by [`record`](Self::record), without a draw.
    pub fn count(&mut self, now: Instant, accepted: bool) {
        self.count_as(now, Criticality::Default, accepted);
    }

    /// [`count`](Self::count) for a request of `criticality`.
    pub fn count_as(&mut self, now: Instant, criticality: Criticality, accepted: bool) {
        self.window
            .add(now, criticality.index(), 1, u64::from(accepted));
    }

    /// Counts `requests` requests at `now` that the dependency did not accept (calls the
    /// throttle itself refused), as `requests` calls of [`count`](Self::count) would.
    pub fn count_refused(&mut self, now: Instant, requests: u64) {
        self.count_refused_as(now, Criticality::Default, requests);
    }

    /// [`count_refused`](Self::count_refused) for requests of `criticality`.
    pub fn count_refused_as(&mut self, now: Instant, criticality: Criticality, requests: u64) {
        self.window.add(now, criticality.index(), requests, 0);
    }

    /// The refusal probability of each criticality at `now`, least critical first: the share
    /// [`reject_probability`](Self::reject_probability) of all requests, refused sheddable
    /// requests first, then default ones, critical ones last ([`shed_order`]).
    pub fn reject_probabilities(&self, now: Instant) -> [f64; 3] {
        let counts = self.window.totals(now);
        let probability = probability(&self.config, counts.requests, counts.accepts);
        shed_order(probability, counts.by_class)
    }

    /// The probability that a request made at `now` is rejected:
    /// `min(max_reject_probability, max(0, (requests − k × accepts) / (requests + 1)))` over
    /// the window at `now`, or 0 while it holds fewer than `minimum_requests` requests.
    pub fn reject_probability(&self, now: Instant) -> f64 {
        let counts = self.window.totals(now);
        probability(&self.config, counts.requests, counts.accepts)
    }

    /// The window's counts and the reject probability at `now`.
    pub fn snapshot(&self, now: Instant) -> ThrottleSnapshot {
        let counts = self.window.totals(now);
        let reject_probability = probability(&self.config, counts.requests, counts.accepts);
        ThrottleSnapshot {
            requests: counts.requests,
            accepts: counts.accepts,
            reject_probability,
            requests_by_criticality: counts.by_class,
            reject_probabilities: shed_order(reject_probability, counts.by_class),
        }
    }
}

fn probability(config: &ThrottleConfig, requests: u64, accepts: u64) -> f64 {
    if requests < u64::from(config.minimum_requests) {
        return 0.0;
    }
    let requests = requests as f64;
    let excess = requests - config.k * accepts as f64;
    if excess <= 0.0 {
        return 0.0;
    }
    (excess / (requests + 1.0)).min(config.max_reject_probability)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn count_is_admit_and_record_without_a_draw() {
        let t0 = Instant::now();
        let cfg = ThrottleConfig {
            minimum_requests: 1,
            ..ThrottleConfig::default()
        };
        let mut counted = Throttle::new(cfg.clone(), 1);
        let mut admitted = Throttle::new(cfg, 1);
        for i in 0..50u32 {
            let accepted = i % 3 == 0;
            counted.count(t0, accepted);
            // `admit` may reject; the counts are the same either way.
            let _ = admitted.admit(t0);
            admitted.record(t0, accepted);
        }
        assert_eq!(counted.snapshot(t0), admitted.snapshot(t0));
        assert!(counted.reject_probability(t0) > 0.0);
    }

    fn config(k: f64, minimum_requests: u32, cap: f64) -> ThrottleConfig {
        ThrottleConfig {
            k,
            minimum_requests,
            max_reject_probability: cap,
            ..ThrottleConfig::default()
        }
    }

    /// Admit `n` requests at `now`, returning how many were rejected.
    fn admit_n(t: &mut Throttle, now: Instant, n: u32) -> u32 {
        (0..n).map(|_| u32::from(t.admit(now).is_err())).sum()
    }

    #[test]
    fn healthy_backend_is_never_throttled() {
        let t0 = Instant::now();
        let mut t = Throttle::new(config(1.0, 0, 1.0), 1);
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_millis(i);
            assert!(t.admit(now).is_ok());
            t.record(now, true);
        }
        assert_eq!(t.reject_probability(t0 + Duration::from_secs(10)), 0.0);
    }

    #[test]
    fn probability_follows_the_sre_formula() {
        let t0 = Instant::now();
        let mut t = Throttle::new(config(2.0, 0, 1.0), 7);
        // 10 requests, 3 accepts: (10 - 6) / 11
        admit_n(&mut t, t0, 10);
        for _ in 0..3 {
            t.record(t0, true);
        }
        t.record(t0, false);
        let s = t.snapshot(t0);
        assert_eq!((s.requests, s.accepts), (10, 3));
        assert_eq!(s.reject_probability, 4.0 / 11.0);
        assert_eq!(t.reject_probability(t0), 4.0 / 11.0);
        // 2 more accepts: 10 - 10 = 0
        t.record(t0, true);
        t.record(t0, true);
        assert_eq!(t.reject_probability(t0), 0.0);
    }

    #[test]
    fn minimum_requests_and_cap_bound_the_probability() {
        let t0 = Instant::now();
        let mut t = Throttle::new(config(2.0, 5, 0.5), 3);
        assert_eq!(
            admit_n(&mut t, t0, 5),
            0,
            "4 requests before the 5th: below the minimum"
        );
        assert_eq!(t.reject_probability(t0), 0.5, "5/6 capped at 0.5");
        admit_n(&mut t, t0, 1_000);
        assert_eq!(t.reject_probability(t0), 0.5);
        let mut off = Throttle::new(config(2.0, 0, 0.0), 3);
        assert_eq!(admit_n(&mut off, t0, 1_000), 0);
    }

    #[test]
    fn rejected_requests_count_and_carry_their_probability() {
        let t0 = Instant::now();
        let mut t = Throttle::new(config(2.0, 0, 1.0), 11);
        let mut rejected = 0;
        for i in 0..200u64 {
            let before = t.reject_probability(t0);
            match t.admit(t0) {
                Ok(()) => {}
                Err(Throttled { probability }) => {
                    assert_eq!(probability, before);
                    rejected += 1;
                }
            }
            assert_eq!(t.snapshot(t0).requests, i + 1);
        }
        // p rises as i / (i + 1): nearly all of the 200 are rejected.
        assert!(rejected > 180, "{rejected}");
    }

    #[test]
    fn rejection_frequency_matches_the_probability() {
        // 100 requests, 40 accepts, k = 2: p = 20 / 101. Each trial admits one request into a
        // copy of that state with its own seed.
        let t0 = Instant::now();
        let p = 20.0 / 101.0;
        let mut rejected = 0u32;
        let trials = 20_000u32;
        let mut base = Throttle::new(config(2.0, 0, 1.0), 0);
        admit_n(&mut base, t0, 100);
        for _ in 0..40 {
            base.record(t0, true);
        }
        assert_eq!(base.reject_probability(t0), p);
        for seed in 0..trials {
            let mut t = base.clone();
            t.rng = SmallRng::seed_from_u64(u64::from(seed));
            rejected += u32::from(t.admit(t0).is_err());
        }
        let expected = p * f64::from(trials);
        let sigma = (expected * (1.0 - p)).sqrt();
        assert!(
            (f64::from(rejected) - expected).abs() < 5.0 * sigma,
            "{rejected} vs {expected}"
        );
    }

    #[test]
    fn counts_leave_the_window_and_the_throttle_recovers() {
        let t0 = Instant::now();
        let mut t = Throttle::new(
            ThrottleConfig {
                minimum_requests: 0,
                ..ThrottleConfig::default()
            },
            5,
        );
        admit_n(&mut t, t0, 50);
        assert!(t.reject_probability(t0) > 0.8);
        // 12 buckets of 10 s: the bucket of t0 leaves the window at 120 s.
        assert!(t.reject_probability(t0 + Duration::from_millis(119_999)) > 0.8);
        assert_eq!(t.reject_probability(t0 + Duration::from_secs(120)), 0.0);
        assert!(t.admit(t0 + Duration::from_secs(120)).is_ok());
    }

    #[test]
    fn same_seed_same_decisions() {
        let t0 = Instant::now();
        let run = |seed| {
            let mut t = Throttle::new(config(2.0, 0, 0.9), seed);
            (0..300)
                .map(|i| {
                    let now = t0 + Duration::from_millis(i);
                    if i % 3 == 0 {
                        t.record(now, true);
                    }
                    t.admit(now).is_ok()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn reconfigure_keeps_the_counts_of_the_same_window() {
        let t0 = Instant::now();
        let config = ThrottleConfig {
            minimum_requests: 1,
            ..ThrottleConfig::default()
        };
        let mut throttle = Throttle::new(config.clone(), 1);
        for i in 0..40u32 {
            throttle.count(t0, i % 4 == 0);
        }
        let before = throttle.snapshot(t0);
        assert!(throttle.reconfigure(ThrottleConfig {
            k: 1.5,
            ..config.clone()
        }));
        let after = throttle.snapshot(t0);
        assert_eq!(
            (after.requests, after.accepts),
            (before.requests, before.accepts)
        );
        assert!(
            after.reject_probability > before.reject_probability,
            "k lowered"
        );

        assert!(!throttle.reconfigure(ThrottleConfig {
            window: config.window * 2,
            ..config
        }));
        assert_eq!(throttle.snapshot(t0).requests, 0);
    }

    #[test]
    fn the_refusals_fall_on_sheddable_requests_first() {
        let t0 = Instant::now();
        let mut t = Throttle::new(config(1.0, 0, 1.0), 3);
        // 100 requests, 50 accepted: half of all requests are to be refused.
        for i in 0..100u32 {
            let criticality = match i % 10 {
                0 | 1 => Criticality::Critical,
                2..=6 => Criticality::Default,
                _ => Criticality::Sheddable,
            };
            t.count_as(t0, criticality, i % 2 == 0);
        }
        let s = t.snapshot(t0);
        assert_eq!(s.requests_by_criticality, [30, 50, 20]);
        assert!((s.reject_probability - 50.0 / 101.0).abs() < 1e-12);
        // All 30 sheddable requests, then the rest from the 50 default ones; no critical one.
        assert_eq!(s.reject_probabilities[0], 1.0);
        assert!((s.reject_probabilities[1] - (5000.0 / 101.0 - 30.0) / 50.0).abs() < 1e-12);
        assert_eq!(s.reject_probabilities[2], 0.0);
        assert_eq!(t.reject_probabilities(t0), s.reject_probabilities);
        // Drawn: a critical request is never refused, a sheddable one always.
        assert!((0..5).all(|_| t.admit_as(t0, Criticality::Critical).is_ok()));
        let mut t = t.clone();
        let _ = t.admit_as(t0, Criticality::Sheddable).unwrap_err();
    }
}
