//! Cost per request of `warden::reqwest::WardenMiddleware`: a bare `reqwest` client against
//! the same client in a `reqwest-middleware` stack, with and without warden, one caller on a
//! current-thread tokio runtime, requests back to back.
//!
//! Group `reqwest_loopback`: a keep-alive GET to a hyper 1 server on 127.0.0.1 (its own
//! thread and runtime), body read:
//! - `bare`: `reqwest::Client` alone;
//! - `empty_stack`: `reqwest_middleware::ClientWithMiddleware` with no middleware;
//! - `warden_keyed`: `WardenMiddleware::keyed` (the host's supervisor in a `KeyedHandle`);
//! - `warden_service`: `WardenMiddleware::service` (one `ServiceHandle`);
//! - `warden_call`: no middleware, `ServiceHandle::call` around the bare client's request
//!   (what the same protection costs written by hand).
//!
//! Group `reqwest_in_process`: the same stacks ending in a middleware that answers a canned
//! `200` without sending anything, so the loopback round trip's noise (tens of µs) does not
//! hide warden's share: `canned` (that middleware alone), `warden_keyed`, `warden_service`,
//! `warden_service_no_header` (`without_deadline_header()`: what writing `grpc-timeout` costs).
//! `REQWEST_PROFILE=<id>:<n>` runs `n` requests of one of them and exits, for callgrind.
//!
//! Every supervisor: 5 s per-attempt timeout, 3 attempts with exponential backoff from 500 ms,
//! a breaker after 5 consecutive failures (as in `benches/shared/peer_stacks.rs`), started
//! from a plain tokio runtime (the shared background runtime hosts it).
//! Run: `cargo bench -p warden-comparisons --bench reqwest_middleware`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use http::Extensions;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use warden::prelude::*;
use warden::reqwest::WardenMiddleware;

#[path = "shared/http_server.rs"]
mod http_server;

const TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(500);
const TRIP_AFTER: u32 = 5;

fn criterion_config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config() -> SupervisorConfig {
    SupervisorConfig {
        timeout: Some(TIMEOUT),
        retry: RetryConfig::exponential(ATTEMPTS, BACKOFF),
        breaker: BreakerConfig::consecutive(TRIP_AFTER).open_for(Duration::from_secs(30)),
        ..SupervisorConfig::default()
    }
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

/// Answers `200` at once, without the network: the end of the `reqwest_in_process` stacks.
struct Canned;

#[async_trait::async_trait]
impl Middleware for Canned {
    async fn handle(
        &self,
        _request: reqwest::Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Ok(http::Response::new("ok").into())
    }
}

#[derive(Clone, Copy)]
enum Stack {
    Bare,
    Empty,
    Keyed,
    Service,
    /// `ServiceHandle::call` around the bare client (no middleware).
    Call,
    /// `Service`, sending no deadline header.
    ServiceNoHeader,
}

/// The middleware client of `stack` (`canned`: ending in [`Canned`]), built on `runtime`.
fn client(runtime: &tokio::runtime::Runtime, stack: Stack, canned: bool) -> ClientWithMiddleware {
    runtime.block_on(async {
        let mut builder = ClientBuilder::new(reqwest_client());
        match stack {
            Stack::Bare | Stack::Empty | Stack::Call => {}
            Stack::Keyed => {
                let registry = RegistryHandle::start().expect("registry");
                let hosts = registry
                    .spawn_keyed("bench-hosts", config())
                    .await
                    .expect("keyed service");
                builder = builder.with(WardenMiddleware::keyed(hosts));
            }
            Stack::Service | Stack::ServiceNoHeader => {
                let handle = ServiceSupervisor::builder("bench-api")
                    .config(config())
                    .start()
                    .expect("valid configuration");
                let middleware = WardenMiddleware::service(handle);
                builder = builder.with(match stack {
                    Stack::ServiceNoHeader => middleware.without_deadline_header(),
                    _ => middleware,
                });
            }
        }
        if canned {
            builder = builder.with(Canned);
        }
        builder.build()
    })
}

type Runner = Box<dyn FnMut(u64) -> Duration>;

fn loopback(stack: Stack, url: &str) -> Runner {
    let runtime = runtime();
    let url = reqwest::Url::parse(url).expect("url");
    match stack {
        Stack::Bare => {
            let client = reqwest_client();
            Box::new(move |n| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        let response = client.get(url.clone()).send().await.expect("answered");
                        black_box(response.bytes().await.expect("body"));
                    }
                    start.elapsed()
                })
            })
        }
        Stack::Call => {
            let client = reqwest_client();
            let handle = runtime.block_on(async {
                ServiceSupervisor::builder("bench-call")
                    .config(config())
                    .start()
                    .expect("valid configuration")
            });
            Box::new(move |n| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        let response: Result<_, CallError<reqwest::Error>> =
                            handle.call(|| client.get(url.clone()).send()).await;
                        black_box(response.expect("answered").bytes().await.expect("body"));
                    }
                    start.elapsed()
                })
            })
        }
        _ => {
            let client = client(&runtime, stack, false);
            Box::new(move |n| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        let response = client.get(url.clone()).send().await.expect("answered");
                        black_box(response.bytes().await.expect("body"));
                    }
                    start.elapsed()
                })
            })
        }
    }
}

fn in_process(stack: Stack) -> Runner {
    let runtime = runtime();
    let url = reqwest::Url::parse("http://127.0.0.1:9/").expect("url");
    let client = client(&runtime, stack, true);
    Box::new(move |n| {
        runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let response = client.get(url.clone()).send().await.expect("answered");
                black_box(response.status());
            }
            start.elapsed()
        })
    })
}

fn reqwest_loopback(c: &mut Criterion) {
    let url = format!("http://{}/", http_server::start_http_server());
    let mut group = c.benchmark_group("reqwest_loopback");
    for (id, stack) in [
        ("bare", Stack::Bare),
        ("empty_stack", Stack::Empty),
        ("warden_keyed", Stack::Keyed),
        ("warden_service", Stack::Service),
        ("warden_call", Stack::Call),
    ] {
        let mut run = loopback(stack, &url);
        group.bench_function(id, |b| b.iter_custom(&mut run));
    }
    group.finish();
}

const IN_PROCESS: &[(&str, Stack)] = &[
    ("canned", Stack::Empty),
    ("warden_keyed", Stack::Keyed),
    ("warden_service", Stack::Service),
    ("warden_service_no_header", Stack::ServiceNoHeader),
];

fn reqwest_in_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("reqwest_in_process");
    for &(id, stack) in IN_PROCESS {
        let mut run = in_process(stack);
        group.bench_function(id, |b| b.iter_custom(&mut run));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = reqwest_in_process, reqwest_loopback
}

/// `REQWEST_PROFILE=<in_process id>:<n>`: `n` requests of that stack and nothing else, for
/// `valgrind --tool=callgrind` (instruction counts do not depend on the machine's load).
fn profile(spec: &str) {
    let (id, n) = spec
        .split_once(':')
        .expect("REQWEST_PROFILE=<id>:<requests>");
    let n: u64 = n.parse().expect("a number of requests");
    let &(_, stack) = IN_PROCESS
        .iter()
        .find(|(name, _)| *name == id)
        .unwrap_or_else(|| panic!("no in-process stack {id:?}"));
    in_process(stack)(n);
}

fn main() {
    if let Ok(spec) = std::env::var("REQWEST_PROFILE") {
        return profile(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
