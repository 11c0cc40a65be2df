//! Model check of the client-side adaptive throttle: random sequences of `admit`, `record`,
//! reads and time advances are applied to `warden::throttle::Throttle` and to a reference model
//! written here from the documented semantics; after every step both must agree.
//!
//! The model keeps every event as `(instant, requests, accepts)` and recomputes the counts of
//! the window from scratch: an event counts at `now` while `bucket(now) − bucket(event) <
//! buckets`, with `bucket(t) = (t − origin) / (window / buckets)` in whole nanoseconds and
//! `origin` the first event. The reject probability is then the SRE formula with the
//! `minimum_requests` floor and the `max_reject_probability` cap, computed directly.
//!
//! Checked after every step: the probability (within 1e-9), the snapshot counts (exactly),
//! that a request is never rejected when the probability is 0, that a rejection carries the
//! probability of that moment, and, over all runs, that the number of rejections matches the
//! sum of the probabilities (a binomial check at 5 σ). A separate run checks the equilibrium
//! the SRE book predicts: a backend that accepts at most C requests per second receives about
//! `k × C` of them.
//!
//! Time only moves forward here; earlier instants are covered by the window's unit tests.

use crate::common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use warden::throttle::{Throttle, ThrottleConfig, Throttled};

#[derive(Debug, Clone)]
struct Params {
    k: f64,
    window: Duration,
    buckets: u32,
    minimum_requests: u32,
    cap: f64,
    seed: u64,
}

impl Params {
    fn config(&self) -> ThrottleConfig {
        ThrottleConfig {
            k: self.k,
            window: self.window,
            buckets: self.buckets,
            minimum_requests: self.minimum_requests,
            max_reject_probability: self.cap,
            ..ThrottleConfig::default()
        }
    }
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop_oneof![Just(1.0), Just(1.5), Just(2.0), 1.0..4.0f64],
        prop_oneof![
            (10u64..200).prop_map(Duration::from_millis),
            (1u64..30).prop_map(Duration::from_secs),
            Just(Duration::from_secs(120)),
        ],
        1u32..=20,
        prop_oneof![Just(0u32), 0u32..30],
        prop_oneof![Just(1.0), Just(0.9), Just(0.0), 0.0..=1.0f64],
        any::<u64>(),
    )
        .prop_map(|(k, window, buckets, minimum_requests, cap, seed)| {
            // keep buckets at least 1 ms wide, as validation requires
            let most = u32::try_from(window.as_millis()).unwrap_or(u32::MAX);
            Params {
                k,
                window,
                buckets: buckets.min(most),
                minimum_requests,
                cap,
                seed,
            }
        })
}

#[derive(Debug, Clone)]
enum Op {
    /// `admit` this many times at the same instant.
    Admit(u32),
    /// `record` once.
    Record(bool),
    /// Move time forward by this fraction of the window (in thousandths).
    Advance(u32),
    /// Move time forward to exactly the next bucket boundary, or 1 ns before it.
    ToBoundary(bool),
    /// Read the probability at `now + fraction of the window` without moving time.
    Peek(u32),
}

fn op() -> impl Strategy<Value = Op> {
    // a flat strategy (selector, value) generates much faster than a union of strategies
    (0u8..11, 0u32..1_500).prop_map(|(which, x)| match which {
        0..=3 => Op::Admit(1 + x % 7),
        4..=6 => Op::Record(x % 2 == 0),
        7 => Op::Advance(x % 200),
        8 => Op::Advance(x),
        9 => Op::ToBoundary(x % 2 == 0),
        _ => Op::Peek(x),
    })
}

/// The reference: every event kept, counts recomputed on each question.
struct Model {
    p: Params,
    width: u128,
    events: Vec<(Duration, u64, u64)>,
}

impl Model {
    fn new(p: Params) -> Self {
        let width = (p.window / p.buckets).as_nanos();
        Model {
            p,
            width,
            events: Vec::new(),
        }
    }

    fn bucket(&self, at: Duration) -> u128 {
        let origin = self.events.first().map_or(at, |e| e.0);
        (at - origin).as_nanos() / self.width
    }

    fn counts(&self, now: Duration) -> (u64, u64) {
        let current = self.bucket(now);
        let live = self
            .events
            .iter()
            .filter(|(at, _, _)| current - self.bucket(*at) < u128::from(self.p.buckets));
        live.fold((0, 0), |(r, a), (_, dr, da)| (r + dr, a + da))
    }

