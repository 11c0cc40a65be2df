//! Model and property checks of the adaptive concurrency limits in `warden::limit`.
//!
//! - AIMD is compared step by step with a reference written here in plain integers
//!   (`backoff_ratio` is a whole percentage, so `limit × pct / 100` is exact): the limit after
//!   every sample and the `on_sample` return value must be identical.
//! - Gradient has no simple closed form, so it is checked against properties that hold for any
//!   configuration and history:
//!   * the limit stays within `[min_limit, max_limit]`, and `on_sample` returns the new limit
//!     exactly when it changed;
//!   * one sample never lowers the real-valued estimate below `estimate × (1 − smoothing / 2)`
//!     (the gradient's floor of 0.5) nor raises it by more than `smoothing × queue` (its
//!     ceiling of 1), which bounds the integer limit the test can observe;
//!   * a dropped sample never raises the limit; a sample from an app-limited caller
//!     (`2 × in_flight < limit`) never changes it;
//!   * a sample after which the RTT averages show no queueing (`rtt_tolerance × long ≥ short`,
//!     with a 1 % margin for the averages being read back as whole nanoseconds) never lowers
//!     it; one after which they show heavy queueing (`short ≥ 2 × rtt_tolerance × long`, the
//!     gradient's floor of 0.5) never raises it while the queue allowance is at most half the
//!     limit;
//!   * from a steady state (constant RTT so far), a slower sample never gives a higher limit
//!     than a faster one;
//!   * a steady RTT with the caller using the limit grows it to `max_limit` (queue ≥ 1), and
//!     repeated drops bring it down to `min_limit`.

use crate::common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use warden::limit::{
    AimdConfig, ConcurrencyLimit, ConcurrencyLimitConfig, Gradient, GradientConfig, QueueSize,
};

/// How a sample's `in_flight` relates to the limit when it is taken.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// Just below half the limit: app-limited.
    BelowHalf,
    /// Exactly half the limit (rounded up): busy.
    Half,
    /// At the limit.
    Full,
    /// Any number.
    Raw(u32),
}

impl Load {
    fn in_flight(self, limit: u32) -> u32 {
        match self {
            Load::BelowHalf => limit.div_ceil(2).saturating_sub(1),
            Load::Half => limit.div_ceil(2),
            Load::Full => limit,
            Load::Raw(n) => n,
        }
    }
}

fn load() -> impl Strategy<Value = Load> {
    // a flat strategy (selector, value) generates much faster than a union of strategies
    (0u8..4, 0u32..600).prop_map(|(which, n)| match which {
        0 => Load::BelowHalf,
        1 => Load::Half,
        2 => Load::Full,
        _ => Load::Raw(n),
    })
}

#[derive(Debug, Clone)]
struct Sample {
    /// In microseconds.
    rtt_us: u64,
    load: Load,
    dropped: bool,
    /// Time since the previous sample, in microseconds (often shorter than an RTT, so calls
    /// overlap a decrease).
    gap_us: u64,
}

fn sample(rtt_us: impl Strategy<Value = u64>) -> impl Strategy<Value = Sample> {
    (rtt_us, load(), prop::bool::weighted(0.15), 0u64..30_000).prop_map(
        |(rtt_us, load, dropped, gap_us)| Sample {
            rtt_us,
            load,
            dropped,
            gap_us,
        },
    )
}

fn bounds() -> impl Strategy<Value = (u32, u32, u32)> {
    (1u32..50, 0u32..300, any::<prop::sample::Index>()).prop_map(|(min, span, at)| {
        let max = min + span;
        (min + at.index(span as usize + 1) as u32, min, max)
    })
}

// ---------------------------------------------------------------------------------------------
// AIMD against an integer reference
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct AimdParams {
    initial: u32,
    min: u32,
    max: u32,
    backoff_pct: u32,
    threshold_us: u64,
}

fn aimd_params() -> impl Strategy<Value = AimdParams> {
    (bounds(), 50u32..100, 100u64..20_000).prop_map(
        |((initial, min, max), backoff_pct, threshold_us)| AimdParams {
            initial,
            min,
            max,
            backoff_pct,
            threshold_us,
        },
    )
}

