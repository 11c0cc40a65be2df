//! How well each resilience stack protects a failing dependency, in simulated time.
//!
//! A simulated dependency (seeded latency and failure model) is driven by an open-loop caller
//! (a fixed number of calls per second, each call its own task) through these stacks:
//!
//! | stack | what it is |
//! |---|---|
//! | `warden` | one supervisor, **default configuration** (seeded) |
//! | `warden_adaptive` | one supervisor, **`SupervisorConfig::adaptive()`** (seeded): adaptive throttling, an outage-only breaker, a 25 % retry budget |
//! | `tower_resilience` | tower-resilience 0.13: retry → circuit breaker → time limiter |
//! | `failsafe_backon` | backon 1.6 retry → failsafe 1.3 breaker → tokio timeout |
//! | `tower_recloser` | tower retry with `TpsBudget` → recloser 1.4 → tower timeout |
//! | `naive_retry` | timeout + retries with backoff, nothing else |
//!
//! The peers mirror warden's defaults as far as their APIs allow: 5 s per-attempt timeout, 3
//! attempts with exponential backoff from 500 ms (×2), a breaker tripping after 5 consecutive
//! failures, open for 30 s, one half-open probe, and warden's retry budget (20 % of calls, at
//! least 10 retries/s, over 10 s) where a budget exists. What they cannot express is listed in
//! BENCHMARKS.md (failsafe and recloser admit every call while half-open; recloser trips on a
//! failure rate over a ring of 5 at 100 %, i.e. 5 consecutive failures; tower-resilience's budget
//! is a token bucket; failsafe+backon has no budget).
//!
//! Five failure scenarios, each after a healthy warm-up: a full outage, a 50 % and a 20 %
//! brownout (and the same brownouts at 20, 50, 70 and 90 % from a cold start, longer than every
//! window: `cold_brownout_*`), a slow dependency (every attempt takes twice the timeout), and an outage followed by
//! recovery. For each stack and scenario: amplification (attempts that reached the dependency ÷
//! calls offered), calls until the breaker opened, caller-observed p50/p99 latency during the
//! fault, time from the dependency healing to traffic flowing again, half-open probes admitted,
//! and goodput. See BENCHMARKS.md for the exact definitions.
//!
//! `tail_latency`: a dependency answering in 10–20 ms except 5 % of attempts that take 1 s,
//! through no resilience, warden without hedging, warden with hedging at its defaults (the
//! dependency's own p95, every call marked idempotent) and tower-resilience's hedge layer
//! (a fixed 20 ms delay — the dependency's p95, known in advance — and one hedge): p50, p99,
//! p99.9, amplification and goodput.
//!
//! A seventh, `rate_limited`, offers 3 × its rate to a dependency that answers 429 with
//! `Retry-After: 1` above 100 calls/s: `warden` (defaults), `warden_rate_limit` (a rate limit at
//! the dependency's rate) and `naive_retry`, with the 429s the dependency had to send.
//!
//! A sixth scenario, `overload`, has its own stacks: the dependency is a queueing server (50
//! requests served at once, 10 ms each, the rest waiting FIFO; a request its caller gave up on is
//! still served) offered 3 × its capacity, and the stacks differ only in how they bound the calls
//! in flight:
//!
//! | stack | what it is |
//! |---|---|
//! | `no_limit` | a 1 s timeout, nothing else |
//! | `fixed_bulkhead` | warden, `max_in_flight = 50` (the server's capacity, known in advance) |
//! | `warden_aimd` | warden, `concurrency_limit` AIMD (threshold 15 ms = 1.5 × the unloaded latency) |
//! | `warden_gradient` | warden, `concurrency_limit` gradient2 (defaults) |
//! | `tower_adaptive` | tower-resilience 0.13's `AdaptiveLimiterLayer` (AIMD, same parameters) as documented: callers wait for a permit, under the same 1 s timeout |
//! | `tower_adaptive_shed` | the same behind tower's `load_shed`: refused at once when no permit is free |
//!
//! All of them: 1 s timeout, no retries; warden's breaker at its defaults.
//!
//! # Time
//!
//! Everything runs on tokio's paused clock: a scenario of minutes takes milliseconds and
//! warden's and the naive stack's figures are exactly reproducible. The breakers of
//! tower-resilience, failsafe and recloser read `std::time::Instant` (the wall clock), which a
//! paused tokio clock does not move; for them the simulation runs in lockstep with the wall
//! clock, `--time-scale` simulated seconds per wall second (20 by default, 50 with `--quick`),
//! and their wall-clock durations (open wait, token-bucket rate) are configured divided by that
//! scale. Their timing figures are then accurate to about one call interval plus the largest
//! clock skew, which is reported (`clock_skew_ms`). tower-resilience's adaptive limiter also
//! times calls with `std::time::Instant`; lockstep would blur 10 ms round trips, so its
//! algorithm is handed the simulated round trip of the same call instead (see
//! `tower_adaptive_stack`), and it runs on the simulated clock like warden.
//!
//! ```sh
//! cargo run --release -p warden-comparisons --bin failure_scenarios               # about 7 s
//! cargo run --release -p warden-comparisons --bin failure_scenarios -- --quick   # CI, seconds
//! cargo run --release -p warden-comparisons --bin failure_scenarios -- --json out.json
//! ```

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant as WallInstant};

use clap::Parser;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use warden::prelude::*;

/// Protection under failure: warden against its peers, in simulated time.
#[derive(Debug, Parser)]
struct Args {
    /// Short scenarios at a lower call rate (for CI): a few seconds in all.
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON, one object per scenario × stack.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Seed of the dependency's latency and failure model (and of warden's jitter).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Simulated seconds per wall second for stacks whose breakers read the wall clock
    /// (default 20, or 50 with --quick).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Run only these stacks (comma separated).
    #[arg(long, value_delimiter = ',')]
    stacks: Vec<String>,
    /// Run only these scenarios (comma separated).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Configuration shared by every stack (warden's defaults)

const TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(500);
const TRIP_AFTER: u32 = 5;
const OPEN_FOR: Duration = Duration::from_secs(30);

// The overload scenario's server and the timeout of the stacks in front of it.

/// Requests the queueing server serves at once.
const SERVER_WORKERS: usize = 50;
/// Time the server spends on one request.
const SERVICE_TIME: Duration = Duration::from_millis(10);
/// Latency of the hot-key scenario's dependency (every call of the burst overlaps).
const HOT_KEY_LATENCY: Duration = Duration::from_millis(200);
/// The tail-latency scenario's slow attempts: this long...
const TAIL_LATENCY: Duration = Duration::from_secs(1);
/// ...this share of them.
const TAIL_SHARE: f64 = 0.05;
/// tower-resilience's hedge delay: the dependency's p95 when it is known in advance (its
/// hedge layer takes a fixed delay).
const TOWER_HEDGE_DELAY: Duration = Duration::from_millis(20);

/// The rate-limited dependency's own limit, in calls per second, and its burst.
const DEP_RATE: u32 = 100;
const DEP_BURST: u32 = 10;
/// The `Retry-After` it sends with a 429.
const DEP_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Per-attempt timeout of every stack in the overload scenario (100 × the unloaded latency).
const OVERLOAD_TIMEOUT: Duration = Duration::from_secs(1);
/// AIMD latency threshold in the overload scenario (warden and the tower-resilience peer): 1.5 ×
/// the unloaded latency, so a limit that settles at its threshold stays within the target of
/// 2 × the unloaded latency.
const AIMD_THRESHOLD: Duration = Duration::from_millis(15);

// ---------------------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Every attempt fails after 1 ms (connection refused).
    Outage,
    /// Every attempt fails with probability `percent` % after the usual latency.
    Brownout { percent: u32 },
    /// Every attempt takes twice the timeout.
    Slow,
    /// More calls than the dependency can serve: it is a queueing server (see [`Server`]) all
    /// along, and the fault is the offered load (`Scenario::fault_rate`).
    Overload,
    /// The dependency enforces its own rate limit ([`DEP_RATE`] calls/s, a burst of
    /// [`DEP_BURST`]) all along and answers `429 Too Many Requests` with `Retry-After: 1` above
    /// it; the fault is the offered load.
    RateLimited,
    /// Every attempt takes [`HOT_KEY_LATENCY`] and succeeds; the fault is a burst of calls for
    /// the same key.
    HotKey,
    /// All along, an attempt takes 10–20 ms, except [`TAIL_SHARE`] of them that take
    /// [`TAIL_LATENCY`] (a GC pause, a cold cache, a slow replica); every attempt succeeds.
    TailLatency,
}

