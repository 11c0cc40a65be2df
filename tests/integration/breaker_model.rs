//! Model check of the pure circuit breaker: random sequences of operations are applied to
//! `warden::breaker::Breaker` and to a small reference model written here from the documented
//! semantics; after every step both must agree.
//!
//! What the model covers:
//! - configurations: consecutive-failure, failure-rate and slow-call-rate policies (each on or
//!   off, at least one on), count windows (size 1..=12, so `minimum_calls` above the size is
//!   exercised: the effective minimum is `min(minimum_calls, size)`) and time windows (5 ms to
//!   10 s; the model keeps the whole history and counts a call while the bucket of `now` is
//!   less than 10 buckets after the call's bucket, buckets `duration / 10` wide, at least 1 ms,
//!   aligned on the first call since the window was last cleared), open durations fixed or
//!   growing (multiplier 1, 2 or 3, capped), with or without jitter, 1..=3 half-open probes,
//!   any half-open wait;
//! - operations: `try_acquire` (permits are kept and handed back later, possibly after the
//!   state changed, i.e. stale), `record` of a success, failure or ignored outcome that is fast,
//!   just below, exactly at or above the slow-call duration, `release`, acquire-and-record in
//!   one step, time advances (including to exactly a deadline, 1 ns before and 1 ns after),
//!   `poll`, `force_open`, `disable`, `reset`; and admission elsewhere, as a handle does in the
//!   caller's task: a permit minted with `Permit::closed_at` from the state and epoch published
//!   after an earlier step (the current one or up to three steps back, so possibly stale), or
//!   `try_acquire` when that published state was not Closed or Disabled;
//! - observations after every step: admission (permit and whether it is a probe, or the
//!   rejecting state and `retry_after`), every drained transition (from, to, reason, instant,
//!   window snapshot, open duration), `state`, `open_until`, `next_deadline` and
//!   `window_snapshot`.
//!
//! Jitter: the model cannot know the random factor, so with jitter on it checks that every open
//! duration the breaker reports lies within `nominal × (1 ± jitter)` and then adopts it; without
//! jitter the open duration must be exactly `min(base × multiplier^level, max)`.
//!
//! Rates: thresholds are whole percentages and the model compares in integers
//! (`failures × 100 ≥ pct × calls`), which is exactly what the floating-point comparison of two
//! correctly rounded ratios gives for such small counts.
//!
//! Not covered here: the same permit handed back twice (a caller bug the API forbids), time
//! going backwards, durations near `Instant` overflow.

use crate::common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use warden::breaker::{
    Breaker, BreakerConfig, BreakerState, OpenDuration, Outcome, Permit, Rejected, SlidingWindow,
    Transition, TransitionReason, WindowSnapshot,
};

const SLOW: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// Generated input
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Window {
    Count(u32),
    Time(Duration),
}

#[derive(Debug, Clone)]
struct Params {
    consecutive: Option<u32>,
    failure_pct: Option<u32>,
    slow_pct: Option<u32>,
    window: Window,
    minimum_calls: u32,
    base: Duration,
    max: Duration,
    multiplier: u32,
    jitter: f64,
    probes: u32,
    max_wait: Duration,
    seed: u64,
}

impl Params {
    fn config(&self) -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: self.consecutive,
            failure_rate_threshold: self.failure_pct.map(|p| f64::from(p) / 100.0),
            slow_call_rate_threshold: self.slow_pct.map(|p| f64::from(p) / 100.0),
            slow_call_duration: SLOW,
            window: match self.window {
                Window::Count(size) => SlidingWindow::Count { size },
                Window::Time(duration) => SlidingWindow::Time { duration },
            },
            minimum_calls: self.minimum_calls,
            open_duration: OpenDuration {
                base: self.base,
                max: self.max,
                multiplier: f64::from(self.multiplier),
                jitter: self.jitter,
            },
            half_open_probes: self.probes,
            half_open_max_wait: self.max_wait,
            ..BreakerConfig::default()
        }
    }
}