fn check_aimd(p: AimdParams, samples: Vec<Sample>) -> Result<(), TestCaseError> {
    let config = ConcurrencyLimitConfig::Aimd(AimdConfig {
        initial_limit: p.initial,
        min_limit: p.min,
        max_limit: p.max,
        backoff_ratio: f64::from(p.backoff_pct) / 100.0,
        latency_threshold: Duration::from_micros(p.threshold_us),
        ..AimdConfig::default()
    });
    prop_assert_eq!(config.validate(), Ok(()));
    let mut real = ConcurrencyLimit::new(&config);
    let mut model = u64::from(p.initial);
    // Growth steps since the limit last moved; when it was last lowered (µs since t0).
    let mut growth = 0u64;
    let mut last_decrease: Option<u64> = None;
    // Starts a minute in, so `now − rtt` never precedes t0.
    let t0 = Instant::now();
    let mut now_us = 60_000_000u64;
    for (step, s) in samples.iter().enumerate() {
        now_us += s.gap_us;
        let in_flight = s.load.in_flight(model as u32);
        let before = model;
        if s.dropped || s.rtt_us > p.threshold_us {
            let started = now_us - s.rtt_us;
            if last_decrease.is_none_or(|at| started >= at) {
                model = (model * u64::from(p.backoff_pct) / 100)
                    .clamp(u64::from(p.min), u64::from(p.max));
                last_decrease = Some(now_us);
                growth = 0;
            }
        } else if 2 * u64::from(in_flight) >= model {
            growth += 1;
            if growth >= model {
                growth = 0;
                model = (model + 1).clamp(u64::from(p.min), u64::from(p.max));
            }
        }
        let now = t0 + Duration::from_micros(now_us);
        let got = real.on_sample(now, Duration::from_micros(s.rtt_us), in_flight, s.dropped);
        let want = (model != before).then_some(model as u32);
        prop_assert_eq!(got, want, "step {}: {:?}", step, s);
        prop_assert_eq!(u64::from(real.limit()), model, "step {}", step);
    }
    Ok(())
}

#[test]
fn aimd_agrees_with_integer_reference() {
    let config = common::proptest_config(2_000);
    let mut runner = TestRunner::new(config);
    // RTTs around the thresholds the params draw from.
    let strategy = (
        aimd_params(),
        prop::collection::vec(sample(0u64..25_000), 1..200),
    );
    if let Err(e) = runner.run(&strategy, |(p, samples)| check_aimd(p, samples)) {
        panic!("{e}");
    }
}

