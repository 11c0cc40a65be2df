//! Model check of the health window: random sequences of records, clock advances, clears and
//! queries are applied to `warden::health::HealthWindow` and to a reference that keeps the whole
//! history and recomputes everything naively at each query: keep the last `window_size`
//! records, drop those older than `max_age`, sort the latencies, take nearest ranks, and
//! classify by the documented rules. Stats and status must be equal after every step.
//!
//! Covered: window sizes 1..=20 with `minimum_calls` anywhere in `1..=window_size`, `max_age` off
//! or 10 ms..=2 s (including samples exactly `max_age` old, 1 ns younger and 1 ns older),
//! latencies with many ties and arbitrary microsecond values, every success-rate threshold in
//! whole percent (0 %..=100 %), latency limits on or off, breaker open or not. Rates are
//! compared in integers (`successes × 100 < pct × calls`), which equals the floating-point
//! comparison of the two correctly rounded ratios for counts this small. Not covered: a query
//! `now` earlier than a record's (time going backwards).

use crate::common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use warden::health::{HealthConfig, HealthStats, HealthStatus, HealthWindow};

#[derive(Debug, Clone)]
struct Params {
    window_size: u32,
    max_age: Option<Duration>,
    minimum_calls: u32,
    degraded_pct: u32,
    unhealthy_pct: u32,
    degraded_latency: Option<Duration>,
    unhealthy_latency: Option<Duration>,
}

impl Params {
    fn config(&self) -> HealthConfig {
        HealthConfig {
            window_size: self.window_size,
            max_age: self.max_age,
            minimum_calls: self.minimum_calls,
            degraded_success_rate: f64::from(self.degraded_pct) / 100.0,
            unhealthy_success_rate: f64::from(self.unhealthy_pct) / 100.0,
            degraded_latency: self.degraded_latency,
            unhealthy_latency: self.unhealthy_latency,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Record {
        success: bool,
        latency: Duration,
    },
    Advance(Duration),
    /// Move the clock so the oldest sample still in the ring is `max_age` old, plus `offset_ns`
    /// (-1, 0 or +1), if that is in the future.
    ToExpiry(i8),
    Query {
        breaker_open: bool,
    },
    Clear,
}

fn params() -> impl Strategy<Value = Params> {
    (
        1u32..=20,
        prop::option::of(10u64..=2000),
        any::<u32>(),
        0u32..=100,
        any::<u32>(),
        prop::option::of(1u64..=500),
        prop::option::of(0u64..=1000),
    )
        .prop_map(
            |(window_size, age_ms, min_raw, degraded_pct, unhealthy_raw, degraded_ms, extra_ms)| {
                let degraded_latency = degraded_ms.map(Duration::from_millis);
                // Unhealthy is never below degraded (validation requires it).
                let unhealthy_latency =
                    extra_ms.map(|extra| Duration::from_millis(degraded_ms.unwrap_or(1) + extra));
                Params {
                    window_size,
                    max_age: age_ms.map(Duration::from_millis),
                    minimum_calls: 1 + min_raw % window_size,
                    degraded_pct,
                    unhealthy_pct: unhealthy_raw % (degraded_pct + 1),
                    degraded_latency,
                    unhealthy_latency,
                }
            },
        )
}

/// Decoded from plain numbers (much faster to generate in a debug build than nested
/// `prop_oneof!`); shrinks towards selector 0 = a fast successful record.
fn op() -> impl Strategy<Value = Op> {
    (0u8..100, any::<u32>()).prop_map(|(selector, v)| {
        let latency = match (v >> 1) % 4 {
            // Few distinct values: many ties.
            0 | 1 => {
                const TIES: [u64; 8] = [0, 1, 5, 10, 100, 500, 501, 1500];
                Duration::from_millis(TIES[(v >> 3) as usize % 8])
            }
            2 => Duration::from_micros(u64::from((v >> 3) % 3_000_000)),
            _ => Duration::from_millis(u64::from((v >> 3) % 2000)),
        };
        match selector {
            0..=49 => Op::Record {
                success: v % 5 != 0,
                latency,
            },
            50..=69 => Op::Advance(match v % 4 {
                0 => Duration::ZERO,
                1 => Duration::from_millis(u64::from((v >> 2) % 50)),
                2 => Duration::from_millis(u64::from((v >> 2) % 2500)),
                _ => Duration::from_nanos(u64::from((v >> 2) % 1_000_000)),
            }),
            70..=77 => Op::ToExpiry((v % 3) as i8 - 1),
            78..=97 => Op::Query {
                breaker_open: v % 6 == 0,
            },
            _ => Op::Clear,
        }
    })
}

/// One recorded call.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    success: bool,
    latency: Duration,
}

/// The reference: the whole history, everything recomputed per query.
struct Reference {
    p: Params,
    history: Vec<Sample>,
}

impl Reference {
    /// Samples that count at `now`: the last `window_size` records, minus those older than
    /// `max_age`.
    fn counted(&self, now: Instant) -> Vec<Sample> {
        let skip = self
            .history
            .len()
            .saturating_sub(self.p.window_size as usize);
        self.history[skip..]
            .iter()
            .filter(|s| match self.p.max_age {
                Some(age) => now.duration_since(s.at) <= age,
                None => true,
            })
            .copied()
            .collect()
    }