/// How long a recorded call took, relative to the slow-call duration (100 ms).
#[derive(Debug, Clone, Copy)]
enum Speed {
    Fast,
    JustBelow,
    Exactly,
    Slow,
}

impl Speed {
    fn duration(self) -> Duration {
        match self {
            Speed::Fast => Duration::from_millis(1),
            Speed::JustBelow => SLOW - Duration::from_nanos(1),
            Speed::Exactly => SLOW,
            Speed::Slow => SLOW * 3,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Success,
    Failure,
    Ignored,
}

impl Kind {
    fn outcome(self, speed: Speed) -> Outcome {
        let d = speed.duration();
        match self {
            Kind::Success => Outcome::success(d),
            Kind::Failure => Outcome::failure(d),
            Kind::Ignored => Outcome::ignored(d),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// `try_acquire`; an admitted permit is kept for a later `Record`/`Release`.
    Acquire,
    /// Admission elsewhere from a published state, as a handle does: the state and epoch
    /// published after step `n` (counted back from now, modulo the steps so far). Closed or
    /// disabled: a permit minted with `Permit::closed_at(epoch)` is kept (stale if the breaker
    /// changed state since); otherwise the handle asks the breaker (`try_acquire`).
    LocalAcquire(u32),
    /// Hand back one kept permit with an outcome.
    Record(u32, Kind, Speed),
    /// Hand back one kept permit without an outcome.
    Release(u32),
    /// `try_acquire` and, if admitted, `record` at once.
    Call(Kind, Speed),
    Advance(Duration),
    /// Move the clock to the next deadline (Open end, half-open wait) plus `offset_ns`
    /// (-1, 0 or +1), if that is in the future.
    ToDeadline(i8),
    Poll,
    ForceOpen,
    Disable,
    Reset,
}

fn params() -> impl Strategy<Value = Params> {
    let window = prop_oneof![
        (1u32..=12).prop_map(Window::Count),
        prop_oneof![
            Just(5u64),
            Just(10),
            Just(35),
            Just(100),
            Just(1000),
            Just(1234),
            Just(10_000)
        ]
        .prop_map(|ms| Window::Time(Duration::from_millis(ms))),
    ];
    (
        (
            prop::option::of(1u32..=5),
            prop::option::of(1u32..=100),
            prop::option::of(1u32..=100),
            window,
            1u32..=15,
        ),
        (
            10u64..=500,
            1u64..=8,
            prop_oneof![Just(1u32), Just(2), Just(3)],
            prop_oneof![3 => Just(0.0), 1 => Just(0.1), 1 => Just(0.5)],
        ),
        (1u32..=3, 20u64..=1000, any::<u64>()),
    )
        .prop_map(
            |(
                (consecutive, failure_pct, slow_pct, window, minimum_calls),
                (base_ms, max_factor, multiplier, jitter),
                (probes, wait_ms, seed),
            )| {
                let consecutive =
                    if consecutive.is_none() && failure_pct.is_none() && slow_pct.is_none() {
                        Some(1)
                    } else {
                        consecutive
                    };
                Params {
                    consecutive,
                    failure_pct,
                    slow_pct,
                    window,
                    minimum_calls,
                    base: Duration::from_millis(base_ms),
                    max: Duration::from_millis(base_ms * max_factor),
                    multiplier,
                    jitter,
                    probes,
                    max_wait: Duration::from_millis(wait_ms),
                    seed,
                }
            },
        )
}

/// Ops are generated as plain numbers and decoded here: nested `prop_oneof!` strategies are an
/// order of magnitude slower to generate in a debug build. Shrinking still works (towards
/// selector 0 = `Acquire`, value 0 = fast success, no time).
fn op() -> impl Strategy<Value = Op> {
    (0u8..95, any::<u32>()).prop_map(|(selector, v)| {
        let kind = |x: u32| match x % 9 {
            0..=3 => Kind::Success,
            4..=7 => Kind::Failure,
            _ => Kind::Ignored,
        };
        let speed = |x: u32| match x % 10 {
            0..=5 => Speed::Fast,
            6 => Speed::JustBelow,
            7 => Speed::Exactly,
            _ => Speed::Slow,
        };
        let ms = |x: u32| Duration::from_millis(u64::from(x));
        let advance = |x: u32| match x % 9 {
            0 => Duration::ZERO,
            1..=3 => ms(1 + (x >> 4) % 20),
            4..=6 => ms(20 + (x >> 4) % 681),
            7 => ms(700 + (x >> 4) % 4301),
            _ => Duration::from_nanos(u64::from(1 + (x >> 4) % 999_999)),
        };
        match selector {
            0..=11 => Op::Acquire,
            12..=19 => Op::LocalAcquire(v % 4),
            20..=44 => Op::Call(kind(v), speed(v >> 8)),
            45..=64 => Op::Record(v >> 16, kind(v), speed(v >> 8)),
            65..=79 => Op::Advance(advance(v)),
            80..=84 => Op::ToDeadline((v % 3) as i8 - 1),
            85..=87 => Op::Poll,
            88..=90 => Op::Release(v),
            91 => Op::ForceOpen,
            92 => Op::Disable,
            _ => Op::Reset,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum MState {
    Closed,
    Open { until: Duration },
    HalfOpen { until: Duration, successes: u32 },
    ForcedOpen,
    Disabled,
}

impl MState {
    fn public(self) -> BreakerState {
        match self {
            MState::Closed => BreakerState::Closed,
            MState::Open { .. } => BreakerState::Open,
            MState::HalfOpen { .. } => BreakerState::HalfOpen,
            MState::ForcedOpen => BreakerState::ForcedOpen,
            MState::Disabled => BreakerState::Disabled,
        }
    }
}

/// One recorded (non-ignored) outcome since the window was last cleared.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Duration,
    failure: bool,
    slow: bool,
}

/// The breaker as the documentation describes it, written for clarity rather than speed: the
/// whole history since the last clear is kept and every quantity is recomputed from it.
struct Model {
    p: Params,
    t0: Instant,
    state: MState,
    /// Outcomes recorded since the last state change or reset.
    history: Vec<Entry>,
    /// Growth level of the open duration.
    level: u32,
    /// Permits that still count: id → is a probe. Emptied by every state change and reset.
    live: BTreeMap<u64, bool>,
    /// Incremented whenever `live` is emptied: a published state is current while this is
    /// what it was at publication.
    generation: u64,
    next_id: u64,
    transitions: Vec<Transition>,
    /// With jitter: the open durations the breaker reported in this step, adopted in order.
    observed_open_for: Vec<Duration>,
}

/// What `try_acquire` answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Admission {
    Admitted { probe: bool },
    Rejected(Rejected),
}

impl Admission {
    fn of(got: &Result<Permit, Rejected>) -> Self {
        match got {
            Ok(permit) => Admission::Admitted {
                probe: permit.is_probe(),
            },
            Err(rejected) => Admission::Rejected(*rejected),
        }
    }
}

impl Model {
    fn new(p: Params, t0: Instant) -> Self {
        Model {
            p,
            t0,
            state: MState::Closed,
            history: Vec::new(),
            level: 0,
            live: BTreeMap::new(),
            generation: 0,
            next_id: 0,
            transitions: Vec::new(),
            observed_open_for: Vec::new(),
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        match self.state {
            MState::Open { until } | MState::HalfOpen { until, .. } => Some(until),
            _ => None,
        }
    }

    /// (calls, failures, slow calls) the window holds at `now`.
    fn totals(&self, now: Duration) -> (u32, u32, u32) {
        let counted: Vec<&Entry> = match self.p.window {
            Window::Count(size) => {
                let size = size as usize;
                let skip = self.history.len().saturating_sub(size);
                self.history.iter().skip(skip).collect()
            }
            Window::Time(duration) => match self.history.first() {
                None => Vec::new(),
                Some(first) => {
                    let width = (duration / 10).max(Duration::from_millis(1)).as_nanos();
                    let bucket = |t: Duration| (t - first.at).as_nanos() / width;
                    let current = bucket(now);
                    self.history
                        .iter()
                        .filter(|e| current - bucket(e.at) < 10)
                        .collect()
                }
            },
        };
        let failures = counted.iter().filter(|e| e.failure).count();
        let slow = counted.iter().filter(|e| e.slow).count();
        (counted.len() as u32, failures as u32, slow as u32)
    }

    fn consecutive_failures(&self) -> u32 {
        self.history.iter().rev().take_while(|e| e.failure).count() as u32
    }

    fn snapshot(&self, now: Duration) -> WindowSnapshot {
        let (calls, failures, slow_calls) = self.totals(now);
        let rate = |n: u32| {
            if calls == 0 {
                0.0
            } else {
                f64::from(n) / f64::from(calls)
            }
        };
        WindowSnapshot {
            calls,
            failures,
            slow_calls,
            failure_rate: rate(failures),
            slow_call_rate: rate(slow_calls),
            consecutive_failures: self.consecutive_failures(),
        }
    }

    /// Leave the current state: record the transition, forget outcomes and permits.
    fn change(
        &mut self,
        to: MState,
        reason: TransitionReason,
        now: Duration,
        open_for: Option<Duration>,
    ) {
        self.transitions.push(Transition {
            from: self.state.public(),
            to: to.public(),
            reason,
            at: self.t0 + now,
            snapshot: self.snapshot(now),
            open_for,
        });
        self.state = to;
        self.history.clear();
        self.live.clear();
        self.generation += 1;
    }

    /// The open duration at the current level.
    fn open_for(&mut self) -> Result<Duration, String> {
        let p = &self.p;
        let mut nominal = p.base.as_nanos();
        for _ in 0..self.level {
            nominal = nominal.saturating_mul(u128::from(p.multiplier));
            if nominal >= p.max.as_nanos() {
                break;
            }
        }
        let nominal = nominal.min(p.max.as_nanos()) as f64;
        let observed =
            (!self.observed_open_for.is_empty()).then(|| self.observed_open_for.remove(0));
        if p.jitter == 0.0 {
            // Exact; the comparison of the transitions checks the breaker's value.
            return Ok(Duration::from_nanos(nominal as u64));
        }
        let got = observed.ok_or("the model opened but the breaker did not")?;
        let ns = got.as_nanos() as f64;
        let (lo, hi) = (nominal * (1.0 - p.jitter), nominal * (1.0 + p.jitter));
        if ns < lo - 2.0 || ns > hi + 2.0 {
            return Err(format!(
                "open duration {got:?} outside nominal {nominal} ns ± {}",
                p.jitter
            ));
        }
        Ok(got)
    }

    fn open(&mut self, reason: TransitionReason, now: Duration) -> Result<(), String> {
        let open_for = self.open_for()?;
        self.change(
            MState::Open {
                until: now + open_for,
            },
            reason,
            now,
            Some(open_for),
        );
        Ok(())
    }

    fn reopen(&mut self, reason: TransitionReason, now: Duration) -> Result<(), String> {
        self.level += 1;
        self.open(reason, now)
    }

    fn poll(&mut self, now: Duration) -> Result<(), String> {
        match self.state {
            MState::Open { until } if now >= until => {
                let half_open = MState::HalfOpen {
                    until: now + self.p.max_wait,
                    successes: 0,
                };
                self.change(half_open, TransitionReason::OpenElapsed, now, None);
            }
            MState::HalfOpen { until, .. } if now >= until => {
                self.reopen(TransitionReason::HalfOpenTimeout, now)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn try_acquire(&mut self, now: Duration) -> Result<(Admission, Option<u64>), String> {
        self.poll(now)?;
        let rejected = |state, retry_after| Admission::Rejected(Rejected { state, retry_after });
        Ok(match self.state {
            MState::Closed | MState::Disabled => (
                Admission::Admitted { probe: false },
                Some(self.issue(false)),
            ),
            MState::HalfOpen { successes, .. } => {
                let probes_out = self.live.values().filter(|probe| **probe).count() as u32;
                if probes_out + successes < self.p.probes {
                    (Admission::Admitted { probe: true }, Some(self.issue(true)))
                } else {
                    (rejected(BreakerState::HalfOpen, None), None)
                }
            }
            MState::Open { until } => (rejected(BreakerState::Open, Some(until - now)), None),
            MState::ForcedOpen => (rejected(BreakerState::ForcedOpen, None), None),
        })
    }

    /// A permit minted elsewhere from a state published at `generation`: it counts only if
    /// nothing changed since.
    fn mint(&mut self, generation: u64) -> u64 {
        if generation == self.generation {
            self.issue(false)
        } else {
            let id = self.next_id;
            self.next_id += 1;
            id
        }
    }

    fn issue(&mut self, probe: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.live.insert(id, probe);
        id
    }

    /// Returns whether the permit still counted.
    fn record(&mut self, id: u64, kind: Kind, speed: Speed, now: Duration) -> Result<bool, String> {
        let Some(probe) = self.live.remove(&id) else {
            return Ok(false); // stale: issued before the last state change or reset
        };
        let failure = match kind {
            Kind::Ignored => return Ok(true),
            Kind::Failure => true,
            Kind::Success => false,
        };
        let slow = speed.duration() >= SLOW;
        match self.state {
            MState::Closed => {
                self.history.push(Entry {
                    at: now,
                    failure,
                    slow,
                });
                if let Some(reason) = self.trip_reason(now) {
                    self.open(reason, now)?;
                }
            }
            MState::HalfOpen { until, successes } if probe => {
                self.history.push(Entry {
                    at: now,
                    failure,
                    slow,
                });
                if failure || (self.p.slow_pct.is_some() && slow) {
                    self.reopen(TransitionReason::ProbeFailed, now)?;
                } else if successes + 1 >= self.p.probes {
                    self.level = 0;
                    self.change(MState::Closed, TransitionReason::ProbesSucceeded, now, None);
                } else {
                    self.state = MState::HalfOpen {
                        until,
                        successes: successes + 1,
                    };
                }
            }
            _ => {}
        }
        Ok(true)
    }

    fn trip_reason(&self, now: Duration) -> Option<TransitionReason> {
        if self
            .p
            .consecutive
            .is_some_and(|n| self.consecutive_failures() >= n)
        {
            return Some(TransitionReason::ConsecutiveFailures);
        }
        let (calls, failures, slow) = self.totals(now);
        let minimum = match self.p.window {
            Window::Count(size) => self.p.minimum_calls.min(size),
            Window::Time(_) => self.p.minimum_calls,
        };
        if calls < minimum {
            return None;
        }
        let reaches = |n: u32, pct: u32| u64::from(n) * 100 >= u64::from(pct) * u64::from(calls);
        if self.p.failure_pct.is_some_and(|pct| reaches(failures, pct)) {
            return Some(TransitionReason::FailureRate);
        }
        if self.p.slow_pct.is_some_and(|pct| reaches(slow, pct)) {
            return Some(TransitionReason::SlowCallRate);
        }
        None
    }

    fn force_open(&mut self, now: Duration) {
        if self.state != MState::ForcedOpen {
            self.change(MState::ForcedOpen, TransitionReason::ForcedOpen, now, None);
        }
    }

    fn disable(&mut self, now: Duration) {
        if self.state != MState::Disabled {
            self.change(MState::Disabled, TransitionReason::Disabled, now, None);
        }
    }

    fn reset(&mut self, now: Duration) {
        self.level = 0;
        if self.state == MState::Closed {
            self.history.clear();
            self.live.clear();
            self.generation += 1;
        } else {
            self.change(MState::Closed, TransitionReason::Reset, now, None);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

/// What the runs exercised, summed over all cases (to show the generator reaches everything).
#[derive(Debug, Default)]
struct Coverage {
    reasons: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<&'static str, u64>,
    stale_records: u64,
    probes_admitted: u64,
    /// Permits minted from a published state: still current, or stale by then.
    minted_current: u64,
    minted_stale: u64,
    steps: u64,
}

fn check(p: Params, ops: Vec<Op>, coverage: &RefCell<Coverage>) -> Result<(), TestCaseError> {
    let config = p.config();
    prop_assert_eq!(config.validate(), Ok(()));
    let t0 = Instant::now();
    let mut real = Breaker::new(config, p.seed);
    let mut model = Model::new(p, t0);
    let mut now = Duration::ZERO;
    // Permits held across steps: the breaker's (taken when handed back) and the model's id.
    let mut held: Vec<(Option<Permit>, u64)> = Vec::new();
    // What the owner published after each step: (epoch, state, model generation).
    let mut published: Vec<(u64, BreakerState, u64)> = vec![(real.epoch(), real.state(), 0)];
    // A local admission that used a published state (its generation), for the model.
    let mut minted: Option<u64> = None;
    let mut cov = coverage.borrow_mut();

    for (step, op) in ops.iter().enumerate() {
        let at = t0 + now;
        // Apply to the breaker first; with jitter the model adopts the open durations it
        // reports (after checking their bounds).
        let mut real_admission = None;
        match op {
            Op::Acquire | Op::Call(..) => {
                let got = real.try_acquire(at);
                real_admission = Some(Admission::of(&got));
                if let Ok(permit) = got {
                    if let Op::Call(kind, speed) = op {
                        real.record(permit, kind.outcome(*speed), at);
                    } else {
                        held.push((Some(permit), u64::MAX)); // the model's id is filled in below
                    }
                }
            }
            Op::LocalAcquire(back) => {
                let (epoch, state, generation) =
                    published[published.len() - 1 - (*back as usize % published.len())];
                if matches!(state, BreakerState::Closed | BreakerState::Disabled) {
                    minted = Some(generation);
                    held.push((Some(Permit::closed_at(epoch)), u64::MAX));
                } else {
                    let got = real.try_acquire(at);
                    real_admission = Some(Admission::of(&got));
                    if let Ok(permit) = got {
                        held.push((Some(permit), u64::MAX));
                    }
                }
            }
            Op::Record(index, kind, speed) => {
                if !held.is_empty() {
                    let index = *index as usize % held.len();
                    let permit = held[index].0.take().expect("held once");
                    real.record(permit, kind.outcome(*speed), at);
                }
            }
            Op::Release(index) => {
                if !held.is_empty() {
                    let index = *index as usize % held.len();
                    let permit = held[index].0.take().expect("held once");
                    real.release(permit, at);
                }
            }
            Op::Advance(_) | Op::ToDeadline(_) => {}
            Op::Poll => real.poll(at),
            Op::ForceOpen => real.force_open(at),
            Op::Disable => real.disable(at),
            Op::Reset => real.reset(at),
        }
        let real_transitions: Vec<Transition> = real.drain_transitions().collect();
        model.observed_open_for = real_transitions
            .iter()
            .filter(|t| t.to == BreakerState::Open)
            .filter_map(|t| t.open_for)
            .collect();

        // Now the model.
        let context = || format!("step {step} at {now:?}: {op:?}");
        let mut model_admission = None;
        let minted_now = minted.take();
        match op {
            Op::LocalAcquire(_) if minted_now.is_some() => {
                let generation = minted_now.unwrap_or_default();
                if generation == model.generation {
                    cov.minted_current += 1;
                } else {
                    cov.minted_stale += 1;
                }
                let id = model.mint(generation);
                match held.last_mut() {
                    Some(last) if last.1 == u64::MAX => last.1 = id,
                    _ => return Err(fail(&context(), "minted permit not held".into())),
                }
            }
            Op::Acquire | Op::Call(..) | Op::LocalAcquire(_) => {
                let (admission, id) = model.try_acquire(now).map_err(|e| fail(&context(), e))?;
                model_admission = Some(admission);
                match (id, op) {
                    (Some(id), Op::Call(kind, speed)) => {
                        model
                            .record(id, *kind, *speed, now)
                            .map_err(|e| fail(&context(), e))?;
                    }
                    (Some(id), _) => match held.last_mut() {
                        Some(last) if last.1 == u64::MAX => last.1 = id,
                        _ => {
                            return Err(fail(&context(), "model admitted, breaker rejected".into()))
                        }
                    },
                    (None, _) => {}
                }
            }
            Op::Record(index, kind, speed) => {
                if !held.is_empty() {
                    let (_, id) = held.remove(*index as usize % held.len());
                    let counted = model
                        .record(id, *kind, *speed, now)
                        .map_err(|e| fail(&context(), e))?;
                    cov.stale_records += u64::from(!counted);
                }
            }
            Op::Release(index) => {
                if !held.is_empty() {
                    let (_, id) = held.remove(*index as usize % held.len());
                    model
                        .record(id, Kind::Ignored, Speed::Fast, now)
                        .map_err(|e| fail(&context(), e))?;
                }
            }
            Op::Advance(_) | Op::ToDeadline(_) => {}
            Op::Poll => model.poll(now).map_err(|e| fail(&context(), e))?,
            Op::ForceOpen => model.force_open(now),
            Op::Disable => model.disable(now),
            Op::Reset => model.reset(now),
        }
        if held.last().is_some_and(|last| last.1 == u64::MAX) {
            return Err(fail(&context(), "breaker admitted, model rejected".into()));
        }

        // Compare everything observable.
        prop_assert_eq!(real_admission, model_admission, "admission, {}", context());
        prop_assert_eq!(
            &real_transitions,
            &model.transitions,
            "transitions, {}",
            context()
        );
        prop_assert!(
            model.observed_open_for.is_empty(),
            "breaker opened more often than the model, {}",
            context()
        );
        prop_assert_eq!(real.state(), model.state.public(), "state, {}", context());
        let model_open_until = match model.state {
            MState::Open { until } => Some(t0 + until),
            _ => None,
        };
        prop_assert_eq!(
            real.open_until(),
            model_open_until,
            "open_until, {}",
            context()
        );
        prop_assert_eq!(
            real.next_deadline(),
            model.next_deadline().map(|d| t0 + d),
            "next_deadline, {}",
            context()
        );
        prop_assert_eq!(
            real.window_snapshot(at),
            model.snapshot(now),
            "window, {}",
            context()
        );

        published.push((real.epoch(), real.state(), model.generation));
        for t in model.transitions.drain(..) {
            *cov.reasons.entry(t.reason.as_str()).or_default() += 1;
        }
        match model_admission {
            Some(Admission::Rejected(r)) => *cov.rejected.entry(r.state.as_str()).or_default() += 1,
            Some(Admission::Admitted { probe: true }) => cov.probes_admitted += 1,
            _ => {}
        }
        cov.steps += 1;

        // Time moves only between steps, and only forward.
        match op {
            Op::Advance(d) => now += *d,
            Op::ToDeadline(offset) => {
                if let Some(deadline) = model.next_deadline() {
                    let target = match offset {
                        -1 => deadline.saturating_sub(Duration::from_nanos(1)),
                        1 => deadline + Duration::from_nanos(1),
                        _ => deadline,
                    };
                    now = now.max(target);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn fail(context: &str, message: String) -> TestCaseError {
    TestCaseError::fail(format!("{message}, {context}"))
}

#[test]
fn breaker_agrees_with_reference_model() {
    let config = common::proptest_config(10_000);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let coverage = RefCell::new(Coverage::default());
    let strategy = (params(), prop::collection::vec(op(), 1..120));
    let result = runner.run(&strategy, |(p, ops)| check(p, ops, &coverage));
    if let Err(e) = result {
        panic!("{e}");
    }
    let coverage = coverage.into_inner();
    println!("breaker model: {cases} cases, {coverage:?}");
    if cases >= 1000 {
        // The generator must reach every transition and every kind of rejection, or the
        // agreement above says little.
        for reason in [
            TransitionReason::ConsecutiveFailures,
            TransitionReason::FailureRate,
            TransitionReason::SlowCallRate,
            TransitionReason::OpenElapsed,
            TransitionReason::ProbeFailed,
            TransitionReason::ProbesSucceeded,
            TransitionReason::HalfOpenTimeout,
            TransitionReason::ForcedOpen,
            TransitionReason::Disabled,
            TransitionReason::Reset,
        ] {
            assert!(
                coverage.reasons.get(reason.as_str()).copied().unwrap_or(0) >= 10,
                "{reason:?} rarely or never reached: {coverage:?}"
            );
        }
        for state in ["open", "half_open", "forced_open"] {
            assert!(
                coverage.rejected.get(state).copied().unwrap_or(0) >= 10,
                "{coverage:?}"
            );
        }
        assert!(coverage.stale_records >= 10, "{coverage:?}");
        assert!(coverage.probes_admitted >= 10, "{coverage:?}");
        assert!(coverage.minted_current >= 10, "{coverage:?}");
        assert!(coverage.minted_stale >= 10, "{coverage:?}");
    }
}

/// The model itself, on a hand-checked script (so a model bug cannot hide behind an equal bug).
#[test]
fn model_follows_a_hand_checked_script() {
    let p = Params {
        consecutive: Some(2),
        failure_pct: None,
        slow_pct: None,
        window: Window::Count(10),
        minimum_calls: 5,
        base: Duration::from_secs(30),
        max: Duration::from_secs(120),
        multiplier: 2,
        jitter: 0.0,
        probes: 1,
        max_wait: Duration::from_secs(60),
        seed: 0,
    };
    let t0 = Instant::now();
    let mut m = Model::new(p, t0);
    let s = Duration::from_secs;
    let (_, a) = m.try_acquire(s(0)).unwrap();
    let (_, b) = m.try_acquire(s(0)).unwrap();
    m.record(a.unwrap(), Kind::Failure, Speed::Fast, s(0))
        .unwrap();
    m.record(b.unwrap(), Kind::Failure, Speed::Fast, s(0))
        .unwrap();
    assert_eq!(m.state, MState::Open { until: s(30) });
    let (admission, _) = m.try_acquire(s(10)).unwrap();
    assert_eq!(
        admission,
        Admission::Rejected(Rejected {
            state: BreakerState::Open,
            retry_after: Some(s(20))
        })
    );
    let (admission, probe) = m.try_acquire(s(30)).unwrap();
    assert_eq!(admission, Admission::Admitted { probe: true });
    m.record(probe.unwrap(), Kind::Failure, Speed::Fast, s(31))
        .unwrap();
    assert_eq!(m.state, MState::Open { until: s(91) }, "level 1: 60 s");
    let reasons: Vec<_> = m.transitions.iter().map(|t| t.reason).collect();
    assert_eq!(
        reasons,
        [
            TransitionReason::ConsecutiveFailures,
            TransitionReason::OpenElapsed,
            TransitionReason::ProbeFailed
        ]
    );
    assert_eq!(m.transitions[0].snapshot.calls, 2);
    assert_eq!(m.transitions[2].snapshot.failures, 1);
}
