//! The criticality scenario (issue 20): a dependency with room for 40 requests at a time is
//! offered twice that, from a cold start, for longer than every window. A fifth of the calls
//! are critical, half default, the rest sheddable. Who gets through?
//!
//! - `unprotected`: warden with a timeout only: the dependency's queue grows until every call
//!   times out.
//! - `bulkhead, first come`: a bulkhead at the dependency's size, every call alike — what a
//!   bulkhead or a concurrency limit of any peer does (none of the Rust peers can tell calls
//!   apart): each class gets the same share.
//! - `bulkhead + criticality`: the same bulkhead with reserves (20 % of the slots for critical
//!   calls only, 20 % more for default and critical): the cut falls on sheddable calls first.
//! - `adaptive limit + criticality`: the bulkhead's size found by an AIMD limit (a sample
//!   slower than 1.5× the service time is queueing) instead of known in advance, with the same
//!   reserves.
//!
//! Paused clock, seeded: the same figures on every run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use warden::criticality::CriticalityConfig;
use warden::limit::{AimdConfig, ConcurrencyLimitConfig};
use warden::messages::Call;
use warden::prelude::*;
use warden::Criticality;

/// Requests the dependency works on at once; the others wait in its queue.
const WORKERS: usize = 40;
/// Time to serve one request, once a worker has it.
const SERVICE: Duration = Duration::from_millis(20);
/// Offered load over the dependency's capacity.
const OVERLOAD: f64 = 2.0;
/// The share of critical, default and sheddable calls.
const MIX: [(Criticality, f64); 3] = [
    (Criticality::Critical, 0.2),
    (Criticality::Default, 0.5),
    (Criticality::Sheddable, 0.3),
];

/// One run's figures.
pub struct Figures {
    pub mode: &'static str,
    pub seconds: u64,
    /// Calls offered and answered with a value, by class (critical, default, sheddable).
    pub offered: [u64; 3],
    pub ok: [u64; 3],
    /// Answered `Overloaded` (refused by warden), by class.
    pub shed: [u64; 3],
    /// Requests the dependency served.
    pub served: u64,
}

impl Figures {
    fn goodput(&self, class: usize) -> f64 {
        self.ok[class] as f64 / self.offered[class].max(1) as f64
    }
}

fn class_index(criticality: Criticality) -> usize {
    MIX.iter()
        .position(|(c, _)| *c == criticality)
        .expect("in the mix")
}

/// The modes, in table order.
pub const MODES: [&str; 4] = [
    "unprotected",
    "bulkhead, first come",
    "bulkhead + criticality",
    "adaptive limit + criticality",
];

fn config(mode: &str, seed: u64) -> SupervisorConfig {
    let reserves = CriticalityConfig::default()
        .reserved_for_critical(0.2)
        .reserved_for_default(0.2);
    let base = SupervisorConfig {
        timeout: Some(Duration::from_millis(200)),
        retry: RetryConfig::off(),
        // Overload is not an outage: the breaker stays out of it.
        breaker: BreakerConfig::consecutive(1_000_000),
        max_in_flight: 100_000,
        mailbox_capacity: 100_000,
        seed: Some(seed),
        ..SupervisorConfig::default()
    };
    match mode {
        "unprotected" => base,
        "bulkhead, first come" => SupervisorConfig {
            max_in_flight: WORKERS as u32,
            ..base
        },
        "bulkhead + criticality" => SupervisorConfig {
            max_in_flight: WORKERS as u32,
            criticality: Some(reserves),
            ..base
        },
        _ => SupervisorConfig {
            max_in_flight: 1_000,
            // A sample slower than 1.5× the service time (queueing) lowers the limit.
            concurrency_limit: Some(ConcurrencyLimitConfig::Aimd(AimdConfig {
                initial_limit: 20,
                min_limit: 5,
                max_limit: 1_000,
                backoff_ratio: 0.9,
                latency_threshold: SERVICE * 3 / 2,
                ..AimdConfig::default()
            })),
            criticality: Some(reserves),
            ..base
        },
    }
}

