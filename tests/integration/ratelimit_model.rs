//! Model check of the token bucket: random sequences of `try_acquire`, `penalize`, reads and
//! time advances are applied to `warden::ratelimit::RateLimiter` and to a reference model
//! written here from the documented rule; every answer must be identical to the nanosecond.
//!
//! The model keeps the token count as an exact fraction (numerator and denominator, reduced)
//! and integrates the refill rate over time: `1 / T` token per nanosecond with
//! `T = round(1e9 / rate)`, or `factor / T` before the end of a penalty, capped at `burst`. A
//! wait is found by binary search for the smallest whole number of nanoseconds after which the
//! bucket holds one token. Nothing here shares code or arithmetic with the limiter, which
//! counts integer credits.
//!
//! Time only moves forward here; earlier instants are covered by the limiter's unit tests.

use crate::common;

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use warden::ratelimit::{RateLimitConfig, RateLimited, RateLimiter};

// ---------------------------------------------------------------------------------------------
// Exact fractions
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Q {
    n: i128,
    d: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Q {
    fn new(n: i128, d: i128) -> Q {
        let g = gcd(n, d);
        Q { n: n / g, d: d / g }
    }
    fn int(n: i128) -> Q {
        Q { n, d: 1 }
    }
    fn add(self, o: Q) -> Q {
        let g = gcd(self.d, o.d);
        Q::new(self.n * (o.d / g) + o.n * (self.d / g), self.d / g * o.d)
    }
    fn sub(self, o: Q) -> Q {
        self.add(Q { n: -o.n, d: o.d })
    }
    fn cmp(self, o: Q) -> Ordering {
        (self.n * o.d).cmp(&(o.n * self.d))
    }
    fn min(self, o: Q) -> Q {
        if self.cmp(o) == Ordering::Greater {
            o
        } else {
            self
        }
    }
    fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Generated input
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Params {
    rate: f64,
    burst: u32,
    /// `max_wait` in thousandths of the interval.
    max_wait_milli_t: u64,
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop_oneof![
            Just(1.0),
            Just(3.0),
            Just(7.0),
            Just(10.0),
            Just(2.5),
            Just(1_000.0),
            Just(1e9),
            0.1..10_000.0f64
        ],
        prop_oneof![Just(1u32), 1u32..20],
        prop_oneof![Just(0u64), 0u64..5_000],
    )
        .prop_map(|(rate, burst, max_wait_milli_t)| Params {
            rate,
            burst,
            max_wait_milli_t,
        })
}

#[derive(Debug, Clone)]
enum Op {
    /// `try_acquire` this many times at the same instant.
    Acquire(u32),
    /// Move forward by this many thousandths of the interval.
    Advance(u64),
    /// Move forward by exactly the last wait or `retry_after` answered (or 1 ns less).
    AdvanceByLastAnswer(bool),
    /// `penalize(now, now + offset, factor)`, offset in thousandths of the interval (negative
    /// offsets: a penalty already over), factor in millionths.
    Penalize(i64, u32),
    /// Read the tokens at `now + offset` (thousandths of the interval) without moving time.
    Peek(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // a flat strategy (selector, values) generates much faster than a union of strategies
    (0u8..12, 0u64..10_000, 0u32..=1_000_000).prop_map(|(which, x, y)| match which {
        0..=3 => Op::Acquire(1 + (x % 4) as u32),
        4 => Op::Advance(x % 1_000),
        5 => Op::Advance(x / 2),
        6 | 7 => Op::AdvanceByLastAnswer(x % 3 != 0),
        8 => Op::Penalize(
            x as i64 - 500,
            [0, 500_000, 250_000, 1_000_000][(y % 4) as usize],
        ),
        9 => Op::Penalize(x as i64 - 500, y),
        10 => Op::Peek(x % 3_000),
        _ => Op::Acquire(1),
    })
}

// ---------------------------------------------------------------------------------------------
// The reference
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Go,
    Wait(u128),
    Refused(u128),
}

struct Model {
    interval: i128,
    burst: i128,
    max_wait: u128,
    /// Tokens at `last`; `None` before first use.
    tokens: Option<Q>,
    last: u128,
    /// End (ns since t0) and factor in millionths.
    penalty: Option<(u128, i128)>,
}

impl Model {
    fn new(p: &Params) -> Model {
        let interval = ((1e9 / p.rate).round() as i128).max(1);
        Model {
            interval,
            burst: i128::from(p.burst),
            max_wait: u128::from(p.max_wait_milli_t) * interval as u128 / 1_000,
            tokens: None,
            last: 0,
            penalty: None,
        }
    }

    /// Tokens gained over `[from, to)`.
    fn gained(&self, from: u128, to: u128) -> Q {
        let (mut slow, mut fast) = (0, to - from);
        if let Some((until, _)) = self.penalty {
            slow = until.clamp(from, to) - from;
            fast -= slow;
        }
        let factor = self.penalty.map_or(0, |(_, f)| f);
        let full = Q::new(fast as i128, self.interval);
        full.add(Q::new(slow as i128 * factor, self.interval * 1_000_000))
    }

    fn tokens_at(&self, now: u128) -> Q {
        match self.tokens {
            None => Q::int(self.burst),
            Some(t) => t
                .add(self.gained(self.last, now.max(self.last)))
                .min(Q::int(self.burst)),
        }
    }

    fn advance(&mut self, now: u128) {
        self.tokens = Some(self.tokens_at(now));
        self.last = now;
    }

    fn acquire(&mut self, now: u128) -> Answer {
        self.advance(now);
        let tokens = self.tokens.unwrap();
        if tokens.cmp(Q::int(1)) != Ordering::Less {
            self.tokens = Some(tokens.sub(Q::int(1)));
            return Answer::Go;
        }
        let need = Q::int(1).sub(tokens);
        let enough = |w: u128| self.gained(now, now + w).cmp(need) != Ordering::Less;
        let mut hi = 1;
        while !enough(hi) {
            hi *= 2;
        }
        let mut lo = 0; // not enough at lo, enough at hi
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if enough(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        if hi <= self.max_wait {
            self.tokens = Some(tokens.sub(Q::int(1)));
            Answer::Wait(hi)
        } else {
            Answer::Refused(hi - self.max_wait)
        }
    }

    fn penalize(&mut self, now: u128, until: u128, factor_ppm: i128) {
        self.advance(now);
        self.tokens = Some(self.tokens.unwrap().min(Q::int(0)));
        self.penalty = (until > now).then_some((until, factor_ppm));
    }
}

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Coverage {
    go: u64,
    wait: u64,
    refused: u64,
    waits_across_a_penalty_end: u64,
    granted_after_retry_after: u64,
}

fn check(p: Params, ops: Vec<Op>, cov: &mut Coverage) -> Result<(), TestCaseError> {
    let mut model = Model::new(&p);
    let config = RateLimitConfig {
        rate: p.rate,
        burst: p.burst,
        max_wait: Duration::from_nanos(model.max_wait as u64),
        ..RateLimitConfig::default()
    };
    prop_assert_eq!(config.validate(), Ok(()));
    let mut real = RateLimiter::new(config);
    let t0 = Instant::now();
    let at = |ns: u128| t0 + Duration::from_nanos(ns as u64);
    let t = model.interval as u128;
    let mut now: u128 = 0;
    let mut last_answer: u128 = 0;
    let mut after_refusal = false;
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Acquire(n) => {
                for _ in 0..n {
                    let got = match real.try_acquire(at(now)) {
                        Ok(None) => Answer::Go,
                        Ok(Some(wait)) => Answer::Wait(wait.as_nanos()),
                        Err(RateLimited { retry_after }) => Answer::Refused(retry_after.as_nanos()),
                    };
                    let penalty_ends = model.penalty.map(|(until, _)| until);
                    let want = model.acquire(now);
                    prop_assert_eq!(got, want, "step {}: {:?} at {} ns", step, op, now);
                    match want {
                        Answer::Go => cov.go += 1,
                        Answer::Wait(w) => {
                            cov.wait += 1;
                            last_answer = w;
                            if after_refusal && w == model.max_wait {
                                cov.granted_after_retry_after += 1;
                            }
                        }
                        Answer::Refused(r) => {
                            cov.refused += 1;
                            last_answer = r;
                        }
                    }
                    if let (Answer::Wait(w) | Answer::Refused(w), Some(until)) =
                        (want, penalty_ends)
                    {
                        let end = now
                            + w
                            + if let Answer::Refused(_) = want {
                                model.max_wait
                            } else {
                                0
                            };
                        cov.waits_across_a_penalty_end += u64::from(until > now && until < end);
                    }
                    after_refusal = matches!(want, Answer::Refused(_));
                }
            }
            Op::Advance(milli) => now += t * u128::from(milli) / 1_000,
            Op::AdvanceByLastAnswer(exact) => {
                now += if exact {
                    last_answer
                } else {
                    last_answer.saturating_sub(1)
                };
            }
            Op::Penalize(offset, ppm) => {
                let shift = t * u128::from(offset.unsigned_abs()) / 1_000;
                let until = if offset >= 0 {
                    now + shift
                } else {
                    now.saturating_sub(shift)
                };
                real.penalize(at(now), at(until), f64::from(ppm) / 1e6);
                model.penalize(now, until, i128::from(ppm));
            }
            Op::Peek(milli) => {
                let later = now + t * u128::from(milli) / 1_000;
                let (got, want) = (real.tokens(at(later)), model.tokens_at(later).to_f64());
                prop_assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "peek at {} ns: {} vs {}",
                    later,
                    got,
                    want
                );
            }
        }
        let (got, want) = (real.tokens(at(now)), model.tokens_at(now).to_f64());
        prop_assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "tokens after step {} ({:?}): {} vs model {}",
            step,
            op,
            got,
            want
        );
        let model_until = model.penalty.map(|(u, _)| u).filter(|u| *u > now).map(at);
        prop_assert_eq!(real.penalized_until(at(now)), model_until, "step {}", step);
    }
    Ok(())
}

