//! The criticality scenario over real HTTP, from a cold start: a loopback axum server with room
//! for 40 requests at a time (40 ms each: 1 000/s; the rest wait in its queue) is offered twice
//! that for 3 s, 20 % critical, 50 % default, 30 % sheddable, through a warden bulkhead of 40
//! with reserves (0.3 for critical calls, 0.2 more for default ones: over HTTP a request holds
//! its slot longer than the 40 ms of work, so critical calls need more room than in the
//! simulation's 0.2), and through the same bulkhead without them. Real sockets mean real
//! time: the goodputs are printed (BENCHMARKS.md, "Criticality") and only what holds whatever
//! the timing is asserted: with reserves critical calls get through where sheddable ones do
//! not, and first come they all fare alike.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::{extract::State, routing::get, Router};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use warden::criticality::CriticalityConfig;
use warden::messages::Call;
use warden::prelude::*;
use warden::Criticality;

const WORKERS: usize = 40;
const SERVICE: Duration = Duration::from_millis(40);
const RATE: f64 = 2.0 * WORKERS as f64 / 0.040;
const RUN: Duration = Duration::from_secs(3);

async fn work(State(workers): State<Arc<Semaphore>>) -> &'static str {
    let _worker = workers.acquire().await.expect("open");
    tokio::time::sleep(SERVICE).await;
    "ok"
}

async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/work", get(work))
        .with_state(Arc::new(Semaphore::new(WORKERS)));
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Offers the load through `svc`; goodput by class (critical, default, sheddable).
async fn offer(svc: ServiceHandle, url: String) -> [f64; 3] {
    let client = reqwest::Client::new();
    let offered: Arc<[AtomicU64; 3]> = Arc::default();
    let ok: Arc<[AtomicU64; 3]> = Arc::default();
    let mut rng = SmallRng::seed_from_u64(20);
    let start = tokio::time::Instant::now();
    let mut next = start;
    let mut calls = Vec::new();
    while start.elapsed() < RUN {
        tokio::time::sleep_until(next).await;
        // Every arrival due by now (the timer ticks in milliseconds).
        while next <= tokio::time::Instant::now() {
            next += Duration::from_secs_f64(-rng.random::<f64>().max(1e-12).ln() / RATE);
            let draw: f64 = rng.random();
            let (class, criticality) = match draw {
                d if d < 0.2 => (0, Criticality::Critical),
                d if d < 0.7 => (1, Criticality::Default),
                _ => (2, Criticality::Sheddable),
            };
            offered[class].fetch_add(1, Ordering::Relaxed);
            let (svc, client, url, ok) = (svc.clone(), client.clone(), url.clone(), ok.clone());
            calls.push(tokio::spawn(async move {
                let request = move || {
                    let get = client.get(&url);
                    async move { get.send().await?.error_for_status() }
                };
                let sent = svc.send(Call::new(request).criticality(criticality));
                if sent.await.is_ok() {
                    ok[class].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    for call in calls {
        call.await.unwrap();
    }
    std::array::from_fn(|c| {
        ok[c].load(Ordering::Relaxed) as f64 / offered[c].load(Ordering::Relaxed).max(1) as f64
    })
}

fn supervisor(name: &str, criticality: Option<CriticalityConfig>) -> ServiceHandle {
    let config = SupervisorConfig {
        timeout: Some(Duration::from_millis(400)),
        retry: RetryConfig::off(),
        breaker: BreakerConfig::consecutive(1_000_000),
        max_in_flight: WORKERS as u32,
        criticality,
        seed: Some(20),
        ..SupervisorConfig::default()
    };
    ServiceSupervisor::builder(name)
        .config(config)
        .start()
        .expect("valid configuration")
}

#[actix::test]
async fn over_loopback_http_critical_calls_get_through_an_overload_and_sheddable_ones_go_first() {
    let addr = server().await;
    let url = format!("http://{addr}/work");
    let reserves = CriticalityConfig::default()
        .reserved_for_critical(0.3)
        .reserved_for_default(0.2);
    let with = offer(supervisor("http-reserved", Some(reserves)), url.clone()).await;
    let first_come = offer(supervisor("http-first-come", None), url).await;
    println!(
        "criticality over loopback HTTP, {RUN:?} at {RATE}/s against room for {WORKERS}: \
         with reserves critical {:.3} default {:.3} sheddable {:.3}; \
         first come critical {:.3} default {:.3} sheddable {:.3}",
        with[0], with[1], with[2], first_come[0], first_come[1], first_come[2]
    );
    assert!(
        with[0] > 0.95,
        "critical goodput with reserves {:.3}",
        with[0]
    );
    assert!(
        with[2] < 0.5 * with[0] && with[1] < with[0],
        "the cut falls on sheddable calls first: {with:?}"
    );
    // Without reserves, the classes fare alike (within timing noise).
    let spread = first_come.iter().copied().fold(f64::NAN, f64::max)
        - first_come.iter().copied().fold(f64::NAN, f64::min);
    assert!(spread < 0.15, "first come, classes alike: {first_come:?}");
}
