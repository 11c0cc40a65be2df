//! The fleet scenarios (issue 19): 100 replicas of one service calling one dependency, each
//! replica a warden supervisor, on a simulated (paused) clock so the fleet scales past this
//! machine. Each runs twice: every replica on its own state (a local retry budget, no shared
//! quota), and the fleet sharing one quota and one retry budget through a `MemoryStore` (the
//! same cores and the same store protocol as Redis, without the network).
//!
//! - `fleet_outage`: the dependency is down for a while, then back. Do the replicas' probes
//!   synchronise while it is down, and what is the load in the first second after it is back,
//!   against the steady load before?
//! - `fleet_brownout`: half of the attempts fail for a while. How much do retries amplify the
//!   load, with 100 local budgets (100 floors) against one fleet budget?

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use warden::breaker::{BreakerConfig, OpenDuration, SlidingWindow};
use warden::fleet::{FleetConfig, FleetStore, MemoryStore};
use warden::prelude::*;

const REPLICAS: usize = 100;
/// Attempts are counted in buckets of this width.
const BUCKET: Duration = Duration::from_millis(100);

/// What the dependency does when.
#[derive(Clone, Copy)]
struct Trouble {
    from: Duration,
    until: Duration,
    /// Share of the attempts that fail in between (1: an outage).
    failing: f64,
}

/// The dependency: counts attempts by bucket, fails as `trouble` says, answers in 10 ms.
struct Dependency {
    start: Instant,
    trouble: Trouble,
    attempts: Mutex<Vec<u64>>,
    rng: Mutex<SmallRng>,
}

impl Dependency {
    async fn attempt(&self) -> Result<(), &'static str> {
        let at = self.start.elapsed();
        let bucket = (at.as_nanos() / BUCKET.as_nanos()) as usize;
        {
            let mut attempts = self.attempts.lock().unwrap();
            if attempts.len() <= bucket {
                attempts.resize(bucket + 1, 0);
            }
            attempts[bucket] += 1;
        }
        let troubled = at >= self.trouble.from && at < self.trouble.until;
        let fails = troubled && self.rng.lock().unwrap().random_bool(self.trouble.failing);
        tokio::time::sleep(Duration::from_millis(10)).await;
        if fails {
            Err("unavailable")
        } else {
            Ok(())
        }
    }
}

/// One run's figures.
pub struct Figures {
    pub scenario: &'static str,
    pub mode: &'static str,
    pub calls: u64,
    pub attempts: u64,
    /// Attempts per second before the trouble.
    pub steady: f64,
    /// Attempts in the first second after the trouble, over `steady`.
    pub first_second_after: f64,
    /// The busiest second (any 1 s window) after the trouble, over `steady`.
    pub peak_second_after: f64,
    /// Attempts per second during the trouble (its first second left out).
    pub during: f64,
    /// The busiest 100 ms of the trouble (its first second left out), over its mean.
    pub peak_bucket_over_mean: f64,
    /// Attempts over calls during the trouble.
    pub amplification: f64,
    pub succeeded: u64,
}

fn config(seed: u64, brownout: bool) -> SupervisorConfig {
    SupervisorConfig {
        timeout: Some(Duration::from_secs(1)),
        seed: Some(seed),
        retry: RetryConfig::exponential(3, Duration::from_millis(50))
            .full_jitter()
            .budget(BudgetConfig {
                ratio: 0.1,
                min_per_second: 10,
                window: Duration::from_secs(10),
                ..BudgetConfig::default()
            }),
        breaker: if brownout {
            // Trips on an outage, not on a brownout.
            BreakerConfig {
                consecutive_failures: None,
                failure_rate_threshold: Some(0.95),
                window: SlidingWindow::Count { size: 50 },
                minimum_calls: 20,
                ..BreakerConfig::default()
            }
        } else {
            BreakerConfig {
                open_duration: OpenDuration::exponential(
                    Duration::from_secs(2),
                    Duration::from_secs(16),
                    2.0,
                ),
                ..BreakerConfig::consecutive(5)
            }
        },
        ..SupervisorConfig::default()
    }
}