#[test]
fn limiter_agrees_with_exact_reference() {
    let config = common::proptest_config(2_000);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let coverage = std::cell::RefCell::new(Coverage::default());
    let strategy = (params(), prop::collection::vec(op(), 1..100));
    if let Err(e) = runner.run(&strategy, |(p, ops)| {
        check(p, ops, &mut coverage.borrow_mut())
    }) {
        panic!("{e}");
    }
    let c = coverage.into_inner();
    println!("ratelimit model: {cases} cases, {c:?}");
    if cases >= 1000 {
        for (what, n) in [
            ("go", c.go),
            ("wait", c.wait),
            ("refused", c.refused),
            ("across a penalty end", c.waits_across_a_penalty_end),
            ("granted after retry_after", c.granted_after_retry_after),
        ] {
            assert!(n >= 100, "{what} rarely reached: {c:?}");
        }
    }
}

/// The model itself on hand-checked numbers.
#[test]
fn model_follows_hand_checked_examples() {
    let mut m = Model::new(&Params {
        rate: 4.0, // 250 ms
        burst: 2,
        max_wait_milli_t: 1_000, // one interval
    });
    let ms = |n: u128| n * 1_000_000;
    assert_eq!(m.acquire(0), Answer::Go);
    assert_eq!(m.acquire(0), Answer::Go);
    assert_eq!(m.acquire(ms(50)), Answer::Wait(ms(200)));
    assert_eq!(m.acquire(ms(50)), Answer::Refused(ms(200)));
    m.penalize(ms(100), ms(600), 500_000); // half rate: 500 ms per token until 600 ms
                                           // at 100 ms: -0.8 + 0.2 = -0.6 tokens; 1.6 needed: 1 by 600 ms, then 0.6 × 250 ms:
                                           // a wait of 650 ms, 400 ms beyond max_wait
    assert_eq!(m.acquire(ms(100)), Answer::Refused(ms(400)));
    assert_eq!(m.tokens_at(ms(600)).to_f64(), 0.4);
    assert_eq!(m.tokens_at(ms(10_000)).to_f64(), 2.0);
}
