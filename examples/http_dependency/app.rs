//! The pieces of the HTTP example: a small HTTP server on loopback whose behaviour can be
//! switched (healthy, slow, failing with 5xx, rate-limiting with 429 + `Retry-After`, down),
//! and a `reqwest` client that calls it through a warden supervisor with a classifier.
//! `tests/integration/http_dependency.rs` runs both on a real socket and counts the requests that reach
//! the server in each mode.

// The test that includes this file does not use every item.
#![allow(dead_code)]

#[path = "../common/timeline.rs"]
pub mod timeline;

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use warden::prelude::*;

use timeline::{Answer, AttemptGuard, Event, Timeline};

/// Header with the retry-after hint in milliseconds (as Azure and others send it next to the
/// standard `Retry-After`, which only has whole seconds).
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

// ---------------------------------------------------------------------------------------------
// The server

/// How the server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `GET /items/{n}` answers 200 with a small JSON body; anything else 404.
    Healthy,
    /// Like healthy, after this delay.
    Slow(Duration),
    /// Every request answered with this status (a 5xx).
    Failing(u16),
    /// At most one request per `every`; the others get 429 with the time left as
    /// `Retry-After` (whole seconds, rounded up) and `retry-after-ms`. Entering this mode
    /// starts a period, so the first request is limited.
    RateLimited {
        /// One request allowed per this period.
        every: Duration,
    },
    /// The listener is closed and open connections are dropped: connection refused.
    Down,
    /// A brownout: a seeded share of requests (`failing_per_mille` in 1 000, drawn from the
    /// request's number and `seed`, so a run is reproducible) gets 503, the others are served.
    Brownout {
        /// Requests failed, per 1 000.
        failing_per_mille: u32,
        /// Seed of the draw.
        seed: u64,
    },
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Healthy => write!(f, "healthy"),
            Mode::Slow(delay) => write!(f, "slow: answers after {}", timeline::human(*delay)),
            Mode::Failing(code) => write!(f, "failing: every request gets {}", status_text(*code)),
            Mode::RateLimited { every } => write!(
                f,
                "rate-limiting: 1 request per {}, others get 429 + Retry-After",
                timeline::human(*every)
            ),
            Mode::Down => write!(f, "down: listener closed, connections refused"),
            Mode::Brownout {
                failing_per_mille, ..
            } => write!(f, "brownout: {failing_per_mille} in 1000 requests get 503"),
        }
    }
}

struct Shared {
    mode: Mutex<Mode>,
    requests: AtomicU32,
    next_allowed: Mutex<Instant>,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The accept loop and every connection task, so that going down drops them all.
#[derive(Default)]
struct Tasks {
    accept: Option<JoinHandle<()>>,
    connections: Vec<AbortHandle>,
}

impl Tasks {
    /// Aborts everything; returns the accept loop, to wait until its listener is closed.
    fn abort_all(&mut self) -> Option<JoinHandle<()>> {
        for task in self.connections.drain(..) {
            task.abort();
        }
        let accept = self.accept.take()?;
        accept.abort();
        Some(accept)
    }
}

/// An HTTP/1 server on 127.0.0.1 whose [`Mode`] can be switched while it runs.
pub struct FaultyServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Tasks>>,
}

impl fmt::Debug for FaultyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyServer")
            .field("addr", &self.addr)
            .field("mode", &self.shared.mode())
            .finish_non_exhaustive()
    }
}

impl FaultyServer {
    /// Binds 127.0.0.1 on a free port and starts serving, healthy. Needs a tokio runtime.
    pub async fn start() -> io::Result<FaultyServer> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let server = FaultyServer {
            addr: listener.local_addr()?,
            shared: Arc::new(Shared {
                mode: Mutex::new(Mode::Healthy),
                requests: AtomicU32::new(0),
                next_allowed: Mutex::new(Instant::now()),
            }),
            tasks: Arc::default(),
        };
        server.serve(listener);
        Ok(server)
    }

    fn serve(&self, listener: TcpListener) {
        let shared = Arc::clone(&self.shared);
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |request| respond(Arc::clone(&shared), request));
                    // A client that gives up (timeout) closes the connection: not our error.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                tasks.connections.retain(|task| !task.is_finished());
                tasks.connections.push(connection.abort_handle());
            }
        });
        self.lock_tasks().accept = Some(accept);
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The address it listens on (kept across down and up).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// Switches the behaviour. Going down closes the listener and drops every connection;
    /// coming back binds the same port again.
    pub async fn set_mode(&self, mode: Mode) -> io::Result<()> {
        let was = std::mem::replace(
            &mut *self
                .shared
                .mode
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            mode,
        );
        if let Mode::RateLimited { every } = mode {
            *self
                .shared
                .next_allowed
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now() + every;
        }
        match (was == Mode::Down, mode == Mode::Down) {
            (false, true) => {
                let accept = self.lock_tasks().abort_all();
                if let Some(accept) = accept {
                    // Resolves once the task is dropped, and the listener with it: from here
                    // on, connecting is refused.
                    let _ = accept.await;
                }
            }
            (true, false) => self.serve(TcpListener::bind(self.addr).await?),
            _ => {}
        }
        Ok(())
    }

    /// Requests received since the start.
    pub fn requests(&self) -> u32 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests received since the last call (or the start), and starts counting again.
    pub fn take_requests(&self) -> u32 {
        self.shared.requests.swap(0, Ordering::SeqCst)
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        // Dropped, not awaited: the tasks end at the runtime's next turn.
        let _ = self.lock_tasks().abort_all();
    }
}

