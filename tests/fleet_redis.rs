//! A fleet of real processes sharing one real Redis (cargo feature `redis`; needs
//! `redis-server` on the PATH, which `.ci/run` installs):
//!
//! - 4 processes offering 300 calls/s each against a shared 100/s admit 100/s ± 3 % together;
//! - `redis-server` killed mid-run: every process goes on at its local share (25/s) within
//!   one store timeout, no call lost or hung; restarted: shared again;
//! - a 50 % brownout: the 4 processes' retries together stay within one fleet budget.
//!
//! The test binary is its own child: run with `WARDEN_FLEET_CHILD` set, the `child` test is
//! one replica and prints its tallies as one JSON line. Wall-clock time is the point here
//! (processes, a server, a kill), so this runs on the real clock; the assertions allow for
//! a loaded 2-core machine.
//!
//! `cargo test --features redis --test fleet_redis -- --test-threads=1 --nocapture`

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use warden::fleet::FleetPart;
use warden::messages::EventKind;
use warden::prelude::*;

const CHILD: &str = "WARDEN_FLEET_CHILD";

/// What one replica is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    redis: String,
    key: String,
    /// Unix time (ms) at which to start offering calls, the same for every replica.
    start_at_ms: u64,
    seconds: u64,
    per_second: u32,
    /// Budget mode: a 50 % brownout with retries, no rate limit.
    brownout: bool,
    seed: u64,
}

/// What one replica reports.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Tally {
    offered: u64,
    answered: u64,
    /// Admitted calls by second of the run.
    admitted: Vec<u64>,
    rate_limited: u64,
    max_latency_ms: f64,
    retries: u64,
    calls: u64,
    /// Seconds into the run of each fallback (false) and return (true).
    fleet_events: Vec<(f64, bool)>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One replica (only when run as a child).
#[test]
fn child() {
    let Ok(plan) = std::env::var(CHILD) else {
        return;
    };
    let plan: Plan = serde_json::from_str(&plan).unwrap();
    let tally = actix::System::new().block_on(replica(plan));
    println!("\nFLEET_RESULT {}", serde_json::to_string(&tally).unwrap());
}