    fn stats(&self, now: Instant) -> HealthStats {
        let counted = self.counted(now);
        let n = counted.len();
        if n == 0 {
            return HealthStats::EMPTY;
        }
        let failures = counted.iter().filter(|s| !s.success).count() as u32;
        let mut sorted: Vec<Duration> = counted.iter().map(|s| s.latency).collect();
        sorted.sort();
        // Nearest rank: the smallest value with at least q·n values at or below it.
        let quantile = |percent: usize| {
            let rank = (percent * n).div_ceil(100).max(1);
            sorted[rank - 1]
        };
        HealthStats {
            calls: n as u32,
            failures,
            success_rate: Some(f64::from(n as u32 - failures) / n as f64),
            p50: Some(quantile(50)),
            p95: Some(quantile(95)),
            p99: Some(quantile(99)),
        }
    }

    fn status(&self, now: Instant, breaker_open: bool) -> HealthStatus {
        if breaker_open {
            return HealthStatus::Unhealthy;
        }
        let stats = self.stats(now);
        if stats.calls < self.p.minimum_calls {
            return HealthStatus::Healthy;
        }
        let successes = u64::from(stats.calls - stats.failures);
        let calls = u64::from(stats.calls);
        let below = |pct: u32| successes * 100 < u64::from(pct) * calls;
        let by_rate = if below(self.p.unhealthy_pct) {
            HealthStatus::Unhealthy
        } else if below(self.p.degraded_pct) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        let p95 = stats.p95.expect("calls ≥ minimum_calls ≥ 1");
        let above = |limit: Option<Duration>| limit.is_some_and(|l| p95 > l);
        let by_latency = if above(self.p.unhealthy_latency) {
            HealthStatus::Unhealthy
        } else if above(self.p.degraded_latency) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        by_rate.max(by_latency)
    }
}

#[derive(Debug, Default)]
struct Coverage {
    statuses: [u64; 3],
    aged_out_queries: u64,
    full_ring_queries: u64,
}

fn check(
    p: Params,
    ops: Vec<Op>,
    coverage: &std::cell::RefCell<Coverage>,
) -> Result<(), TestCaseError> {
    let config = p.config();
    prop_assert_eq!(config.validate(), Ok(()), "{:?}", p);
    // Far enough from the clock's origin that `now - max_age` always exists.
    let t0 = Instant::now() + Duration::from_secs(3600);
    let mut now = t0;
    let mut window = HealthWindow::new(config);
    let mut reference = Reference {
        p,
        history: Vec::new(),
    };
    let mut cov = coverage.borrow_mut();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Record { success, latency } => {
                window.record(now, success, latency);
                reference.history.push(Sample {
                    at: now,
                    success,
                    latency,
                });
            }
            Op::Advance(d) => now += d,
            Op::ToExpiry(offset) => {
                let skip = reference
                    .history
                    .len()
                    .saturating_sub(reference.p.window_size as usize);
                if let (Some(oldest), Some(age)) =
                    (reference.history.get(skip), reference.p.max_age)
                {
                    let target = oldest.at + age;
                    let target = match offset {
                        -1 => target - Duration::from_nanos(1),
                        1 => target + Duration::from_nanos(1),
                        _ => target,
                    };
                    now = now.max(target);
                }
            }
            Op::Query { breaker_open } => {
                let status = window.status(now, breaker_open);
                let expected = reference.status(now, breaker_open);
                prop_assert_eq!(status, expected, "status at step {}: {:?}", step, op);
                cov.statuses[usize::from(status.as_u8())] += 1;
                let retained = reference
                    .history
                    .len()
                    .min(reference.p.window_size as usize);
                let counted = reference.counted(now).len();
                cov.aged_out_queries += u64::from(counted < retained);
                cov.full_ring_queries +=
                    u64::from(reference.history.len() > reference.p.window_size as usize);
            }
            Op::Clear => {
                window.clear();
                reference.history.clear();
            }
        }
        prop_assert_eq!(
            window.stats(now),
            reference.stats(now),
            "stats after step {}: {:?}",
            step,
            op
        );
    }
    Ok(())
}