type Body = Full<Bytes>;

async fn respond(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let number = shared.requests.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_string();
    let response = match shared.mode() {
        Mode::Brownout {
            failing_per_mille,
            seed,
        } => {
            if splitmix64(seed ^ u64::from(number)) % 1000 < u64::from(failing_per_mille) {
                plain(503, "upstream failure")
            } else {
                item(&path)
            }
        }
        Mode::Healthy | Mode::Down => item(&path),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            item(&path)
        }
        Mode::Failing(code) => plain(code, "upstream failure"),
        Mode::RateLimited { every } => {
            let now = Instant::now();
            let mut next = shared
                .next_allowed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if now >= *next {
                *next = now + every;
                item(&path)
            } else {
                too_many_requests(*next - now)
            }
        }
    };
    Ok(response)
}

/// A well-mixed 64-bit hash (SplitMix64's finaliser): a seeded, reproducible draw per request.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn item(path: &str) -> Response<Body> {
    match path
        .strip_prefix("/items/")
        .and_then(|id| id.parse::<u32>().ok())
    {
        Some(id) => {
            let mut response = Response::new(Body::from(format!(
                "{{\"id\":{id},\"name\":\"item {id}\"}}"
            )));
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            response
        }
        None => plain(404, "no such item"),
    }
}

fn plain(code: u16, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

fn too_many_requests(wait: Duration) -> Response<Body> {
    let mut response = plain(429, "slow down");
    let millis = wait.as_nanos().div_ceil(1_000_000);
    let secs = millis.div_ceil(1000);
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(secs as u64));
    headers.insert(RETRY_AFTER_MS, HeaderValue::from(millis as u64));
    response
}

/// `503 Service Unavailable`.
pub fn status_text(code: u16) -> String {
    let reason = StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{code} {reason}").trim_end().to_string()
}

// ---------------------------------------------------------------------------------------------
// The client

/// Why one HTTP attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The server answered with a non-success status.
    Status {
        /// The status code.
        code: u16,
        /// The server's `retry-after-ms` or `Retry-After` (seconds) hint.
        retry_after: Option<Duration>,
    },
    /// No connection: refused, unreachable.
    Connect(String),
    /// The connection broke during the exchange.
    Network(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status {
                code,
                retry_after: Some(hint),
            } => write!(
                f,
                "{}, retry after {}",
                status_text(*code),
                timeline::human(*hint)
            ),
            HttpError::Status { code, .. } => f.write_str(&status_text(*code)),
            HttpError::Connect(what) | HttpError::Network(what) => f.write_str(what),
        }
    }
}

/// The classifier: what warden should do with each error.
///
/// - 429, and 503 with a hint: retry, after the server's hint (`with_retry_after`).
/// - other 5xx: retry (transient), and count it against the breaker.
/// - other 4xx: the request was wrong; neither retried nor held against the dependency.
/// - connection refused, broken connection: transient; enough in a row open the breaker.
pub fn classify(error: &HttpError) -> ErrorClass {
    match error {
        HttpError::Status {
            code: 429 | 503,
            retry_after: Some(hint),
        } => ErrorClass::transient().with_retry_after(*hint),
        HttpError::Status { code, .. } if *code == 429 || *code >= 500 => ErrorClass::transient(),
        HttpError::Status { .. } => ErrorClass::ignored(),
        HttpError::Connect(_) | HttpError::Network(_) => ErrorClass::transient(),
    }
}