async fn replica(plan: Plan) -> Tally {
    let mut fleet = FleetConfig::redis(&plan.redis, 4)
        .key(&plan.key)
        .timeout(Duration::from_millis(50))
        .reconnect(Duration::from_millis(100), Duration::from_millis(500));
    let mut config = SupervisorConfig {
        timeout: Some(Duration::from_secs(1)),
        seed: Some(plan.seed),
        ..SupervisorConfig::default()
    };
    // A breaker that never trips here: the brownout is for the budget to meet.
    config.breaker = BreakerConfig::consecutive(1_000_000);
    if plan.brownout {
        fleet = fleet.quota(false);
        config.retry = RetryConfig::constant(3, Duration::from_millis(1)).budget(BudgetConfig {
            ratio: 0.1,
            min_per_second: 5,
            window: Duration::from_secs(10),
            ..BudgetConfig::default()
        });
    } else {
        fleet = fleet.budget(false);
        config.retry = RetryConfig::off();
        config.rate_limit = Some(
            RateLimitConfig::per_second(100.0)
                .burst(10)
                .max_wait(Duration::from_millis(20)),
        );
    }
    config.fleet = Some(fleet);
    let service = ServiceSupervisor::builder("fleet-api")
        .config(config)
        .start()
        .expect("valid configuration");
    let (events, mut received) = tokio::sync::mpsc::channel(256);
    service.subscribe(events).await.unwrap();

    let wait = plan.start_at_ms.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let start = tokio::time::Instant::now();
    let tally = Arc::new(Mutex::new(Tally {
        admitted: vec![0; plan.seconds as usize + 1],
        ..Tally::default()
    }));
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / plan.per_second);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut calls = Vec::new();
    let mut n: u64 = 0;
    while start.elapsed() < Duration::from_secs(plan.seconds) {
        ticks.tick().await;
        n += 1;
        let (service, tally) = (service.clone(), Arc::clone(&tally));
        // A 50 % brownout: every other first attempt fails (its retries succeed half the time).
        let fails = plan.brownout && n.is_multiple_of(2);
        calls.push(tokio::spawn(async move {
            let began = tokio::time::Instant::now();
            let attempt = std::sync::atomic::AtomicU32::new(0);
            let answer = service
                .call(|| {
                    let k = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let fail = fails && (k == 0 || (n / 2 + u64::from(k)).is_multiple_of(2));
                    async move {
                        if fail {
                            Err("brownout")
                        } else {
                            Ok(())
                        }
                    }
                })
                .await;
            let latency = began.elapsed();
            let second = (began - start).as_secs() as usize;
            let mut tally = tally.lock().unwrap();
            tally.answered += 1;
            tally.max_latency_ms = tally.max_latency_ms.max(latency.as_secs_f64() * 1e3);
            match answer {
                Ok(()) => {
                    if let Some(slot) = tally.admitted.get_mut(second) {
                        *slot += 1;
                    }
                }
                Err(CallError::RateLimited { .. }) => tally.rate_limited += 1,
                Err(_) => {}
            }
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    let counts = service.counts().await.unwrap();
    let mut tally = Arc::try_unwrap(tally).unwrap().into_inner().unwrap();
    tally.offered = n;
    tally.retries = counts.retries;
    tally.calls = n;
    while let Ok(event) = received.try_recv() {
        let at = event
            .at
            .saturating_duration_since(start.into_std())
            .as_secs_f64();
        match event.kind {
            EventKind::FleetFallback { part } | EventKind::FleetRestored { part } => {
                let restored = matches!(event.kind, EventKind::FleetRestored { .. });
                let expected = if plan.brownout {
                    FleetPart::Budget
                } else {
                    FleetPart::Quota
                };
                assert_eq!(part, expected);
                tally.fleet_events.push((at, restored));
            }
            _ => {}
        }
    }
    tally
}

/// A `redis-server` of the test's own, on a loopback port.
struct Redis {
    port: u16,
    process: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            port,
            process: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn restart(&mut self) {
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (apt-get install -y redis-server)");
        self.process = Some(process);
        // Ready once it accepts connections.
        for _ in 0..500 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
            process.wait().unwrap();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `replicas` children on `plan` (each with its own seed), starting 1.5 s from now.
fn spawn_replicas(replicas: u64, mut plan: Plan) -> (Vec<Child>, u64) {
    plan.start_at_ms = unix_ms() + 1_500;
    let children = (0..replicas)
        .map(|i| {
            plan.seed = 100 + i;
            Command::new(std::env::current_exe().unwrap())
                .args(["child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD, serde_json::to_string(&plan).unwrap())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    (children, plan.start_at_ms)
}

fn collect(children: Vec<Child>) -> Vec<Tally> {
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "a replica failed");
            let stdout = String::from_utf8(output.stdout).unwrap();
            let line = stdout
                .lines()
                .find_map(|line| line.split_once("FLEET_RESULT ").map(|(_, json)| json))
                .unwrap_or_else(|| panic!("no result in {stdout}"));
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

fn plan(redis: &Redis, key: &str, seconds: u64, per_second: u32, brownout: bool) -> Plan {
    Plan {
        redis: redis.url(),
        key: key.to_string(),
        start_at_ms: 0,
        seconds,
        per_second,
        brownout,
        seed: 0,
    }
}

/// The parent tests run one at a time (processes and timing).
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn four_processes_share_one_quota() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let redis = Redis::start();
    let (children, _) = spawn_replicas(4, plan(&redis, "shared", 10, 300, false));
    let tallies = collect(children);
    let per_process: Vec<u64> = tallies.iter().map(|t| t.admitted.iter().sum()).collect();
    let total: u64 = per_process.iter().sum();
    println!(
        "shared quota: 4 × 300/s offered for 10 s against 100/s: admitted {total} {per_process:?}"
    );
    for tally in &tallies {
        assert_eq!(tally.answered, tally.offered, "every call answered");
    }
    // 1 000 over 10 s, and the burst of 10.
    assert!(
        (970..=1_040).contains(&total),
        "admitted {total}, want 1 000 ± 3 %"
    );
}

#[test]
fn a_killed_redis_leaves_every_process_on_its_share_and_a_restarted_one_shares_again() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut redis = Redis::start();
    let (children, start_at_ms) = spawn_replicas(4, plan(&redis, "outage", 10, 300, false));
    let at = |s: u64| Duration::from_millis((start_at_ms + s * 1_000).saturating_sub(unix_ms()));
    std::thread::sleep(at(3));
    redis.kill();
    std::thread::sleep(at(6));
    redis.restart();
    let tallies = collect(children);
    let seconds = |from: usize, to: usize| -> u64 {
        tallies
            .iter()
            .map(|t| t.admitted[from..to].iter().sum::<u64>())
            .sum()
    };
    let (before, outage, after) = (seconds(0, 3), seconds(4, 6), seconds(8, 10));
    println!(
        "outage: admitted {before} in 0-3 s (shared), {outage} in 4-6 s (redis down), {after} in 8-10 s (back); max latency {:?} ms",
        tallies.iter().map(|t| t.max_latency_ms.round()).collect::<Vec<_>>()
    );
    for (i, tally) in tallies.iter().enumerate() {
        assert_eq!(
            tally.answered, tally.offered,
            "replica {i}: every call answered"
        );
        // No call waits beyond its max_wait (20 ms) and a store timeout (50 ms), with room
        // for a loaded machine.
        assert!(
            tally.max_latency_ms < 500.0,
            "replica {i}: {} ms",
            tally.max_latency_ms
        );
        let events: Vec<bool> = tally.fleet_events.iter().map(|e| e.1).collect();
        assert_eq!(
            events.first(),
            Some(&false),
            "replica {i} fell back: {:?}",
            tally.fleet_events
        );
        assert_eq!(
            events.last(),
            Some(&true),
            "replica {i} came back: {:?}",
            tally.fleet_events
        );
        // It fell back within a store timeout (and its lease in hand) of the kill.
        let fell = tally.fleet_events[0].0;
        assert!(
            (2.9..3.6).contains(&fell),
            "replica {i} fell back at {fell} s"
        );
    }
    // Shared: 100/s; on the local shares: 4 × 25/s; shared again: 100/s.
    assert!((280..=330).contains(&before), "{before}");
    assert!((180..=220).contains(&outage), "{outage}");
    assert!((180..=220).contains(&after), "{after}");
}

#[test]
fn four_processes_in_a_brownout_stay_within_one_fleet_budget() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let redis = Redis::start();
    let (children, _) = spawn_replicas(4, plan(&redis, "budget", 5, 100, true));
    let tallies = collect(children);
    let calls: u64 = tallies.iter().map(|t| t.calls).sum();
    let retries: u64 = tallies.iter().map(|t| t.retries).sum();
    // One floor (5/s over the 10 s window) and 10 % of the fleet's calls; four budgets of
    // their own would allow four floors.
    let fleet = 50 + calls / 10;
    let per_replica = 4 * 50 + calls / 10;
    println!("brownout: {calls} calls, {retries} retries; fleet budget {fleet}, per-replica budgets {per_replica}");
    assert!(
        retries <= fleet + fleet / 20,
        "{retries} retries > fleet budget {fleet} + 5 %"
    );
    assert!(
        retries >= fleet * 8 / 10,
        "{retries} retries: the budget was used"
    );
}

/// The status page shows a replica on its local share while Redis is away, and shared again
/// once it answers.
#[test]
fn the_status_page_shows_a_replica_falling_back_and_back() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    actix::System::new().block_on(status_page_fallback());
}

async fn status_page_fallback() {
    // A port with no server yet.
    let mut redis = Redis {
        port: TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        process: None,
    };
    let registry = RegistryHandle::start().unwrap();
    let mut config = SupervisorConfig {
        rate_limit: Some(RateLimitConfig::per_second(100.0)),
        ..SupervisorConfig::default()
    };
    config.fleet = Some(
        FleetConfig::redis(redis.url(), 2)
            .budget(false)
            .reconnect(Duration::from_millis(50), Duration::from_millis(200)),
    );
    let api = registry.spawn("status-fleet", config).await.unwrap();
    let page = warden::status::StatusPage::start(
        registry.clone(),
        warden::status::StatusConfig::default().sample_every(None),
    )
    .await
    .unwrap();
    let quota_shared = || async {
        let _ = api.call(|| async { Ok::<(), std::io::Error>(()) }).await;
        page.view().await.unwrap().services[0]
            .fleet
            .unwrap()
            .quota_shared
    };
    let mut waited = 0;
    while quota_shared().await != Some(false) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 100, "never fell back");
    }
    let html = warden::status::render_html(&page.view().await.unwrap());
    assert!(
        html.contains("fleet store away: quota on the local share"),
        "{html}"
    );

    redis.restart();
    let mut waited = 0;
    while quota_shared().await != Some(true) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 200, "never shared again");
    }
    let html = warden::status::render_html(&page.view().await.unwrap());
    assert!(html.contains("fleet: shared"), "{html}");
    assert_eq!(
        api.health().await.unwrap().fleet.unwrap().quota_shared,
        Some(true)
    );
}