    fn probability(&self, now: Duration) -> f64 {
        let (requests, accepts) = self.counts(now);
        if requests < u64::from(self.p.minimum_requests) {
            return 0.0;
        }
        let p = (requests as f64 - self.p.k * accepts as f64) / (requests as f64 + 1.0);
        p.clamp(0.0, self.p.cap)
    }

    /// The instant the next bucket starts, seen from `now`.
    fn next_boundary(&self, now: Duration) -> Duration {
        let Some(origin) = self.events.first().map(|e| e.0) else {
            return now;
        };
        let next = (self.bucket(now) + 1) * self.width;
        origin + Duration::from_nanos(u64::try_from(next).expect("small"))
    }
}

#[derive(Debug, Default)]
struct Stats {
    admits: u64,
    rejections: u64,
    /// Σ p and Σ p (1 − p) over all admits.
    expected: f64,
    variance: f64,
    /// Admits at the cap, and admits while the window held fewer than `minimum_requests`.
    capped: u64,
    below_minimum: u64,
    expiries: u64,
}

fn check(p: Params, ops: Vec<Op>, stats: &RefCell<Stats>) -> Result<(), TestCaseError> {
    let config = p.config();
    prop_assert_eq!(config.validate(), Ok(()));
    let t0 = Instant::now();
    let mut real = Throttle::new(config, p.seed);
    let mut model = Model::new(p.clone());
    let mut now = Duration::ZERO;
    let mut stats = stats.borrow_mut();
    for (step, op) in ops.iter().enumerate() {
        let at = t0 + now;
        match *op {
            Op::Admit(n) => {
                for _ in 0..n {
                    let expected = model.probability(now);
                    let got = real.admit(at);
                    model.events.push((now, 1, 0));
                    stats.admits += 1;
                    stats.expected += expected;
                    stats.variance += expected * (1.0 - expected);
                    let (requests, _) = model.counts(now);
                    stats.capped += u64::from(expected > 0.0 && expected == p.cap);
                    stats.below_minimum +=
                        u64::from(requests <= u64::from(p.minimum_requests) && requests > 1);
                    match got {
                        Ok(()) => {}
                        Err(Throttled { probability }) => {
                            stats.rejections += 1;
                            prop_assert!(expected > 0.0, "rejected at p = 0, step {}", step);
                            prop_assert!(
                                (probability - expected).abs() < 1e-9,
                                "rejection carries {} instead of {}, step {}",
                                probability,
                                expected,
                                step
                            );
                        }
                    }
                }
            }
            Op::Record(accepted) => {
                real.record(at, accepted);
                if accepted {
                    model.events.push((now, 0, 1));
                }
            }
            Op::Advance(thousandths) => {
                let before = model.counts(now).0;
                now += p.window * thousandths / 1_000;
                stats.expiries += u64::from(model.counts(now).0 < before);
            }
            Op::ToBoundary(exact) => {
                let boundary = model.next_boundary(now);
                now = if exact {
                    boundary
                } else {
                    boundary.saturating_sub(Duration::from_nanos(1)).max(now)
                };
            }
            Op::Peek(thousandths) => {
                let later = now + p.window * thousandths / 1_000;
                let (got, want) = (
                    real.reject_probability(t0 + later),
                    model.probability(later),
                );
                prop_assert!((got - want).abs() < 1e-9, "peek {} vs {}", got, want);
            }
        }
        let snapshot = real.snapshot(t0 + now);
        let (requests, accepts) = model.counts(now);
        prop_assert_eq!(
            (snapshot.requests, snapshot.accepts),
            (requests, accepts),
            "counts after step {}: {:?}",
            step,
            op
        );
        let want = model.probability(now);
        prop_assert!(
            (real.reject_probability(t0 + now) - want).abs() < 1e-9
                && (snapshot.reject_probability - want).abs() < 1e-9,
            "probability {} vs model {} after step {}: {:?}",
            snapshot.reject_probability,
            want,
            step,
            op
        );
    }
    Ok(())
}