#[test]
fn aimd_reference_follows_a_hand_checked_sequence() {
    // limit 4, ratio 0.75, samples 100 ms apart: 4 busy fast → 5; drop → 3 (floor 3.75); a
    // slow call that started before that drop → unchanged; one started after → 2; idle fast →
    // 2; 2 busy → 3.
    let config = ConcurrencyLimitConfig::Aimd(AimdConfig {
        initial_limit: 4,
        min_limit: 2,
        max_limit: 50,
        backoff_ratio: 0.75,
        latency_threshold: Duration::from_millis(10),
        ..AimdConfig::default()
    });
    let mut l = ConcurrencyLimit::new(&config);
    let t0 = Instant::now() + Duration::from_secs(1);
    let ms = Duration::from_millis;
    let got: Vec<_> = [
        (ms(1), 2, false),
        (ms(1), 2, false),
        (ms(1), 2, false),
        (ms(1), 2, false),
        (ms(1), 5, true),
        (ms(150), 8, false),
        (ms(11), 8, false),
        (ms(1), 0, false),
        (ms(10), 1, false),
        (ms(10), 1, false),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (rtt, in_flight, dropped))| {
        l.on_sample(t0 + ms(100) * i as u32, rtt, in_flight, dropped)
    })
    .collect();
    assert_eq!(
        got,
        [
            None,
            None,
            None,
            Some(5),
            Some(3),
            None,
            Some(2),
            None,
            None,
            Some(3)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Gradient properties
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct GradientParams {
    config: GradientConfig,
}

fn gradient_params() -> impl Strategy<Value = GradientParams> {
    (
        bounds(),
        prop_oneof![Just(0.2), Just(1.0), 0.01..=1.0f64],
        prop_oneof![Just(1.0), Just(1.5), 1.0..4.0f64],
        1u32..30,
        1u32..700,
        prop_oneof![Just(QueueSize::Sqrt), (0u32..10).prop_map(QueueSize::Fixed)],
    )
        .prop_map(
            |((initial, min, max), smoothing, tolerance, short, extra, queue)| GradientParams {
                config: GradientConfig {
                    initial_limit: initial,
                    min_limit: min,
                    max_limit: max,
                    smoothing,
                    rtt_tolerance: tolerance,
                    short_window: short,
                    long_window: short + extra,
                    queue_size: queue,
                    ..GradientConfig::default()
                },
            },
        )
}

/// RTTs in microseconds: mostly near a baseline, with spikes and recoveries.
fn rtt_us() -> impl Strategy<Value = u64> {
    (0u8..8, 0u64..1_000_000).prop_map(|(which, x)| match which {
        0..=3 => 9_000 + x % 2_000,
        4 | 5 => 30_000 + x % 170_000,
        6 => 1 + x % 2_000,
        _ => 1 + x,
    })
}

#[derive(Debug, Default)]
struct GradientCoverage {
    samples: u64,
    no_queueing_busy: u64,
    heavy_queueing_busy: u64,
    rises: u64,
    falls: u64,
    at_min: u64,
    at_max: u64,
}

fn check_gradient(
    p: GradientParams,
    samples: Vec<Sample>,
    coverage: &RefCell<GradientCoverage>,
) -> Result<(), TestCaseError> {
    let c = &p.config;
    prop_assert_eq!(
        ConcurrencyLimitConfig::Gradient(c.clone()).validate(),
        Ok(())
    );
    let mut g = Gradient::new(c.clone());
    prop_assert_eq!(g.limit(), c.initial_limit);
    let mut cov = coverage.borrow_mut();
    let t0 = Instant::now();
    for (step, s) in samples.iter().enumerate() {
        let before = g.limit();
        let in_flight = s.load.in_flight(before);
        let got = g.on_sample(t0, Duration::from_micros(s.rtt_us), in_flight, s.dropped);
        let after = g.limit();
        let ctx = || format!("step {step}: {s:?}, in flight {in_flight}, {before} -> {after}");
        prop_assert!(
            (c.min_limit..=c.max_limit).contains(&after),
            "out of bounds, {}",
            ctx()
        );
        prop_assert_eq!(got, (after != before).then_some(after), "return, {}", ctx());
        // The estimate e is in [before, before + 1). The gradient is in [0.5, 1], so one sample
        // moves e to at least e × (1 − smoothing / 2) and at most e + smoothing × queue.
        let queue = match c.queue_size {
            QueueSize::Sqrt => f64::from(before).sqrt(),
            QueueSize::Fixed(n) => f64::from(n),
        };
        let lowest = (f64::from(before) * (1.0 - c.smoothing / 2.0) - 1e-9).floor();
        prop_assert!(
            f64::from(after) >= lowest.max(f64::from(c.min_limit)),
            "fell below {}, {}",
            lowest,
            ctx()
        );
        prop_assert!(
            f64::from(after) < f64::from(before) + 1.0 + c.smoothing * queue + 1e-9,
            "rose by more than 1 + smoothing × queue, {}",
            ctx()
        );
        let busy = 2 * u64::from(in_flight) >= u64::from(before);
        if s.dropped {
            prop_assert!(after <= before, "drop raised the limit, {}", ctx());
        } else if !busy {
            prop_assert_eq!(
                after,
                before,
                "app-limited sample moved the limit, {}",
                ctx()
            );
        } else {
            let long = g.long_rtt().expect("sampled").as_nanos() as f64;
            let short = g.short_rtt().expect("sampled").as_nanos() as f64;
            if c.rtt_tolerance * long >= 1.01 * short {
                cov.no_queueing_busy += 1;
                prop_assert!(after >= before, "no queueing lowered the limit, {}", ctx());
            }
            if short >= 2.01 * c.rtt_tolerance * long && queue <= f64::from(before) / 2.0 {
                cov.heavy_queueing_busy += 1;
                prop_assert!(
                    after <= before,
                    "heavy queueing raised the limit, {}",
                    ctx()
                );
            }
        }
        cov.samples += 1;
        cov.rises += u64::from(after > before);
        cov.falls += u64::from(after < before);
        cov.at_min += u64::from(after == c.min_limit);
        cov.at_max += u64::from(after == c.max_limit);
    }
    Ok(())
}

#[test]
fn gradient_keeps_its_invariants() {
    let config = common::proptest_config(2_000);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let coverage = RefCell::new(GradientCoverage::default());
    let strategy = (
        gradient_params(),
        prop::collection::vec(sample(rtt_us()), 1..300),
    );
    if let Err(e) = runner.run(&strategy, |(p, samples)| {
        check_gradient(p, samples, &coverage)
    }) {
        panic!("{e}");
    }
    let coverage = coverage.into_inner();
    println!("gradient model: {cases} cases, {coverage:?}");
    if cases >= 1000 {
        let c = &coverage;
        for (what, n) in [
            ("no queueing", c.no_queueing_busy),
            ("heavy queueing", c.heavy_queueing_busy),
            ("rises", c.rises),
            ("falls", c.falls),
            ("at min", c.at_min),
            ("at max", c.at_max),
        ] {
            assert!(n >= 1_000, "{what} rarely reached: {coverage:?}");
        }
    }
}

#[test]
fn gradient_slower_sample_never_gives_a_higher_limit_from_steady_state() {
    let config = common::proptest_config(2_000);
    let mut runner = TestRunner::new(config);
    let strategy = (
        gradient_params(),
        1_000u64..100_000,
        0usize..700,
        load(),
        (1u64..1_000_000, 1u64..1_000_000),
    );
    let result = runner.run(&strategy, |(p, steady_us, n, load, (a, b))| {
        let t0 = Instant::now();
        let mut g = Gradient::new(p.config.clone());
        for _ in 0..n {
            let in_flight = load.in_flight(g.limit());
            g.on_sample(t0, Duration::from_micros(steady_us), in_flight, false);
        }
        let in_flight = load.in_flight(g.limit());
        let (fast, slow) = (a.min(b), a.max(b));
        let (mut after_fast, mut after_slow) = (g.clone(), g);
        after_fast.on_sample(t0, Duration::from_micros(fast), in_flight, false);
        after_slow.on_sample(t0, Duration::from_micros(slow), in_flight, false);
        prop_assert!(
            after_slow.limit() <= after_fast.limit(),
            "{} µs gave {}, {} µs gave {}",
            slow,
            after_slow.limit(),
            fast,
            after_fast.limit()
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn gradient_steady_latency_reaches_max_and_drops_reach_min() {
    let config = common::proptest_config(500);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&(gradient_params(), 1_000u64..100_000), |(p, rtt_us)| {
        let c = &p.config;
        let t0 = Instant::now();
        let rtt = Duration::from_micros(rtt_us);
        let mut g = Gradient::new(c.clone());
        let grows = c.queue_size != QueueSize::Fixed(0);
        // each step adds at least smoothing × 1 while the queue allowance is at least 1
        let steps = ((f64::from(c.max_limit - c.min_limit) + 1.0) / c.smoothing).ceil() as usize;
        for _ in 0..steps + 1 {
            let before = g.limit();
            g.on_sample(t0, rtt, before, false);
            prop_assert!(g.limit() >= before, "steady latency lowered the limit");
        }
        if grows {
            prop_assert_eq!(g.limit(), c.max_limit);
        }
        let mut drops = 0;
        while g.limit() > c.min_limit {
            let before = g.limit();
            g.on_sample(t0, rtt, before, true);
            drops += 1;
            prop_assert!(drops < 100_000, "drops never reached min_limit");
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