#[test]
fn health_window_agrees_with_naive_reference() {
    let config = common::proptest_config(10_000);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let coverage = std::cell::RefCell::new(Coverage::default());
    let strategy = (params(), prop::collection::vec(op(), 1..100));
    if let Err(e) = runner.run(&strategy, |(p, ops)| check(p, ops, &coverage)) {
        panic!("{e}");
    }
    let coverage = coverage.into_inner();
    println!("health model: {cases} cases, {coverage:?}");
    if cases >= 1000 {
        assert!(coverage.statuses.iter().all(|&n| n >= 100), "{coverage:?}");
        assert!(coverage.aged_out_queries >= 100, "{coverage:?}");
        assert!(coverage.full_ring_queries >= 100, "{coverage:?}");
    }
}

/// The reference itself on hand-checked numbers.
#[test]
fn reference_follows_hand_checked_examples() {
    let t0 = Instant::now() + Duration::from_secs(3600);
    let ms = Duration::from_millis;
    let mut r = Reference {
        p: Params {
            window_size: 5,
            max_age: Some(Duration::from_secs(30)),
            minimum_calls: 2,
            degraded_pct: 95,
            unhealthy_pct: 50,
            degraded_latency: Some(ms(100)),
            unhealthy_latency: Some(ms(1000)),
        },
        history: Vec::new(),
    };
    for (i, latency) in [30, 10, 20, 50, 40, 60].into_iter().enumerate() {
        r.history.push(Sample {
            at: t0 + Duration::from_secs(i as u64 * 10),
            success: i != 2,
            latency: ms(latency),
        });
    }
    // At 50 s: the first record fell out of the ring; the one at 10 s is 40 s old.
    let s = r.stats(t0 + Duration::from_secs(50));
    assert_eq!((s.calls, s.failures), (4, 1));
    assert_eq!(
        (s.p50, s.p95, s.p99),
        (Some(ms(40)), Some(ms(60)), Some(ms(60)))
    );
    assert_eq!(s.success_rate, Some(0.75));
    assert_eq!(
        r.status(t0 + Duration::from_secs(50), false),
        HealthStatus::Degraded
    );
    assert_eq!(
        r.status(t0 + Duration::from_secs(50), true),
        HealthStatus::Unhealthy
    );
    // At 80 s only the sample at 50 s is left (exactly 30 s old).
    let s = r.stats(t0 + Duration::from_secs(80));
    assert_eq!((s.calls, s.p50), (1, Some(ms(60))));
    assert_eq!(
        r.status(t0 + Duration::from_secs(80), false),
        HealthStatus::Healthy
    );
}