impl Fault {
    fn describe(self) -> String {
        match self {
            Fault::Outage => "outage".to_string(),
            Fault::Brownout { percent } => format!("{percent} % brownout"),
            Fault::Slow => "slow (2 × timeout)".to_string(),
            Fault::Overload => {
                format!("overload of a server of {SERVER_WORKERS} × {SERVICE_TIME:?} (FIFO queue)")
            }
            Fault::RateLimited => {
                format!("a dependency limited to {DEP_RATE} calls/s (429 + Retry-After: 1 s above)")
            }
            Fault::HotKey => {
                format!("a burst for one key against a {HOT_KEY_LATENCY:?} dependency")
            }
            Fault::TailLatency => format!(
                "10–20 ms, but {} % of attempts take {TAIL_LATENCY:?}",
                TAIL_SHARE * 100.0
            ),
        }
    }

    /// Whether half-open probes can be told apart from ordinary traffic: only while every
    /// attempt fails.
    fn probes_defined(self) -> bool {
        matches!(self, Fault::Outage | Fault::Slow)
    }
}

/// What the dependency is doing at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Healthy,
    Faulty(Fault),
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    fault: Fault,
    /// Healthy traffic before the fault.
    warmup: Duration,
    /// How long the fault lasts.
    fault_for: Duration,
    /// Healthy traffic after the fault (0: the run ends with the fault).
    healthy_after: Duration,
    /// Calls offered per second outside the fault.
    rate: u32,
    /// Calls offered per second during the fault.
    fault_rate: u32,
    /// This scenario's seed is `--seed` plus this: the order in which scenarios were added, so
    /// adding one changes no other's figures.
    seed_offset: u64,
}

impl Scenario {
    fn all(quick: bool) -> Vec<Scenario> {
        let (warmup, rate, s) = if quick {
            (Duration::from_secs(5), 20, Duration::from_secs)
        } else {
            (Duration::from_secs(10), 50, Duration::from_secs)
        };
        let pick = |full: u64, short: u64| s(if quick { short } else { full });
        // Requests per second the overload scenario's server can serve (5 000).
        let capacity = u32::try_from(
            SERVER_WORKERS as u128 * Duration::from_secs(1).as_nanos() / SERVICE_TIME.as_nanos(),
        )
        .expect("capacity fits u32");
        let faulty = |name, fault, fault_for, healthy_after, seed_offset| Scenario {
            name,
            fault,
            warmup,
            fault_for,
            healthy_after,
            rate,
            fault_rate: rate,
            seed_offset,
        };
        let cold = |name, percent, seed_offset| Scenario {
            name,
            fault: Fault::Brownout { percent },
            warmup: Duration::ZERO,
            fault_for: pick(180, 150),
            healthy_after: Duration::ZERO,
            rate,
            fault_rate: rate,
            seed_offset,
        };
        vec![
            faulty(
                "full_outage",
                Fault::Outage,
                pick(120, 40),
                Duration::ZERO,
                0,
            ),
            faulty(
                "brownout_50",
                Fault::Brownout { percent: 50 },
                pick(60, 20),
                Duration::ZERO,
                1,
            ),
            faulty(
                "brownout_20",
                Fault::Brownout { percent: 20 },
                pick(60, 20),
                Duration::ZERO,
                4,
            ),
            faulty(
                "slow_dependency",
                Fault::Slow,
                pick(60, 20),
                Duration::ZERO,
                2,
            ),
            faulty(
                "outage_then_recovery",
                Fault::Outage,
                pick(45, 20),
                pick(60, 40),
                3,
            ),
            Scenario {
                name: "overload",
                fault: Fault::Overload,
                // Half the capacity first, so the limits settle, then 3 × the capacity.
                warmup: pick(2, 1),
                fault_for: pick(10, 2),
                healthy_after: Duration::ZERO,
                rate: capacity / 2,
                fault_rate: capacity * 3,
                seed_offset: 5,
            },
            Scenario {
                name: "hot_key",
                fault: Fault::HotKey,
                // 1 000 calls for the same key within 100 ms, all in flight at once.
                warmup: s(1),
                fault_for: Duration::from_millis(100),
                healthy_after: Duration::ZERO,
                rate: 10,
                fault_rate: 10_000,
                seed_offset: 7,
            },
            faulty(
                "fallback_during_outage",
                Fault::Outage,
                pick(60, 20),
                Duration::ZERO,
                8,
            ),
            faulty(
                "tail_latency",
                Fault::TailLatency,
                pick(60, 20),
                Duration::ZERO,
                9,
            ),
            // Brownouts that cannot flatter: from a cold start (no healthy warm-up in any
            // window) and longer than every window of the stack (the throttle's 2 min, the
            // budget's 10 s, the breaker's 50 calls, the health window).
            cold("cold_brownout_20", 20, 10),
            cold("cold_brownout_50", 50, 11),
            cold("cold_brownout_70", 70, 12),
            cold("cold_brownout_90", 90, 13),
            Scenario {
                name: "rate_limited",
                fault: Fault::RateLimited,
                // Half its rate first, then 3 × its rate.
                warmup,
                fault_for: pick(30, 10),
                healthy_after: Duration::ZERO,
                rate: DEP_RATE / 2,
                fault_rate: DEP_RATE * 3,
                seed_offset: 6,
            },
        ]
    }

    /// The stacks this scenario runs.
    fn stacks(&self) -> &'static [StackSpec] {
        match self.fault {
            Fault::Overload => OVERLOAD_STACKS,
            Fault::RateLimited => RATE_LIMITED_STACKS,
            Fault::HotKey => HOT_KEY_STACKS,
            Fault::TailLatency => TAIL_STACKS,
            _ if self.name == "fallback_during_outage" => FALLBACK_STACKS,
            _ => STACKS,
        }
    }

    fn fault_start(&self) -> Duration {
        self.warmup
    }

    fn fault_end(&self) -> Duration {
        self.warmup + self.fault_for
    }

    fn end(&self) -> Duration {
        self.fault_end() + self.healthy_after
    }

    /// Interval between calls outside the fault.
    fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.rate
    }

    /// When each call is offered (since the origin): `rate` per second outside the fault,
    /// `fault_rate` during it.
    fn offers(&self) -> Vec<Duration> {
        let segments = [
            (Duration::ZERO, self.fault_start(), self.rate),
            (self.fault_start(), self.fault_end(), self.fault_rate),
            (self.fault_end(), self.end(), self.rate),
        ];
        let mut offers = Vec::new();
        for (start, end, rate) in segments {
            let interval = Duration::from_secs(1) / rate;
            let calls = u32::try_from((end - start).as_nanos() / interval.as_nanos())
                .expect("call count fits u32");
            offers.extend((0..calls).map(|i| start + interval * i));
        }
        offers
    }

    /// Whether the fault is on at `at`. A scenario that does not heal stays faulty after its
    /// last call is offered, while the calls in flight finish.
    fn faulty_at(&self, at: Duration) -> bool {
        at >= self.fault_start() && (self.healthy_after.is_zero() || at < self.fault_end())
    }

    fn mode_at(&self, at: Duration) -> Mode {
        if self.faulty_at(at) {
            Mode::Faulty(self.fault)
        } else {
            Mode::Healthy
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated dependency

/// The failure every simulated attempt may return; a 429 carries its `Retry-After`.
#[derive(Debug, Clone)]
struct DepError {
    retry_after: Option<Duration>,
}

/// The classification a warden user writes: every failure is transient, a 429 with its hint.
fn classify(error: &DepError) -> ErrorClass {
    match error.retry_after {
        Some(hint) => ErrorClass::transient().with_retry_after(hint),
        None => ErrorClass::transient(),
    }
}

impl std::fmt::Display for DepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dependency failed")
    }
}

impl std::error::Error for DepError {}

/// The overload scenario's server: [`SERVER_WORKERS`] requests served at once, each for
/// [`SERVICE_TIME`], the others waiting in one FIFO queue, so a request arriving behind `n`
/// others waits `SERVICE_TIME × ceil((n + 1) / SERVER_WORKERS)` at most. It never learns that a
/// caller gave up: a request that timed out is still served, and still holds a worker.
#[derive(Debug, Default)]
struct Server {
    /// When each request not yet served will be (in arrival order, which is service order).
    ends: std::collections::VecDeque<Duration>,
    /// Most requests at the server at once (being served or queued).
    max_outstanding: usize,
}