/// Runs `scenario` with (`fleet`) or without a shared quota and budget.
pub fn run(scenario: &'static str, fleet: bool, quick: bool, seed: u64) -> Figures {
    let brownout = scenario == "fleet_brownout";
    let (per_replica, trouble_from, trouble_for, tail) = if quick {
        (5.0, 5, 10, 5)
    } else {
        (5.0, 10, 30, 10)
    };
    let trouble = Trouble {
        from: Duration::from_secs(trouble_from),
        until: Duration::from_secs(trouble_from + trouble_for),
        failing: if brownout { 0.5 } else { 1.0 },
    };
    let total = Duration::from_secs(trouble_from + trouble_for + tail);
    actix::System::new().block_on(async move {
        tokio::time::pause();
        let store = Arc::new(MemoryStore::new());
        let steady_rate = per_replica * REPLICAS as f64;
        let replicas: Vec<ServiceHandle> = (0..REPLICAS)
            .map(|i| {
                let mut config = config(seed * 1_000 + i as u64, brownout);
                let mut builder = ServiceSupervisor::builder("fleet-dependency");
                if fleet {
                    // The fleet's quota: 10 % above its steady load.
                    config.rate_limit = Some(
                        RateLimitConfig::per_second(steady_rate * 1.1)
                            .burst((steady_rate * 0.11) as u32)
                            .max_wait(Duration::from_millis(10)),
                    );
                    config.fleet = Some({
                        let mut fleet = FleetConfig::default().key("dependency");
                        fleet.expected_replicas = REPLICAS as u32;
                        fleet
                    });
                    builder = builder.fleet_store(Arc::clone(&store) as Arc<dyn FleetStore>);
                }
                builder.config(config).start().expect("valid configuration")
            })
            .collect();
        let dependency = Arc::new(Dependency {
            start: Instant::now(),
            trouble,
            attempts: Mutex::new(Vec::new()),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        });
        let calls = Arc::new(AtomicU64::new(0));
        let calls_in_trouble = Arc::new(AtomicU64::new(0));
        let succeeded = Arc::new(AtomicU64::new(0));
        let mut callers = Vec::new();
        for (i, replica) in replicas.iter().enumerate() {
            let (replica, dependency) = (replica.clone(), Arc::clone(&dependency));
            let (calls, calls_in_trouble, succeeded) = (
                Arc::clone(&calls),
                Arc::clone(&calls_in_trouble),
                Arc::clone(&succeeded),
            );
            callers.push(tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(seed ^ (i as u64 * 7919));
                let start = dependency.start;
                let mut inflight = Vec::new();
                loop {
                    // Poisson arrivals at `per_replica` a second.
                    let gap = -rng.random::<f64>().max(1e-9).ln() / per_replica;
                    tokio::time::sleep(Duration::from_secs_f64(gap)).await;
                    let at = start.elapsed();
                    if at >= total {
                        break;
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    if at >= trouble.from && at < trouble.until {
                        calls_in_trouble.fetch_add(1, Ordering::Relaxed);
                    }
                    let (replica, dependency, succeeded) = (
                        replica.clone(),
                        Arc::clone(&dependency),
                        Arc::clone(&succeeded),
                    );
                    inflight.push(tokio::spawn(async move {
                        let answer = replica.call(|| dependency.attempt()).await;
                        if answer.is_ok() {
                            succeeded.fetch_add(1, Ordering::Relaxed);
                        }
                    }));
                }
                for call in inflight {
                    let _ = call.await;
                }
            }));
        }
        for caller in callers {
            caller.await.expect("caller");
        }
        let attempts = dependency.attempts.lock().unwrap().clone();
        let per_second = 1_000 / BUCKET.as_millis() as usize;
        let sum = |from: usize, to: usize| -> u64 {
            attempts
                .iter()
                .skip(from)
                .take(to.saturating_sub(from))
                .sum()
        };
        let (from, until) = (
            trouble_from as usize * per_second,
            (trouble_from + trouble_for) as usize * per_second,
        );
        let steady = sum(per_second, from) as f64 / (trouble_from - 1) as f64;
        let first_after = sum(until, until + per_second) as f64;
        let peak_after = (until..attempts.len().saturating_sub(per_second))
            .map(|b| sum(b, b + per_second))
            .max()
            .unwrap_or(0) as f64;
        let during_buckets =
            &attempts[(from + per_second).min(attempts.len())..until.min(attempts.len())];
        let during_total: u64 = during_buckets.iter().sum();
        let mean = during_total as f64 / during_buckets.len().max(1) as f64;
        let peak = during_buckets.iter().copied().max().unwrap_or(0) as f64;
        Figures {
            scenario,
            mode: if fleet {
                "fleet (shared quota and budget)"
            } else {
                "per replica"
            },
            calls: calls.load(Ordering::Relaxed),
            attempts: attempts.iter().sum(),
            steady,
            first_second_after: first_after / steady,
            peak_second_after: peak_after / steady,
            during: during_total as f64 / (trouble_for - 1) as f64,
            peak_bucket_over_mean: if mean > 0.0 { peak / mean } else { 0.0 },
            amplification: sum(from, until) as f64
                / calls_in_trouble.load(Ordering::Relaxed).max(1) as f64,
            succeeded: succeeded.load(Ordering::Relaxed),
        }
    })
}

/// Prints the fleet scenarios' table.
pub fn print(rows: &[Figures]) {
    println!("\n## fleet: {REPLICAS} replicas, one dependency (simulated clock)\n");
    println!("| scenario | mode | calls | attempts | steady attempts/s | 1st s after / steady | busiest s after / steady | attempts/s during | peak 100 ms / mean during | amplification during | succeeded |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.3} | {} |",
            f.scenario,
            f.mode,
            f.calls,
            f.attempts,
            f.steady,
            f.first_second_after,
            f.peak_second_after,
            f.during,
            f.peak_bucket_over_mean,
            f.amplification,
            f.succeeded
        );
    }
}