/// The server's hint: `retry-after-ms` if present, else `Retry-After` in whole seconds (an
/// HTTP date is not understood and gives no hint).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    number(RETRY_AFTER_MS)
        .map(Duration::from_millis)
        .or_else(|| number("retry-after").map(Duration::from_secs))
}

fn http_error(error: &reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::ConnectionRefused {
                return HttpError::Connect("connection refused".to_string());
            }
        }
        source = cause.source();
    }
    let mut innermost: &(dyn std::error::Error + 'static) = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    if error.is_connect() {
        HttpError::Connect(format!("cannot connect: {innermost}"))
    } else {
        HttpError::Network(format!("connection broken: {innermost}"))
    }
}

/// Timings of the client's supervisor.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// First retry delay (exponential backoff, doubling).
    pub backoff: Duration,
    /// Longest wait before a retry, including a server's hint.
    pub max_delay: Duration,
    /// How long the breaker stays open.
    pub open_for: Duration,
}

/// The supervisor's configuration for the items API.
pub fn supervisor_config(timings: Timings) -> SupervisorConfig {
    SupervisorConfig {
        timeout: Some(timings.timeout),
        retry: RetryConfig::exponential(3, timings.backoff).max_delay(timings.max_delay),
        breaker: BreakerConfig::consecutive(5).open_for(timings.open_for),
        seed: Some(1),
        ..SupervisorConfig::default()
    }
}

/// One call's result, as the program sees it.
#[derive(Debug)]
pub struct Fetched {
    /// The call's number.
    pub call: u32,
    /// The body, or why there is none.
    pub result: Result<String, CallError<HttpError>>,
    /// The answer as recorded on the timeline.
    pub answer: Answer,
}

/// A `reqwest` client for the items API, every request through the supervisor.
pub struct ItemsClient {
    http: reqwest::Client,
    base: String,
    handle: ServiceHandle,
    timeline: Timeline,
    calls: AtomicU32,
}

impl fmt::Debug for ItemsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemsClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ItemsClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) through `handle`, recording on
    /// `timeline`.
    pub fn new(base: String, handle: ServiceHandle, timeline: Timeline) -> Self {
        let http = reqwest::Client::builder()
            // Loopback only: never through a proxy from the environment.
            .no_proxy()
            // A fresh connection per request, so "down" is seen at once as connection
            // refused rather than as a reset on a pooled connection.
            .pool_max_idle_per_host(0)
            .build()
            .expect("a plain HTTP client builds");
        ItemsClient {
            http,
            base,
            handle,
            timeline,
            calls: AtomicU32::new(0),
        }
    }

    /// The supervisor's handle.
    pub fn handle(&self) -> &ServiceHandle {
        &self.handle
    }

    /// `GET {base}{path}` through the supervisor; records every attempt and the answer.
    pub async fn get(&self, path: &str) -> Fetched {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let attempts = Arc::new(AtomicU32::new(0));
        let operation = {
            let http = self.http.clone();
            let url = format!("{}{path}", self.base);
            let path = path.to_string();
            let timeline = self.timeline.clone();
            let service = self.handle.name().to_string();
            let attempts = Arc::clone(&attempts);
            move || {
                let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                let request = http.get(&url);
                let mut guard = AttemptGuard::start(&timeline, &service, call, attempt);
                let path = path.clone();
                async move {
                    let result = fetch(request).await;
                    let detail = match &result {
                        Ok(_) => format!("GET {path} → 200 OK"),
                        Err(error) => format!("GET {path} → {error}"),
                    };
                    guard.finished(result.is_ok(), detail);
                    result
                }
            }
        };
        let started = Instant::now();
        let result = self
            .handle
            .send(Call::new(operation).classify(classify))
            .await;
        let took = started.elapsed();
        self.timeline.sync(&self.handle).await;
        let answer = Answer::of(&result, attempts.load(Ordering::SeqCst), took);
        self.timeline.push(
            self.handle.name(),
            Event::Answered {
                call,
                answer: answer.clone(),
            },
        );
        Fetched {
            call,
            result,
            answer,
        }
    }
}

/// One HTTP exchange: the body on 2xx, else the status with the server's hint.
async fn fetch(request: reqwest::RequestBuilder) -> Result<String, HttpError> {
    let response = request.send().await.map_err(|e| http_error(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(HttpError::Status {
            code: status.as_u16(),
            retry_after: retry_after(response.headers()),
        });
    }
    response.text().await.map_err(|e| http_error(&e))
}