impl Server {
    /// Takes a request arriving at `at`; returns how long until it is answered.
    fn admit(&mut self, at: Duration) -> Duration {
        while self.ends.front().is_some_and(|end| *end <= at) {
            self.ends.pop_front();
        }
        // With `SERVER_WORKERS` or more ahead, it starts when the one `SERVER_WORKERS` places
        // ahead of it ends.
        let start = match self.ends.len().checked_sub(SERVER_WORKERS) {
            Some(i) => self.ends[i].max(at),
            None => at,
        };
        let end = start + SERVICE_TIME;
        self.ends.push_back(end);
        self.max_outstanding = self.max_outstanding.max(self.ends.len());
        end - at
    }
}

/// A dependency whose behaviour follows a scenario; records every attempt that reaches it.
struct Dependency {
    origin: Instant,
    scenario: Scenario,
    rng: Mutex<SmallRng>,
    /// The queueing server of the overload scenario.
    server: Mutex<Server>,
    /// The rate-limited dependency's bucket: the earliest instant its next call is within its
    /// rate (GCRA's theoretical arrival time).
    next_allowed: Mutex<Duration>,
    /// When each 429 was answered (rate-limited scenario).
    too_many: Mutex<Vec<Duration>>,
    /// `(call id, simulated time since origin)` of every attempt, in order.
    attempts: Mutex<Vec<(u64, Duration)>>,
}

impl Dependency {
    fn new(scenario: Scenario, seed: u64) -> Arc<Self> {
        Arc::new(Dependency {
            origin: Instant::now(),
            scenario,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            server: Mutex::new(Server::default()),
            next_allowed: Mutex::new(Duration::ZERO),
            too_many: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
        })
    }

    /// One attempt of call `call`. Nothing happens until the future is first polled, so a
    /// stack that builds the future and then refuses the call never reaches the dependency.
    async fn attempt(self: Arc<Self>, call: u64) -> Result<u64, DepError> {
        let at = self.origin.elapsed();
        self.attempts.lock().unwrap().push((call, at));
        let (latency, fail) = if self.scenario.fault == Fault::Overload {
            (self.server.lock().unwrap().admit(at), false)
        } else if self.scenario.fault == Fault::HotKey {
            (HOT_KEY_LATENCY, false)
        } else if self.scenario.fault == Fault::TailLatency {
            let mut rng = self.rng.lock().unwrap();
            if rng.random_bool(TAIL_SHARE) {
                (TAIL_LATENCY, false)
            } else {
                (
                    Duration::from_micros(rng.random_range(10_000..=20_000)),
                    false,
                )
            }
        } else if self.scenario.fault == Fault::RateLimited {
            let interval = Duration::from_secs(1) / DEP_RATE;
            let within_rate = {
                let mut next = self.next_allowed.lock().unwrap();
                let tat = (*next).max(at);
                let within = tat <= at + interval * DEP_BURST;
                if within {
                    *next = tat + interval;
                }
                within
            };
            if !within_rate {
                self.too_many.lock().unwrap().push(at);
                tokio::time::sleep(Duration::from_millis(1)).await;
                return Err(DepError {
                    retry_after: Some(DEP_RETRY_AFTER),
                });
            }
            (healthy_latency(&mut self.rng.lock().unwrap()), false)
        } else {
            let mut rng = self.rng.lock().unwrap();
            match self.scenario.mode_at(at) {
                Mode::Healthy => (healthy_latency(&mut rng), false),
                Mode::Faulty(Fault::Outage) => (Duration::from_millis(1), true),
                Mode::Faulty(Fault::Brownout { percent }) => (
                    healthy_latency(&mut rng),
                    rng.random_bool(f64::from(percent) / 100.0),
                ),
                Mode::Faulty(Fault::Slow) => (TIMEOUT * 2, false),
                Mode::Faulty(
                    Fault::Overload | Fault::RateLimited | Fault::HotKey | Fault::TailLatency,
                ) => {
                    unreachable!("served above")
                }
            }
        };
        tokio::time::sleep(latency).await;
        if fail {
            Err(DepError { retry_after: None })
        } else {
            Ok(call)
        }
    }

    /// Most requests at the queueing server at once (overload scenario only).
    fn server_max_outstanding(&self) -> Option<usize> {
        (self.scenario.fault == Fault::Overload)
            .then(|| self.server.lock().unwrap().max_outstanding)
    }
}

/// 2 ms plus an exponential tail of mean 3 ms, capped at 100 ms.
fn healthy_latency(rng: &mut SmallRng) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let tail = (-u.ln() * 3.0).min(98.0);
    Duration::from_micros(2_000 + (tail * 1_000.0) as u64)
}

// ---------------------------------------------------------------------------------------------
// Stacks

/// How a call was answered, in every stack's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Success,
    /// Refused by the breaker (fail fast).
    Refused,
    /// Refused locally while the breaker was not open: by a bulkhead, a concurrency limit or
    /// warden's adaptive throttle (`CallError::Overloaded`, `CallError::Throttled`).
    Shed,
    /// The dependency's error (after any retries).
    Failed,
    /// The last attempt timed out.
    TimedOut,
    /// Answered by the call's fallback (warden's `Call::fallback`).
    Fallback,
}

type BoxedAnswer = Pin<Box<dyn Future<Output = Answer>>>;

/// A resilience stack in front of the dependency.
trait Stack {
    fn call(&self, id: u64) -> BoxedAnswer;
}

/// A stack by name, and how it must run.
#[derive(Debug, Clone, Copy)]
struct StackSpec {
    name: &'static str,
    /// Its breaker reads the wall clock: run in lockstep with it.
    wall_clock: bool,
    /// A warden supervisor: run inside an actix system.
    warden: bool,
}

const fn stack(name: &'static str, wall_clock: bool, warden: bool) -> StackSpec {
    StackSpec {
        name,
        wall_clock,
        warden,
    }
}

/// The stacks of the failure scenarios.
const STACKS: &[StackSpec] = &[
    stack("warden", false, true),
    stack("warden_adaptive", false, true),
    stack("tower_resilience", true, false),
    stack("failsafe_backon", true, false),
    stack("tower_recloser", true, false),
    stack("naive_retry", false, false),
];

/// The stacks of the hot-key scenario.
const HOT_KEY_STACKS: &[StackSpec] = &[
    stack("warden_no_coalesce", false, true),
    stack("warden_coalesce", false, true),
];

/// The stacks of the tail-latency scenario.
const TAIL_STACKS: &[StackSpec] = &[
    stack("no_resilience", false, false),
    stack("warden", false, true),
    stack("warden_hedged", false, true),
    stack("tower_resilience_hedge", false, false),
];

/// The stacks of the fallback-during-outage scenario.
const FALLBACK_STACKS: &[StackSpec] = &[
    stack("warden", false, true),
    stack("warden_fallback", false, true),
];

/// The stacks of the rate-limited scenario.
const RATE_LIMITED_STACKS: &[StackSpec] = &[
    stack("warden", false, true),
    stack("warden_rate_limit", false, true),
    stack("naive_retry", false, false),
];

/// The stacks of the overload scenario.
const OVERLOAD_STACKS: &[StackSpec] = &[
    stack("no_limit", false, false),
    stack("fixed_bulkhead", false, true),
    stack("warden_aimd", false, true),
    stack("warden_gradient", false, true),
    stack("tower_adaptive", false, false),
    stack("tower_adaptive_shed", false, false),
];