/// Runs one mode for `seconds` of simulated time, from a cold start.
pub fn run(mode: &'static str, quick: bool, seed: u64) -> Figures {
    let seconds = if quick { 10 } else { 40 };
    actix::System::new().block_on(async move {
        tokio::time::pause();
        let svc = ServiceSupervisor::builder("overloaded")
            .config(config(mode, seed))
            .start()
            .expect("valid configuration");
        let workers = Arc::new(Semaphore::new(WORKERS));
        let served = Arc::new(AtomicU64::new(0));
        let ok: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let shed: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let offered = Arc::new(Mutex::new([0u64; 3]));
        let rate = OVERLOAD * WORKERS as f64 / SERVICE.as_secs_f64();
        let start = Instant::now();
        let total = Duration::from_secs(seconds);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut calls = Vec::new();
        let gap = move |rng: &mut SmallRng| {
            Duration::from_secs_f64(-rng.random::<f64>().max(1e-12).ln() / rate)
        };
        let mut next = start + gap(&mut rng);
        'arrivals: loop {
            // Poisson arrivals at twice the dependency's capacity; the timer ticks in
            // milliseconds, so each tick starts every arrival due by then.
            tokio::time::sleep_until(next).await;
            let now = Instant::now();
            while next <= now {
                next += gap(&mut rng);
                if start.elapsed() >= total {
                    break 'arrivals;
                }
                let draw: f64 = rng.random();
                let mut sum = 0.0;
                let criticality = MIX
                    .iter()
                    .find(|(_, share)| {
                        sum += share;
                        draw < sum
                    })
                    .map_or(Criticality::Sheddable, |(c, _)| *c);
                let class = class_index(criticality);
                offered.lock().unwrap()[class] += 1;
                let (svc, workers, served, ok, shed) = (
                    svc.clone(),
                    Arc::clone(&workers),
                    Arc::clone(&served),
                    Arc::clone(&ok),
                    Arc::clone(&shed),
                );
                calls.push(tokio::spawn(async move {
                    let dependency = move || {
                        let (workers, served) = (Arc::clone(&workers), Arc::clone(&served));
                        async move {
                            // Queued until a worker is free; a call cancelled while queued (its
                            // timeout) leaves the queue.
                            let _worker = workers.acquire_owned().await.expect("open");
                            tokio::time::sleep(SERVICE).await;
                            served.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, &'static str>(())
                        }
                    };
                    let answer = svc
                        .send(Call::new(dependency).criticality(criticality))
                        .await;
                    match answer {
                        Ok(()) => ok[class].fetch_add(1, Ordering::Relaxed),
                        Err(CallError::Overloaded) => shed[class].fetch_add(1, Ordering::Relaxed),
                        Err(_) => 0,
                    };
                }));
            }
            if calls.len() >= 4_096 {
                calls.retain(|call: &tokio::task::JoinHandle<()>| !call.is_finished());
            }
        }
        for call in calls {
            call.await.expect("call");
        }
        let offered = *offered.lock().unwrap();
        let load = |counts: &[AtomicU64; 3]| counts.each_ref().map(|c| c.load(Ordering::Relaxed));
        Figures {
            mode,
            seconds,
            offered,
            ok: load(&ok),
            shed: load(&shed),
            served: served.load(Ordering::Relaxed),
        }
    })
}

/// Prints the criticality scenario's table.
pub fn print(rows: &[Figures]) {
    println!(
        "\n## criticality_overload: room for {WORKERS} at a time ({:.0}/s), offered {OVERLOAD}×, \
         20 % critical, 50 % default, 30 % sheddable, from cold (simulated clock)\n",
        WORKERS as f64 / SERVICE.as_secs_f64()
    );
    println!("| mode | seconds | offered | served by the dependency | critical goodput | default goodput | sheddable goodput | shed (critical / default / sheddable) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for f in rows {
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {} / {} / {} |",
            f.mode,
            f.seconds,
            f.offered.iter().sum::<u64>(),
            f.served,
            f.goodput(0),
            f.goodput(1),
            f.goodput(2),
            f.shed[0],
            f.shed[1],
            f.shed[2]
        );
    }
}

/// The scenario's promise, checked where it runs (CI): with criticality, critical goodput is
/// at least 0.99 and the cut falls on sheddable calls first.
pub fn check(rows: &[Figures]) -> Result<(), String> {
    for f in rows.iter().filter(|f| f.mode.ends_with("criticality")) {
        if f.goodput(0) < 0.99 {
            return Err(format!("{}: critical goodput {:.3}", f.mode, f.goodput(0)));
        }
        if !(f.goodput(2) < f.goodput(1) && f.goodput(1) < f.goodput(0)) {
            return Err(format!(
                "{}: the cut does not fall in order ({:.3} / {:.3} / {:.3})",
                f.mode,
                f.goodput(0),
                f.goodput(1),
                f.goodput(2)
            ));
        }
    }
    Ok(())
}