#[test]
fn throttle_agrees_with_reference_model() {
    let config = common::proptest_config(2_000);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let stats = RefCell::new(Stats::default());
    let strategy = (params(), prop::collection::vec(op(), 1..120));
    if let Err(e) = runner.run(&strategy, |(p, ops)| check(p, ops, &stats)) {
        panic!("{e}");
    }
    let stats = stats.into_inner();
    println!("throttle model: {cases} cases, {stats:?}");
    // Rejections follow the probabilities: the count is a sum of independent Bernoulli draws.
    let sigma = stats.variance.sqrt();
    assert!(
        (stats.rejections as f64 - stats.expected).abs() <= 5.0 * sigma + 1.0,
        "{} rejections, {:.1} ± {:.1} expected",
        stats.rejections,
        stats.expected,
        sigma
    );
    if cases >= 1000 {
        assert!(stats.expected >= 1_000.0, "too few risky admits: {stats:?}");
        assert!(stats.capped >= 100, "{stats:?}");
        assert!(stats.below_minimum >= 100, "{stats:?}");
        assert!(stats.expiries >= 100, "{stats:?}");
    }
}

/// A backend that accepts at most `capacity` requests per second (the rest fail) behind a
/// throttle with multiplier `k`: in equilibrium it receives about `k × capacity` per second,
/// whatever the demand above that.
#[test]
fn backend_receives_about_k_times_what_it_accepts() {
    for (k, demand, capacity) in [(2.0, 100u32, 20u32), (1.5, 200, 50), (2.0, 50, 40)] {
        let config = ThrottleConfig {
            k,
            window: Duration::from_secs(10),
            buckets: 10,
            minimum_requests: 0,
            max_reject_probability: 1.0,
            ..ThrottleConfig::default()
        };
        let t0 = Instant::now();
        let mut throttle = Throttle::new(config, 99);
        let seconds = 60u32;
        let (mut sent_late, mut accepted_late) = (0u32, 0u32);
        for second in 0..seconds {
            let mut accepted_this_second = 0;
            for i in 0..demand {
                let now = t0
                    + Duration::from_secs(u64::from(second))
                    + Duration::from_secs(1) * i / demand;
                if throttle.admit(now).is_err() {
                    continue;
                }
                let accepted = accepted_this_second < capacity;
                accepted_this_second += u32::from(accepted);
                throttle.record(now, accepted);
                if second >= 20 {
                    sent_late += 1;
                    accepted_late += u32::from(accepted);
                }
            }
        }
        let per_second = f64::from(sent_late) / f64::from(seconds - 20);
        let target = (k * f64::from(capacity)).min(f64::from(demand));
        assert!(
            (per_second - target).abs() <= 0.1 * target,
            "k {k}, demand {demand}/s, capacity {capacity}/s: backend saw {per_second:.1}/s, \
             expected about {target:.1}/s"
        );
        assert!(f64::from(accepted_late) / f64::from(seconds - 20) <= f64::from(capacity));
    }
}

/// The model itself on hand-checked numbers.
#[test]
fn model_follows_hand_checked_examples() {
    let mut m = Model::new(Params {
        k: 2.0,
        window: Duration::from_secs(10),
        buckets: 5, // 2 s buckets
        minimum_requests: 3,
        cap: 0.8,
        seed: 0,
    });
    let s = Duration::from_secs;
    m.events.push((s(1), 1, 0));
    m.events.push((s(2), 1, 0));
    assert_eq!(m.probability(s(2)), 0.0, "2 requests: below the minimum");
    m.events.push((s(3), 1, 1));
    // 3 requests, 1 accept: (3 - 2) / 4
    assert_eq!(m.counts(s(3)), (3, 1));
    assert_eq!(m.probability(s(3)), 0.25);
    // bucket(t) = (t - 1 s) / 2 s: the events at 1 s and 2 s are in bucket 0 and leave at
    // bucket 5 (11 s); the one at 3 s is in bucket 1 and leaves at 13 s.
    assert_eq!(m.counts(s(11) - Duration::from_nanos(1)), (3, 1));
    assert_eq!(m.counts(s(11)), (1, 1));
    assert_eq!(m.counts(s(13)), (0, 0));
    assert_eq!(m.next_boundary(s(4)), s(5));
    for _ in 0..20 {
        m.events.push((s(4), 1, 0));
    }
    assert_eq!(m.probability(s(4)), 0.8, "21/24 capped");
}