/// Builds stack `name` (inside the runtime it will run on). `scale` divides the durations
/// the stack measures on the wall clock.
fn build_stack(name: &str, dep: &Arc<Dependency>, scale: f64, seed: u64) -> Box<dyn Stack> {
    let wall = |d: Duration| d.div_f64(scale);
    match name {
        "warden" => Box::new(WardenStack::new(
            dep.clone(),
            SupervisorConfig {
                seed: Some(seed),
                ..SupervisorConfig::default()
            },
        )),
        "warden_adaptive" => Box::new(WardenStack::new(dep.clone(), adaptive_config(seed))),
        // The hot-key burst, without and with coalescing (every call for the same key, so calls
        // in flight together share one answer).
        "warden_no_coalesce" => Box::new(WardenStack::new(dep.clone(), hot_key_config(seed))),
        "warden_coalesce" => {
            Box::new(WardenStack::new(dep.clone(), hot_key_config(seed)).with(Extra::Coalesce))
        }
        // Defaults; a call the breaker refuses (or whose retry it refuses) is answered from a
        // cache by its fallback.
        "warden_fallback" => Box::new(
            WardenStack::new(
                dep.clone(),
                SupervisorConfig {
                    seed: Some(seed),
                    ..SupervisorConfig::default()
                },
            )
            .with(Extra::Fallback),
        ),
        // warden's defaults plus hedging at its defaults (the dependency's own p95, at least
        // 1 ms, once 20 samples are known; one hedge), every call marked idempotent.
        "warden_hedged" => Box::new(
            WardenStack::new(
                dep.clone(),
                SupervisorConfig {
                    seed: Some(seed),
                    hedge: Some(HedgeConfig::default()),
                    ..SupervisorConfig::default()
                },
            )
            .with(Extra::Idempotent),
        ),
        "tower_resilience_hedge" => Box::new(tower_hedge_stack::build(dep.clone())),
        "no_resilience" => Box::new(Direct { dep: dep.clone() }),
        // warden's defaults plus a rate limit at the dependency's own: 100/s, a burst of 10,
        // no waiting; a 429's hint halves the rate until it ends (the default factor).
        "warden_rate_limit" => Box::new(WardenStack::new(
            dep.clone(),
            SupervisorConfig {
                seed: Some(seed),
                rate_limit: Some(RateLimitConfig::per_second(f64::from(DEP_RATE)).burst(DEP_BURST)),
                ..SupervisorConfig::default()
            },
        )),
        "tower_resilience" => Box::new(tower_resilience_stack::build(
            dep.clone(),
            wall(OPEN_FOR),
            scale,
        )),
        "failsafe_backon" => Box::new(failsafe_backon_stack::build(dep.clone(), wall(OPEN_FOR))),
        "tower_recloser" => Box::new(tower_recloser_stack::build(dep.clone(), wall(OPEN_FOR))),
        "naive_retry" => Box::new(NaiveRetry { dep: dep.clone() }),
        "no_limit" => Box::new(NoLimit { dep: dep.clone() }),
        "fixed_bulkhead" => Box::new(WardenStack::new(
            dep.clone(),
            SupervisorConfig {
                max_in_flight: SERVER_WORKERS as u32,
                ..overload_config(seed)
            },
        )),
        "warden_aimd" => Box::new(WardenStack::new(
            dep.clone(),
            SupervisorConfig {
                concurrency_limit: Some(ConcurrencyLimitConfig::Aimd(aimd_config())),
                ..overload_config(seed)
            },
        )),
        "warden_gradient" => Box::new(WardenStack::new(
            dep.clone(),
            SupervisorConfig {
                concurrency_limit: Some(ConcurrencyLimitConfig::Gradient(gradient_config())),
                ..overload_config(seed)
            },
        )),
        "tower_adaptive" => tower_adaptive_stack::build(dep.clone(), false),
        "tower_adaptive_shed" => tower_adaptive_stack::build(dep.clone(), true),
        other => panic!("unknown stack {other}"),
    }
}

/// The hot-key scenario's warden stacks: defaults, with a bulkhead large enough for the whole
/// burst (so what differs is coalescing, not the bulkhead).
fn hot_key_config(seed: u64) -> SupervisorConfig {
    SupervisorConfig {
        seed: Some(seed),
        max_in_flight: 2048,
        ..SupervisorConfig::default()
    }
}

/// `warden_adaptive`: the `adaptive()` preset, seeded like `warden`.
fn adaptive_config(seed: u64) -> SupervisorConfig {
    SupervisorConfig {
        seed: Some(seed),
        ..SupervisorConfig::adaptive()
    }
}

/// The overload scenario's warden stacks: a 1 s timeout and no retries like every stack there,
/// everything else (breaker, `max_in_flight` 256) at warden's defaults.
fn overload_config(seed: u64) -> SupervisorConfig {
    SupervisorConfig {
        seed: Some(seed),
        timeout: Some(OVERLOAD_TIMEOUT),
        retry: RetryConfig::off(),
        ..SupervisorConfig::default()
    }
}

/// `warden_aimd`: AIMD at its defaults (start at 20, between 1 and 200, × 0.9 on a drop),
/// with the latency threshold at 1.5 × the unloaded latency.
fn aimd_config() -> warden::limit::AimdConfig {
    warden::limit::AimdConfig {
        latency_threshold: AIMD_THRESHOLD,
        ..warden::limit::AimdConfig::default()
    }
}

/// `warden_gradient`: gradient2 at its defaults (start at 20, between 1 and 200, smoothing 0.2,
/// RTT tolerance 1.5, windows of 600 and 10 samples, queue allowance √limit).
fn gradient_config() -> warden::limit::GradientConfig {
    warden::limit::GradientConfig::default()
}

struct WardenStack {
    handle: ServiceHandle,
    dep: Arc<Dependency>,
    extra: Extra,
}

/// What a warden stack's calls add to the plain call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    None,
    /// Every call coalesced on one key.
    Coalesce,
    /// A fallback answers `Open` and `RetryRefused` with a cached value.
    Fallback,
    /// Every call marked idempotent (so it may be hedged).
    Idempotent,
}

impl WardenStack {
    fn new(dep: Arc<Dependency>, config: SupervisorConfig) -> Self {
        let handle = ServiceSupervisor::builder("dependency")
            .config(config)
            .start()
            .expect("the scenario's configuration is valid");
        WardenStack {
            handle,
            dep,
            extra: Extra::None,
        }
    }

    fn with(mut self, extra: Extra) -> Self {
        self.extra = extra;
        self
    }
}

/// The value the fallback serves, told apart from the dependency's (call ids are small).
const CACHED: u64 = u64::MAX;

impl Stack for WardenStack {
    fn call(&self, id: u64) -> BoxedAnswer {
        let handle = self.handle.clone();
        let dep = self.dep.clone();
        let extra = self.extra;
        Box::pin(async move {
            let call = Call::new(move || dep.clone().attempt(id)).classify(classify);
            let call = match extra {
                Extra::None => call,
                Extra::Coalesce => call.coalesce("hot"),
                Extra::Idempotent => call.idempotent(),
                Extra::Fallback => call.fallback(|error| match error {
                    CallError::Open { .. } | CallError::RetryRefused { .. } => Ok(CACHED),
                    other => Err(other),
                }),
            };
            match handle.send(call).await {
                Ok(CACHED) => Answer::Fallback,
                Ok(_) => Answer::Success,
                Err(CallError::Open { .. }) => Answer::Refused,
                Err(
                    CallError::Overloaded
                    | CallError::Throttled { .. }
                    | CallError::RateLimited { .. },
                ) => Answer::Shed,
                Err(CallError::TimedOut { .. } | CallError::DeadlineExceeded { .. }) => {
                    Answer::TimedOut
                }
                Err(_) => Answer::Failed,
            }
        })
    }
}

/// The tail-latency scenario's baseline: the attempt, nothing else.
struct Direct {
    dep: Arc<Dependency>,
}

impl Stack for Direct {
    fn call(&self, id: u64) -> BoxedAnswer {
        let dep = self.dep.clone();
        Box::pin(async move {
            match dep.attempt(id).await {
                Ok(_) => Answer::Success,
                Err(_) => Answer::Failed,
            }
        })
    }
}

/// The overload scenario's baseline: a timeout, nothing else.
struct NoLimit {
    dep: Arc<Dependency>,
}

impl Stack for NoLimit {
    fn call(&self, id: u64) -> BoxedAnswer {
        let dep = self.dep.clone();
        Box::pin(async move {
            match tokio::time::timeout(OVERLOAD_TIMEOUT, dep.attempt(id)).await {
                Ok(Ok(_)) => Answer::Success,
                Ok(Err(_)) => Answer::Failed,
                Err(_) => Answer::TimedOut,
            }
        })
    }
}

struct NaiveRetry {
    dep: Arc<Dependency>,
}

impl Stack for NaiveRetry {
    fn call(&self, id: u64) -> BoxedAnswer {
        let dep = self.dep.clone();
        Box::pin(async move {
            let mut delay = BACKOFF;
            let mut attempt = 1;
            loop {
                let answer = match tokio::time::timeout(TIMEOUT, dep.clone().attempt(id)).await {
                    Ok(Ok(_)) => return Answer::Success,
                    Ok(Err(_)) => Answer::Failed,
                    Err(_) => Answer::TimedOut,
                };
                if attempt == ATTEMPTS {
                    return answer;
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        })
    }
}

/// A tower service and how its errors read as an [`Answer`].
struct TowerStack<S, E> {
    service: S,
    classify: fn(&E) -> Answer,
}

impl<S, E> Stack for TowerStack<S, E>
where
    S: Service<u64, Error = E> + Clone + 'static,
    E: 'static,
{
    fn call(&self, id: u64) -> BoxedAnswer {
        let service = self.service.clone();
        let classify = self.classify;
        Box::pin(async move {
            match service.oneshot(id).await {
                Ok(_) => Answer::Success,
                Err(error) => classify(&error),
            }
        })
    }
}

mod tower_resilience_stack {
    use super::*;
    use tower_resilience::circuitbreaker::{CircuitBreakerError, CircuitBreakerLayer};
    use tower_resilience::retry::{RetryBudgetBuilder, RetryLayer};
    use tower_resilience::timelimiter::{TimeLimiterError, TimeLimiterLayer};

    type StackError = CircuitBreakerError<TimeLimiterError<DepError>>;

    pub(super) fn build(dep: Arc<Dependency>, open_for: Duration, scale: f64) -> impl Stack {
        // Its budget is a token bucket on the wall clock: warden's floor of 10 retries/s over
        // 10 s (the 20 %-of-calls part has no counterpart).
        let budget = RetryBudgetBuilder::new()
            .token_bucket()
            .tokens_per_second(10.0 * scale)
            .max_tokens(100)
            .build()
            .expect("valid budget");
        let retry = RetryLayer::<u64, u64, StackError>::builder()
            .max_attempts(ATTEMPTS as usize)
            .exponential_backoff(BACKOFF)
            .retry_on(|e: &StackError| !e.is_circuit_open())
            .budget(budget)
            .build();
        let breaker = CircuitBreakerLayer::builder()
            .consecutive_failures(TRIP_AFTER as usize)
            .wait_duration_in_open(open_for)
            .permitted_calls_in_half_open(1)
            .build()
            .expect("valid breaker");
        let time_limiter = TimeLimiterLayer::builder()
            .timeout_duration(TIMEOUT)
            .build();
        let service = ServiceBuilder::new()
            .layer(retry)
            .layer(breaker)
            .layer(time_limiter)
            .service(tower::service_fn(move |id: u64| dep.clone().attempt(id)));
        TowerStack {
            service,
            classify: |e: &StackError| match e {
                CircuitBreakerError::OpenCircuit => Answer::Refused,
                CircuitBreakerError::Inner(inner) if inner.is_timeout() => Answer::TimedOut,
                CircuitBreakerError::Inner(_) => Answer::Failed,
            },
        }
    }
}

mod tower_hedge_stack {
    use super::*;
    use tower_resilience::hedge::{HedgeError, HedgeLayer};

    /// tower-resilience 0.13's hedge layer: one hedge after a fixed delay (it reads tokio's
    /// clock, so it runs on the simulated one like warden).
    pub(super) fn build(dep: Arc<Dependency>) -> impl Stack {
        let hedge = HedgeLayer::builder()
            .delay(TOWER_HEDGE_DELAY)
            .max_hedged_attempts(2)
            .build();
        let service = ServiceBuilder::new()
            .layer(hedge)
            .service(tower::service_fn(move |id: u64| dep.clone().attempt(id)));
        TowerStack {
            service,
            classify: |_: &HedgeError<DepError>| Answer::Failed,
        }
    }
}

mod failsafe_backon_stack {
    use super::*;
    use backon::{ExponentialBuilder, Retryable};
    use failsafe::failure_policy::{consecutive_failures, ConsecutiveFailures};
    use failsafe::futures::CircuitBreaker as _;
    use failsafe::{backoff, Config, StateMachine};

    type Breaker = StateMachine<ConsecutiveFailures<backoff::Constant>, ()>;

    pub(super) struct FailsafeBackon {
        breaker: Breaker,
        dep: Arc<Dependency>,
    }

    pub(super) fn build(dep: Arc<Dependency>, open_for: Duration) -> FailsafeBackon {
        let breaker = Config::new()
            .failure_policy(consecutive_failures(
                TRIP_AFTER,
                backoff::constant(open_for),
            ))
            .build();
        FailsafeBackon { breaker, dep }
    }

    impl Stack for FailsafeBackon {
        fn call(&self, id: u64) -> BoxedAnswer {
            let breaker = self.breaker.clone();
            let dep = self.dep.clone();
            Box::pin(async move {
                let result = (|| async {
                    let attempt = async {
                        match tokio::time::timeout(TIMEOUT, dep.clone().attempt(id)).await {
                            Ok(Ok(value)) => Ok(value),
                            Ok(Err(_)) => Err(Answer::Failed),
                            Err(_) => Err(Answer::TimedOut),
                        }
                    };
                    breaker.call(attempt).await.map_err(|e| match e {
                        failsafe::Error::Rejected => Answer::Refused,
                        failsafe::Error::Inner(answer) => answer,
                    })
                })
                .retry(
                    ExponentialBuilder::default()
                        .with_min_delay(BACKOFF)
                        .with_factor(2.0)
                        .with_max_delay(Duration::from_secs(10))
                        .with_max_times(ATTEMPTS as usize - 1),
                )
                .sleep(tokio::time::sleep)
                .when(|answer| *answer != Answer::Refused)
                .await;
                match result {
                    Ok(_) => Answer::Success,
                    Err(answer) => answer,
                }
            })
        }
    }
}

#[path = "../../benches/shared/recloser_service.rs"]
mod recloser_service;

#[path = "failure_scenarios/criticality.rs"]
mod criticality;
#[path = "failure_scenarios/fleet.rs"]
mod fleet;

mod tower_recloser_stack {
    use super::*;
    use recloser::{AsyncRecloser, Recloser};
    use tower::retry::budget::{Budget, TpsBudget};

    use super::recloser_service::{RecloserService, StackError};

    /// Up to `ATTEMPTS` attempts with exponential backoff, within a shared `TpsBudget` (which
    /// reads tokio's clock, so it runs in simulated time).
    #[derive(Clone)]
    pub(super) struct BudgetedRetry {
        budget: Arc<TpsBudget>,
        attempts: u32,
    }

    impl<Res> tower::retry::Policy<u64, Res, StackError> for BudgetedRetry {
        type Future = tokio::time::Sleep;

        fn retry(
            &mut self,
            _request: &mut u64,
            result: &mut Result<Res, StackError>,
        ) -> Option<Self::Future> {
            match result {
                Ok(_) => {
                    self.budget.deposit();
                    None
                }
                Err(recloser::Error::Rejected) => None,
                Err(recloser::Error::Inner(_)) => {
                    if self.attempts >= ATTEMPTS || !self.budget.withdraw() {
                        return None;
                    }
                    let delay = BACKOFF * 2u32.pow(self.attempts - 1);
                    self.attempts += 1;
                    Some(tokio::time::sleep(delay))
                }
            }
        }

        fn clone_request(&mut self, request: &u64) -> Option<u64> {
            Some(*request)
        }
    }

    pub(super) fn build(dep: Arc<Dependency>, open_for: Duration) -> impl Stack {
        // A ring of 5 at a 100 % failure rate = 5 consecutive failures; one half-open call.
        let breaker = Recloser::custom()
            .error_rate(1.0)
            .closed_len(TRIP_AFTER as usize)
            .half_open_len(1)
            .open_wait(open_for)
            .build();
        let inner = ServiceBuilder::new()
            .timeout(TIMEOUT)
            .service(tower::service_fn(move |id: u64| dep.clone().attempt(id)));
        let service = ServiceBuilder::new()
            .retry(BudgetedRetry {
                // warden's default budget: 20 % of calls, at least 10 retries/s, over 10 s.
                budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
                attempts: 1,
            })
            .service(RecloserService::new(
                inner,
                Arc::new(AsyncRecloser::from(breaker)),
            ));
        TowerStack {
            service,
            classify: |e: &StackError| match e {
                recloser::Error::Rejected => Answer::Refused,
                recloser::Error::Inner(inner) if inner.is::<tower::timeout::error::Elapsed>() => {
                    Answer::TimedOut
                }
                recloser::Error::Inner(_) => Answer::Failed,
            },
        }
    }
}

mod tower_adaptive_stack {
    //! tower-resilience's `AdaptiveLimiterLayer` with its AIMD, parameters mirroring
    //! `warden_aimd`. The layer times each call with `std::time::Instant`, which does not move
    //! with tokio's paused clock; [`SimulatedRtt`] hands its algorithm the simulated round trip
    //! of the same call instead. Everything else — when the limit moves, by how much, how
    //! callers wait for a permit — is the layer's own.

    use super::*;
    use tower::load_shed::error::Overloaded;
    use tower::BoxError;
    use tower_resilience::adaptive::{
        AdaptiveError, AdaptiveLimiterLayer, Aimd, ConcurrencyAlgorithm,
    };

    type AttemptError = tokio::time::error::Elapsed;

    thread_local! {
        /// The simulated round trip of the attempt that has just ended. The inner service sets
        /// it in the poll in which the attempt ends, and the layer reports that attempt to its
        /// algorithm in the same poll, before anything else runs on this thread.
        static SIMULATED_RTT: Cell<Option<Duration>> = const { Cell::new(None) };
    }

    /// An algorithm that records the simulated round trip instead of the wall-clock one.
    pub(super) struct SimulatedRtt<A>(A);

    impl<A: ConcurrencyAlgorithm> ConcurrencyAlgorithm for SimulatedRtt<A> {
        fn record_success(&self, _wall_clock: Duration) {
            let rtt = SIMULATED_RTT
                .take()
                .expect("the inner service sets the round trip before the layer records it");
            self.0.record_success(rtt);
        }

        fn record_failure(&self) {
            SIMULATED_RTT.take();
            self.0.record_failure();
        }

        fn record_dropped(&self) {
            self.0.record_dropped();
        }

        fn limit(&self) -> usize {
            self.0.limit()
        }

        fn min_limit(&self) -> usize {
            self.0.min_limit()
        }

        fn max_limit(&self) -> usize {
            self.0.max_limit()
        }
    }

    /// `shed`: behind tower's `load_shed` (refused at once when no permit is free); otherwise
    /// as documented, callers waiting for a permit, the whole call under the timeout.
    pub(super) fn build(dep: Arc<Dependency>, shed: bool) -> Box<dyn Stack> {
        let warden = aimd_config();
        let algorithm = Aimd::builder()
            .initial_limit(warden.initial_limit as usize)
            .min_limit(warden.min_limit as usize)
            .max_limit(warden.max_limit as usize)
            .increase_by(1)
            .decrease_factor(warden.backoff_ratio)
            .latency_threshold(warden.latency_threshold)
            .build()
            .expect("valid AIMD");
        let inner = tower::service_fn(move |id: u64| {
            let dep = dep.clone();
            async move {
                let started = Instant::now();
                let result = tokio::time::timeout(OVERLOAD_TIMEOUT, dep.attempt(id)).await;
                SIMULATED_RTT.set(Some(started.elapsed()));
                result
            }
        });
        let adaptive = ServiceBuilder::new()
            .layer(AdaptiveLimiterLayer::new(SimulatedRtt(algorithm)))
            .service(inner);
        if shed {
            Box::new(TowerStack {
                service: ServiceBuilder::new().load_shed().service(adaptive),
                classify: |e: &BoxError| {
                    if e.is::<Overloaded>() {
                        return Answer::Shed;
                    }
                    match e.downcast_ref::<AdaptiveError<AttemptError>>() {
                        Some(AdaptiveError::LimitReached) => Answer::Shed,
                        Some(AdaptiveError::Service(_)) => Answer::TimedOut,
                        None => Answer::Failed,
                    }
                },
            })
        } else {
            Box::new(Waiting { service: adaptive })
        }
    }

    /// Callers wait for a permit; the timeout covers the wait and the attempt.
    struct Waiting<S> {
        service: S,
    }

    impl<S> Stack for Waiting<S>
    where
        S: Service<u64, Error = AdaptiveError<AttemptError>> + Clone + 'static,
    {
        fn call(&self, id: u64) -> BoxedAnswer {
            let service = self.service.clone();
            Box::pin(async move {
                match tokio::time::timeout(OVERLOAD_TIMEOUT, service.oneshot(id)).await {
                    Ok(Ok(_)) => Answer::Success,
                    Ok(Err(AdaptiveError::LimitReached)) => Answer::Shed,
                    Ok(Err(AdaptiveError::Service(_))) | Err(_) => Answer::TimedOut,
                }
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Driving a scenario

/// One call as the caller saw it (times since the scenario's origin, simulated).
#[derive(Debug, Clone, Copy)]
struct CallRecord {
    id: u64,
    offered: Duration,
    answered: Duration,
    answer: Answer,
}

/// Keeps the wall clock at `simulated / scale` for stacks that read it.
struct Pacer {
    /// Wall-clock instant of simulated time zero, fixed at the first call to `pace`.
    wall_start: Option<WallInstant>,
    scale: f64,
    /// Largest lead of the wall clock over the simulated one, in simulated time.
    max_skew: Duration,
}

impl Pacer {
    fn new(scale: f64) -> Self {
        Pacer {
            wall_start: None,
            scale,
            max_skew: Duration::ZERO,
        }
    }

    fn pace(&mut self, simulated: Duration) {
        let scaled = simulated.div_f64(self.scale);
        let wall_start = *self
            .wall_start
            .get_or_insert_with(|| WallInstant::now() - scaled);
        let target = wall_start + scaled;
        let now = WallInstant::now();
        if now < target {
            std::thread::sleep(target - now);
        } else {
            self.max_skew = self.max_skew.max((now - target).mul_f64(self.scale));
        }
    }
}

/// Offers the scenario's calls to `stack` and waits for every answer.
async fn drive(stack: &dyn Stack, dep: &Dependency, pacer: &mut Option<Pacer>) -> Vec<CallRecord> {
    let scenario = dep.scenario;
    let origin = dep.origin;
    let interval = scenario.interval();
    let records: Rc<RefCell<Vec<CallRecord>>> = Rc::default();
    let pending = Rc::new(Cell::new(0usize));
    for (id, due) in (0u64..).zip(scenario.offers()) {
        tokio::time::sleep_until(origin + due).await;
        // The timer fires on a millisecond tick: the actual instant is the offer time.
        let offered = origin.elapsed();
        if let Some(pacer) = pacer.as_mut() {
            pacer.pace(offered);
        }
        let answer = stack.call(id);
        let records = records.clone();
        let pending = pending.clone();
        pending.set(pending.get() + 1);
        tokio::task::spawn_local(async move {
            let answer = answer.await;
            records.borrow_mut().push(CallRecord {
                id,
                offered,
                answered: origin.elapsed(),
                answer,
            });
            pending.set(pending.get() - 1);
        });
    }
    while pending.get() > 0 {
        tokio::time::sleep(interval).await;
        if let Some(pacer) = pacer.as_mut() {
            pacer.pace(origin.elapsed());
        }
    }
    let mut records = records.take();
    records.sort_by_key(|r| r.offered);
    records
}

/// Runs one scenario through one stack on a fresh runtime (paused clock) of this thread.
fn run(scenario: Scenario, stack: StackSpec, scale: f64, seed: u64) -> Figures {
    let body = async move {
        let dep = Dependency::new(scenario, seed);
        let built = build_stack(stack.name, &dep, scale, seed);
        let mut pacer = stack.wall_clock.then(|| Pacer::new(scale));
        let records = drive(built.as_ref(), &dep, &mut pacer).await;
        let attempts = dep.attempts.lock().unwrap().clone();
        let observed = Observed {
            max_in_flight: dep.server_max_outstanding(),
            too_many: dep.too_many.lock().unwrap().clone(),
        };
        let clock = match &pacer {
            Some(_) => format!("lockstep 1/{scale}"),
            None => "simulated".to_string(),
        };
        Figures::compute(
            &scenario,
            stack.name,
            &records,
            &attempts,
            &observed,
            clock,
            pacer.map(|p| p.max_skew),
        )
    };
    // The clock is paused from the start: it then stays on the timer wheel's 1 ms ticks, so a
    // timer fires at the instant it is due (a clock paused later keeps the sub-millisecond
    // offset it had, and every timer fires up to 1 ms late).
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime")
    };
    if stack.warden {
        actix::System::with_tokio_rt(runtime).block_on(body)
    } else {
        tokio::task::LocalSet::new().block_on(&runtime(), body)
    }
}

// ---------------------------------------------------------------------------------------------
// Figures

/// The figures of one scenario × stack (times in simulated milliseconds).
#[derive(Debug, Clone, Serialize)]
struct Figures {
    scenario: &'static str,
    stack: &'static str,
    /// Calls offered from the start of the fault to the end of the run.
    calls_offered: usize,
    /// Attempts those calls made that reached the dependency.
    attempts: usize,
    /// `attempts / calls_offered`.
    amplification: f64,
    /// Calls offered after the fault began before the first call refused without reaching the
    /// dependency; `None` if the breaker never opened.
    calls_until_open: Option<usize>,
    /// Time from the start of the fault to that first refusal.
    open_after_ms: Option<f64>,
    /// Caller-observed latency of the calls offered during the fault.
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    /// From the dependency healing to the first call from which every later call succeeded
    /// (only for scenarios that heal; `None` there if traffic never flowed again).
    recovery_ms: Option<f64>,
    /// From the dependency healing to the first successful call offered after it.
    first_success_after_heal_ms: Option<f64>,
    /// Attempts that reached the dependency after the breaker opened, while every attempt
    /// failed (outage, slow dependency). Not defined for the brownout, where a successful probe
    /// closes the breaker and later attempts are ordinary traffic.
    probes: Option<usize>,
    /// Groups of probes separated by refused calls (half-open episodes).
    probe_episodes: Option<usize>,
    /// Most probes in one episode.
    max_probes_per_episode: Option<usize>,
    /// Successful calls ÷ calls offered (same window as `calls_offered`).
    goodput: f64,
    /// Latency of the successful calls among those offered during the fault.
    success_p50_ms: Option<f64>,
    success_p99_ms: Option<f64>,
    /// Calls refused without reaching the dependency (`refused + shed`) ÷ calls offered.
    rejected_share: f64,
    /// Calls whose last attempt timed out ÷ calls offered.
    timed_out_share: f64,
    /// Most requests at the dependency at once, queued ones included (overload scenario).
    dependency_max_in_flight: Option<usize>,
    /// Attempts the dependency answered `429 Too Many Requests` (rate-limited scenario).
    too_many_requests: Option<usize>,
    successes: usize,
    refused: usize,
    shed: usize,
    /// Calls answered by their fallback.
    fallback: usize,
    failed: usize,
    timed_out: usize,
    /// `simulated`, or `lockstep 1/S` for stacks reading the wall clock.
    clock: String,
    /// Largest lead of the wall clock over simulated time seen while pacing.
    clock_skew_ms: Option<f64>,
}

/// What the dependency itself saw, beyond the attempts.
struct Observed {
    /// Most requests at the queueing server at once (overload scenario).
    max_in_flight: Option<usize>,
    /// When each 429 was answered (rate-limited scenario).
    too_many: Vec<Duration>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Figures {
    fn compute(
        scenario: &Scenario,
        stack: &'static str,
        records: &[CallRecord],
        attempts: &[(u64, Duration)],
        dependency: &Observed,
        clock: String,
        skew: Option<Duration>,
    ) -> Figures {
        let dependency_max_in_flight = dependency.max_in_flight;
        let too_many_requests = (scenario.fault == Fault::RateLimited).then(|| {
            dependency
                .too_many
                .iter()
                .filter(|at| **at >= scenario.fault_start())
                .count()
        });
        let mut attempts_per_call = std::collections::HashMap::<u64, usize>::new();
        for (id, _) in attempts {
            *attempts_per_call.entry(*id).or_default() += 1;
        }
        let reached = |r: &CallRecord| attempts_per_call.get(&r.id).copied().unwrap_or(0);

        let window: Vec<&CallRecord> = records
            .iter()
            .filter(|r| r.offered >= scenario.fault_start())
            .collect();
        let calls_offered = window.len();
        let window_attempts: usize = window.iter().map(|r| reached(r)).sum();
        let count = |answer: Answer| window.iter().filter(|r| r.answer == answer).count();

        // The breaker opened when the first call was refused without reaching the dependency.
        let refusals: Vec<Duration> = window
            .iter()
            .filter(|r| r.answer == Answer::Refused && reached(r) == 0)
            .map(|r| r.offered)
            .collect();
        let first_refusal = refusals.first().copied();
        let calls_until_open =
            first_refusal.map(|at| window.iter().take_while(|r| r.offered < at).count());

        let latencies_of = |success_only: bool| {
            let mut latencies: Vec<Duration> = window
                .iter()
                .filter(|r| r.offered < scenario.fault_end())
                .filter(|r| !success_only || r.answer == Answer::Success)
                .map(|r| r.answered - r.offered)
                .collect();
            latencies.sort();
            latencies
        };
        let quantile = |latencies: &[Duration], q: f64| {
            latencies
                .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .map(ms)
        };
        let latencies = latencies_of(false);
        let successful = latencies_of(true);

        let probes_defined = scenario.fault.probes_defined();
        let mut probe_times: Vec<Duration> = match first_refusal {
            Some(opened) => attempts
                .iter()
                .map(|(_, at)| *at)
                .filter(|at| *at >= opened && scenario.faulty_at(*at))
                .collect(),
            None => Vec::new(),
        };
        probe_times.sort();
        let mut episodes: Vec<usize> = Vec::new();
        for (i, at) in probe_times.iter().enumerate() {
            let new_episode =
                i == 0 || refusals.iter().any(|r| *r > probe_times[i - 1] && *r < *at);
            if new_episode {
                episodes.push(1);
            } else if let Some(last) = episodes.last_mut() {
                *last += 1;
            }
        }

        let heals = !scenario.healthy_after.is_zero();
        let after_heal: Vec<&&CallRecord> = window
            .iter()
            .filter(|r| r.offered >= scenario.fault_end())
            .collect();
        let recovery_ms = heals
            .then(|| {
                let last_bad = after_heal.iter().rposition(|r| r.answer != Answer::Success);
                let first_good = match last_bad {
                    None => after_heal.first(),
                    Some(i) => after_heal.get(i + 1),
                };
                first_good.map(|r| ms(r.offered - scenario.fault_end()))
            })
            .flatten();
        let first_success_after_heal_ms = heals
            .then(|| {
                after_heal
                    .iter()
                    .find(|r| r.answer == Answer::Success)
                    .map(|r| ms(r.offered - scenario.fault_end()))
            })
            .flatten();

        let successes = count(Answer::Success);
        Figures {
            scenario: scenario.name,
            stack,
            calls_offered,
            attempts: window_attempts,
            amplification: window_attempts as f64 / calls_offered.max(1) as f64,
            calls_until_open,
            open_after_ms: first_refusal.map(|at| ms(at - scenario.fault_start())),
            p50_ms: quantile(&latencies, 0.5).unwrap_or(0.0),
            p99_ms: quantile(&latencies, 0.99).unwrap_or(0.0),
            p999_ms: quantile(&latencies, 0.999).unwrap_or(0.0),
            recovery_ms,
            first_success_after_heal_ms,
            probes: probes_defined.then_some(probe_times.len()),
            probe_episodes: probes_defined.then_some(episodes.len()),
            max_probes_per_episode: probes_defined
                .then(|| episodes.iter().copied().max().unwrap_or(0)),
            goodput: successes as f64 / calls_offered.max(1) as f64,
            success_p50_ms: quantile(&successful, 0.5),
            success_p99_ms: quantile(&successful, 0.99),
            rejected_share: (count(Answer::Refused) + count(Answer::Shed)) as f64
                / calls_offered.max(1) as f64,
            timed_out_share: count(Answer::TimedOut) as f64 / calls_offered.max(1) as f64,
            dependency_max_in_flight,
            too_many_requests,
            successes,
            refused: count(Answer::Refused),
            shed: count(Answer::Shed),
            fallback: count(Answer::Fallback),
            failed: count(Answer::Failed),
            timed_out: count(Answer::TimedOut),
            clock,
            clock_skew_ms: skew.map(ms),
        }
    }
}

fn print_table(scenario: &Scenario, rows: &[&Figures]) {
    if scenario.fault == Fault::Overload {
        return print_overload_table(scenario, rows);
    }
    if scenario.fault == Fault::RateLimited {
        return print_rate_limited_table(scenario, rows);
    }
    if scenario.fault == Fault::HotKey || scenario.name == "fallback_during_outage" {
        return print_answered_table(scenario, rows);
    }
    if scenario.fault == Fault::TailLatency {
        return print_tail_table(scenario, rows);
    }
    let heals = !scenario.healthy_after.is_zero();
    println!(
        "\n## {} — {} for {:?} after {:?} warm-up{}, {} calls/s",
        scenario.name,
        scenario.fault.describe(),
        scenario.fault_for,
        scenario.warmup,
        if heals {
            format!(", then healthy for {:?}", scenario.healthy_after)
        } else {
            String::new()
        },
        scenario.rate,
    );
    println!();
    println!(
        "| stack | amplification | calls until open | p50 ms | p99 ms | recovery ms | probes (episodes, max/ep.) | shed | goodput | clock |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---|");
    for f in rows {
        let recovery = if heals {
            f.recovery_ms
                .map_or("never".to_string(), |v| format!("{v:.0}"))
        } else {
            "n/a".to_string()
        };
        let probes = match (f.probes, f.probe_episodes, f.max_probes_per_episode) {
            (Some(p), Some(e), Some(m)) => format!("{p} ({e}, {m})"),
            _ => "—".to_string(),
        };
        println!(
            "| {} | {:.3} | {} | {:.1} | {:.1} | {} | {} | {} | {:.3} | {} |",
            f.stack,
            f.amplification,
            f.calls_until_open
                .map_or("never".to_string(), |n| n.to_string()),
            f.p50_ms,
            f.p99_ms,
            recovery,
            probes,
            f.shed,
            f.goodput,
            clock(f),
        );
    }
}

/// The heading of a scenario whose fault is the offered load (overload, rate limited).
fn print_load_header(scenario: &Scenario) {
    println!(
        "\n## {} — {}: {} calls/s for {:?} after {:?} at {} calls/s",
        scenario.name,
        scenario.fault.describe(),
        scenario.fault_rate,
        scenario.fault_for,
        scenario.warmup,
        scenario.rate,
    );
    println!();
}

fn print_overload_table(scenario: &Scenario, rows: &[&Figures]) {
    print_load_header(scenario);
    println!(
        "| stack | goodput | success p50 ms | success p99 ms | rejected | timed out | amplification | max at server | clock |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
    for f in rows {
        println!(
            "| {} | {:.3} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} |",
            f.stack,
            f.goodput,
            opt(f.success_p50_ms),
            opt(f.success_p99_ms),
            f.rejected_share,
            f.timed_out_share,
            f.amplification,
            f.dependency_max_in_flight
                .map_or("—".to_string(), |n| n.to_string()),
            clock(f),
        );
    }
}

/// Calls answered (a value or a fallback's) and what reached the dependency.
fn print_answered_table(scenario: &Scenario, rows: &[&Figures]) {
    print_load_header(scenario);
    println!("| stack | calls | attempts at the dependency | amplification | answered | by fallback | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for f in rows {
        let calls = f.calls_offered.max(1) as f64;
        println!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.1} |",
            f.stack,
            f.calls_offered,
            f.attempts,
            f.amplification,
            (f.successes + f.fallback) as f64 / calls,
            f.fallback as f64 / calls,
            f.p99_ms,
        );
    }
}

/// Latency of every call and what it cost at the dependency.
fn print_tail_table(scenario: &Scenario, rows: &[&Figures]) {
    println!(
        "\n## {} — {}, {} calls/s for {:?} after {:?}",
        scenario.name,
        scenario.fault.describe(),
        scenario.rate,
        scenario.fault_for,
        scenario.warmup,
    );
    println!();
    println!("| stack | p50 ms | p99 ms | p99.9 ms | amplification | goodput |");
    println!("|---|---:|---:|---:|---:|---:|");
    for f in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.3} | {:.3} |",
            f.stack, f.p50_ms, f.p99_ms, f.p999_ms, f.amplification, f.goodput,
        );
    }
}

fn print_rate_limited_table(scenario: &Scenario, rows: &[&Figures]) {
    print_load_header(scenario);
    println!(
        "| stack | goodput | 429s seen | 429s per call | refused locally | amplification | p99 ms | clock |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for f in rows {
        let too_many = f.too_many_requests.unwrap_or(0);
        println!(
            "| {} | {:.3} | {} | {:.3} | {:.3} | {:.3} | {:.1} | {} |",
            f.stack,
            f.goodput,
            too_many,
            too_many as f64 / f.calls_offered.max(1) as f64,
            f.rejected_share,
            f.amplification,
            f.p99_ms,
            clock(f),
        );
    }
}

fn clock(f: &Figures) -> String {
    match f.clock_skew_ms {
        Some(skew) => format!("{} (skew ≤ {skew:.0} ms)", f.clock),
        None => f.clock.clone(),
    }
}

fn main() {
    let args = Args::parse();
    let scale = args
        .time_scale
        .unwrap_or(if args.quick { 50.0 } else { 20.0 });
    assert!(scale > 0.0, "--time-scale must be positive");
    let scenarios: Vec<Scenario> = Scenario::all(args.quick)
        .into_iter()
        .filter(|s| args.scenarios.is_empty() || args.scenarios.iter().any(|n| n == s.name))
        .collect();
    let wanted =
        |stack: &StackSpec| args.stacks.is_empty() || args.stacks.iter().any(|n| n == stack.name);
    let runs: Vec<(Scenario, StackSpec)> = scenarios
        .iter()
        .flat_map(|scenario| {
            scenario
                .stacks()
                .iter()
                .filter(|stack| wanted(stack))
                .map(move |stack| (*scenario, *stack))
        })
        .collect();
    let started = WallInstant::now();

    // Stacks paced to the wall clock mostly sleep: they run side by side, each on its own
    // thread, started first. Stacks on the simulated clock run meanwhile on this thread, one
    // after another, as fast as they can.
    let paced: Vec<_> = runs
        .iter()
        .filter(|(_, stack)| stack.wall_clock)
        .map(|&(scenario, stack)| {
            let seed = args.seed + scenario.seed_offset;
            std::thread::spawn(move || run(scenario, stack, scale, seed))
        })
        .collect();
    let mut results: Vec<Figures> = runs
        .iter()
        .filter(|(_, stack)| !stack.wall_clock)
        .map(|&(scenario, stack)| run(scenario, stack, scale, args.seed + scenario.seed_offset))
        .collect();
    for thread in paced {
        results.push(thread.join().expect("scenario thread"));
    }

    println!(
        "# failure scenarios (seed {}, {} mode, peers paced at {scale}× wall clock, {:.1} s)",
        args.seed,
        if args.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64()
    );
    for scenario in &scenarios {
        let order = |name: &str| scenario.stacks().iter().position(|s| s.name == name);
        let mut rows: Vec<&Figures> = results
            .iter()
            .filter(|f| f.scenario == scenario.name)
            .collect();
        rows.sort_by_key(|f| order(f.stack));
        print_table(scenario, &rows);
    }
    let fleet_wanted =
        |name: &str| args.scenarios.is_empty() || args.scenarios.iter().any(|n| n == name);
    let fleet_rows: Vec<fleet::Figures> = ["fleet_outage", "fleet_brownout"]
        .into_iter()
        .filter(|name| fleet_wanted(name))
        .flat_map(|name| {
            [false, true].map(|shared| fleet::run(name, shared, args.quick, args.seed))
        })
        .collect();
    if !fleet_rows.is_empty() {
        fleet::print(&fleet_rows);
    }
    if fleet_wanted("criticality_overload") {
        let rows: Vec<criticality::Figures> = criticality::MODES
            .into_iter()
            .map(|mode| criticality::run(mode, args.quick, args.seed))
            .collect();
        criticality::print(&rows);
        if let Err(broken) = criticality::check(&rows) {
            eprintln!("criticality_overload: {broken}");
            std::process::exit(1);
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&results).expect("figures serialize");
        std::fs::write(path, json).expect("write the JSON file");
        println!("\nwrote {}", path.display());
    }
}
