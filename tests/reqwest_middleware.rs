//! `warden::reqwest::WardenMiddleware` against loopback axum servers: retries of 5xx, 429's
//! `Retry-After`, methods that are not retried, 4xx that are not breaker failures, one breaker
//! per host, the deadline header, and a refused connection.
//!
//! Every server records each request it receives (when, with which deadline header), so the
//! tests count what reached the host rather than trusting the client. Timing assertions are
//! lower bounds the server observed (a `Retry-After: 1` gap) with generous upper bounds.
//!
//! `cargo test --features reqwest --test reqwest_middleware`

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::Extensions;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use warden::deadline::parse_grpc_timeout;
use warden::prelude::*;
use warden::reqwest::{
    host_key, CriticalityHeader, DeadlineHeader, Idempotent, WardenError, WardenMiddleware,
};
use warden::Criticality;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    at: Instant,
    headers: HeaderMap,
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    hits: HashMap<String, u32>,
}

/// A loopback server answering by path:
/// - `/ok`: 200 `ok`;
/// - `/status/{code}`: that status, always;
/// - `/flaky/{n}`: 503 for the first `n` requests of the path, then 200;
/// - `/busy/{secs}`: the first request 429 with `Retry-After: {secs}`, then 200;
/// - `/busy-date`: the first request 429 with `Retry-After` an HTTP-date 2 s ahead, then 200.
#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Server {
    async fn start() -> Server {
        let log = Arc::new(Mutex::new(Log::default()));
        let app = Router::new().fallback(answer).with_state(Arc::clone(&log));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, log }
    }

    fn url(&self, path: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    fn key(&self) -> String {
        host_key(&self.url("/"))
    }

    /// The requests received for `path`.
    fn seen(&self, path: &str) -> Vec<Seen> {
        let log = self.log.lock().unwrap();
        log.seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    fn hits(&self, path: &str) -> usize {
        self.seen(path).len()
    }
}

async fn answer(
    State(log): State<Arc<Mutex<Log>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let hit = {
        let mut log = log.lock().unwrap();
        log.seen.push(Seen {
            method,
            path: path.clone(),
            at: Instant::now(),
            headers,
        });
        let hits = log.hits.entry(path.clone()).or_default();
        *hits += 1;
        *hits
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["ok"] => (StatusCode::OK, "ok").into_response(),
        ["status", code] => StatusCode::from_u16(code.parse().unwrap())
            .unwrap()
            .into_response(),
        ["flaky", n] if hit <= n.parse().unwrap() => {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        ["flaky", _] => (StatusCode::OK, "ok").into_response(),
        ["busy", secs] if hit == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        ["busy-date"] if hit == 1 => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", at)]).into_response()
        }
        ["busy", _] | ["busy-date"] => (StatusCode::OK, "ok").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `attempts` attempts 10 ms apart (no budget: these tests count every retry), a breaker
/// tripping after `trip_after` consecutive failures and staying open a minute, 2 s per
/// attempt, hints up to 3 s honoured.
fn config(attempts: u32, trip_after: u32) -> SupervisorConfig {
    SupervisorConfig {
        timeout: Some(Duration::from_secs(2)),
        retry: RetryConfig::constant(attempts, ms(10))
            .budget(BudgetConfig::off())
            .max_delay(Duration::from_secs(3)),
        breaker: BreakerConfig::consecutive(trip_after).open_for(Duration::from_secs(60)),
        ..SupervisorConfig::default()
    }
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// A client whose requests run under one supervisor per host, started from `config`.
async fn keyed_client(config: SupervisorConfig) -> (ClientWithMiddleware, KeyedHandle) {
    let registry = RegistryHandle::start().unwrap();
    let hosts = registry.spawn_keyed("hosts", config).await.unwrap();
    let client = ClientBuilder::new(reqwest_client())
        .with(WardenMiddleware::keyed(hosts.clone()))
        .build();
    (client, hosts)
}

/// The host's supervisor, after it has recorded what its calls handed over.
async fn drained(hosts: &KeyedHandle, key: &str) -> ServiceHandle {
    let handle = hosts.key(key).expect("the host has a supervisor");
    handle.counts().await.unwrap();
    handle
}

#[tokio::test]
async fn a_503_is_retried_until_the_200() {
    let server = Server::start().await;
    let (client, hosts) = keyed_client(config(3, 100)).await;

    let response = client.get(server.url("/flaky/2")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(server.hits("/flaky/2"), 3, "two 503s, then the 200");

    let counts = drained(&hosts, &server.key()).await.counts().await.unwrap();
    assert_eq!((counts.success, counts.attempts, counts.retries), (1, 3, 2));
}

#[tokio::test]
async fn a_503_that_outlasts_the_attempts_is_answered_as_the_last_response() {
    let server = Server::start().await;
    let (client, hosts) = keyed_client(config(3, 100)).await;

    let response = client.get(server.url("/status/503")).send().await.unwrap();
    assert_eq!(response.status(), 503, "the host's answer, not an error");
    assert_eq!(server.hits("/status/503"), 3);
    let counts = drained(&hosts, &server.key()).await.counts().await.unwrap();
    assert_eq!((counts.success, counts.failure, counts.attempts), (0, 1, 3));
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after_in_seconds_or_as_a_date() {
    let server = Server::start().await;
    let (client, _hosts) = keyed_client(config(3, 100)).await;

    for (path, at_least) in [("/busy/1", ms(1000)), ("/busy-date", ms(900))] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let seen = server.seen(path);
        assert_eq!(seen.len(), 2, "{path}: the 429, then the 200");
        let gap = seen[1].at - seen[0].at;
        // The backoff is 10 ms: only the hint explains a wait of a second. (The date has a
        // resolution of one second: 2 s ahead is at least 1 s ahead.)
        assert!(
            gap >= at_least && gap < Duration::from_secs(5),
            "{path}: {gap:?}"
        );
    }
}

#[tokio::test]
async fn a_retry_after_above_max_delay_is_answered_at_once_with_the_429() {
    let server = Server::start().await;
    let (client, _hosts) = keyed_client(config(3, 100)).await;

    let started = Instant::now();
    let response = client.get(server.url("/busy/30")).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
    assert_eq!(
        server.hits("/busy/30"),
        1,
        "not retried: 30 s is above max_delay"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_post_is_sent_once_unless_marked_idempotent() {
    let server = Server::start().await;
    let (client, hosts) = keyed_client(config(3, 100)).await;

    let response = client
        .post(server.url("/status/503"))
        .body("charge")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.hits("/status/503"), 1, "a POST is not retried");
    // Counted all the same.
    let counts = drained(&hosts, &server.key()).await.counts().await.unwrap();
    assert_eq!((counts.failure, counts.attempts), (1, 1));

    // One request marked safe to repeat.
    let response = client
        .post(server.url("/status/502"))
        .body("charge")
        .with_extension(Idempotent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(server.hits("/status/502"), 3);
    assert!(server
        .seen("/status/502")
        .iter()
        .all(|seen| seen.method == Method::POST));

    // A whole client that retries every method.
    let every_method = ClientBuilder::new(reqwest_client())
        .with(WardenMiddleware::keyed(hosts.clone()).retry_non_idempotent())
        .build();
    let response = every_method
        .patch(server.url("/status/500"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(server.hits("/status/500"), 3);
}

#[tokio::test]
async fn a_request_whose_body_cannot_be_cloned_is_sent_once() {
    let server = Server::start().await;
    let (client, _hosts) = keyed_client(config(3, 100)).await;

    let streaming = reqwest::Body::wrap(http_body_util::Full::new(&b"stream"[..]));
    let response = client
        .put(server.url("/status/503"))
        .body(streaming)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        server.hits("/status/503"),
        1,
        "a PUT, but its body is a stream"
    );

    // The same PUT with a buffered body is retried.
    let response = client
        .put(server.url("/status/504"))
        .body("buffered")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(server.hits("/status/504"), 3);
}

#[tokio::test]
async fn a_404_is_not_a_breaker_failure_and_not_retried() {
    let server = Server::start().await;
    let (client, hosts) = keyed_client(config(3, 2)).await;

    for _ in 0..5 {
        let response = client.get(server.url("/status/404")).send().await.unwrap();
        assert_eq!(response.status(), 404);
    }
    assert_eq!(
        server.hits("/status/404"),
        5,
        "one request each: not retried"
    );
    let handle = drained(&hosts, &server.key()).await;
    assert!(!handle.is_open(), "five 404s do not open a breaker of 2");
    let response = client.get(server.url("/ok")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // The same breaker does open on 5xx (the test above could fail).
    let response = client.get(server.url("/status/500")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(drained(&hosts, &server.key()).await.is_open());
}

#[tokio::test]
async fn one_bad_host_out_of_two_opens_only_its_own_breaker() {
    let good = Server::start().await;
    let bad = Server::start().await;
    let (client, hosts) = keyed_client(config(1, 3)).await;

    for round in 0..3 {
        let response = client.get(bad.url("/status/500")).send().await.unwrap();
        assert_eq!(response.status(), 500, "round {round}");
        let response = client.get(good.url("/ok")).send().await.unwrap();
        assert_eq!(response.status(), 200, "round {round}");
    }
    assert!(drained(&hosts, &bad.key()).await.is_open());
    assert!(!drained(&hosts, &good.key()).await.is_open());
    assert_eq!(hosts.key_count(), 2);
    assert_eq!(hosts.open_keys(), 1);

    // The bad host is refused without a request; the good one still answers.
    let error = client.get(bad.url("/status/500")).send().await.unwrap_err();
    let warden = WardenError::of(&error).expect("warden's answer");
    assert!(
        matches!(warden.call_error(), CallError::Open { .. }),
        "{warden:?}"
    );
    assert_eq!(error.to_string(), "circuit breaker is open");
    assert!(warden.last().is_none());
    assert_eq!(bad.hits("/status/500"), 3);
    let response = client.get(good.url("/ok")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(good.hits("/ok"), 4);
}

/// The `grpc-timeout` the server received, read back.
fn grpc_timeout(seen: &Seen) -> Duration {
    let value = seen.headers["grpc-timeout"].to_str().unwrap();
    parse_grpc_timeout(value).unwrap_or_else(|| panic!("not a grpc-timeout: {value:?}"))
}

#[tokio::test]
async fn the_deadline_travels_to_the_server_in_a_header() {
    let server = Server::start().await;
    let (client, _hosts) = keyed_client(config(1, 100)).await;

    // Without a deadline of its own the attempt's cut-off is its 2 s timeout.
    client.get(server.url("/ok")).send().await.unwrap();
    // Inside a 300 ms budget, what is left of it.
    Deadline::after(ms(300))
        .scope(client.get(server.url("/ok")).send())
        .await
        .unwrap();
    let seen = server.seen("/ok");
    let (timeout, budget) = (grpc_timeout(&seen[0]), grpc_timeout(&seen[1]));
    assert!(
        timeout <= Duration::from_secs(2) && timeout > Duration::from_secs(1),
        "{timeout:?}"
    );
    assert!(budget <= ms(300) && budget > ms(100), "{budget:?}");

    // Another header, through one supervisor for every host; or none.
    let handle = ServiceSupervisor::builder("api")
        .timeout(Duration::from_secs(2))
        .start()
        .unwrap();
    let millis = ClientBuilder::new(reqwest_client())
        .with(
            WardenMiddleware::service(handle.clone())
                .deadline_header(DeadlineHeader::millis("x-deadline-ms")),
        )
        .build();
    Deadline::after(ms(250))
        .scope(millis.get(server.url("/ok")).send())
        .await
        .unwrap();
    let silent = ClientBuilder::new(reqwest_client())
        .with(WardenMiddleware::service(handle).without_deadline_header())
        .build();
    Deadline::after(ms(250))
        .scope(silent.get(server.url("/ok")).send())
        .await
        .unwrap();
    let seen = server.seen("/ok");
    let value: u64 = seen[2].headers["x-deadline-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value <= 250 && value > 50, "{value}");
    assert!(!seen[2].headers.contains_key("grpc-timeout"));
    assert!(!seen[3].headers.contains_key("grpc-timeout"));
    assert!(!seen[3].headers.contains_key("x-deadline-ms"));
}

#[tokio::test]
async fn the_criticality_travels_to_the_server_in_a_header() {
    let server = Server::start().await;
    let (client, _hosts) = keyed_client(config(1, 100)).await;
    let handle = ServiceSupervisor::builder("api").start().unwrap();
    let named = ClientBuilder::new(reqwest_client())
        .with(
            WardenMiddleware::service(handle.clone())
                .criticality_header(CriticalityHeader::named("x-priority")),
        )
        .build();
    let silent = ClientBuilder::new(reqwest_client())
        .with(WardenMiddleware::service(handle).without_criticality_header())
        .build();

    client.get(server.url("/ok")).send().await.unwrap();
    for criticality in [Criticality::Critical, Criticality::Sheddable] {
        criticality
            .scope(client.get(server.url("/ok")).send())
            .await
            .unwrap();
    }
    Criticality::Critical
        .scope(named.get(server.url("/ok")).send())
        .await
        .unwrap();
    Criticality::Critical
        .scope(silent.get(server.url("/ok")).send())
        .await
        .unwrap();

    let seen = server.seen("/ok");
    let header = |i: usize, name: &str| {
        let value = seen[i].headers.get(name)?;
        Some(value.to_str().unwrap().to_owned())
    };
    const NAME: &str = "x-warden-criticality";
    assert_eq!(header(0, NAME), None, "a default request sends none");
    assert_eq!(header(1, NAME).as_deref(), Some("critical"));
    assert_eq!(header(2, NAME).as_deref(), Some("sheddable"));
    assert_eq!(header(3, "x-priority").as_deref(), Some("critical"));
    assert_eq!(header(3, NAME), None);
    assert_eq!(header(4, NAME), None);
    assert_eq!(header(4, "x-priority"), None);
}

async fn refused(error: CallError<std::convert::Infallible>) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

/// Two hops over loopback HTTP: an edge whose `WardenLayer` reads the criticality header, and
/// whose handler calls the backend through the middleware, which sends it on.
#[tokio::test]
async fn a_criticality_read_at_the_edge_reaches_the_next_hop() {
    use axum::error_handling::HandleErrorLayer;
    use tower::ServiceBuilder;
    use warden::tower::{CriticalityHeader as Incoming, WardenLayer};

    let backend = Server::start().await;
    let api = ServiceSupervisor::builder("backend").start().unwrap();
    let client = ClientBuilder::new(reqwest_client())
        .with(WardenMiddleware::service(api))
        .build();
    let target = backend.url("/ok");
    let edge = ServiceSupervisor::builder("edge").start().unwrap();
    let app = Router::new()
        .fallback(move |State(client): State<ClientWithMiddleware>| {
            let target = target.clone();
            async move {
                match client.get(target).send().await {
                    Ok(response) => response.status(),
                    Err(_) => StatusCode::BAD_GATEWAY,
                }
            }
        })
        .with_state(client)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(refused))
                .layer(WardenLayer::new(edge).criticality_header(Incoming::default())),
        );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let edge_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let plain = reqwest_client();
    for value in [Some("CRITICAL_PLUS"), Some("sheddable"), None] {
        let mut request = plain.get(format!("http://{edge_addr}/"));
        if let Some(value) = value {
            request = request.header("x-warden-criticality", value);
        }
        assert_eq!(request.send().await.unwrap().status(), 200, "{value:?}");
    }
    let seen = backend.seen("/ok");
    let sent: Vec<Option<&str>> = seen
        .iter()
        .map(|seen| {
            let value = seen.headers.get("x-warden-criticality")?;
            Some(value.to_str().unwrap())
        })
        .collect();
    assert_eq!(sent, [Some("critical"), Some("sheddable"), None]);
}

#[tokio::test]
async fn a_request_whose_deadline_has_passed_is_not_sent() {
    let server = Server::start().await;
    let (client, _hosts) = keyed_client(config(3, 100)).await;

    let error = Deadline::after(Duration::ZERO)
        .scope(client.get(server.url("/ok")).send())
        .await
        .unwrap_err();
    let warden = WardenError::of(&error).expect("warden's answer");
    assert!(
        matches!(
            warden.call_error(),
            CallError::DeadlineExceeded { attempts: 0, .. }
        ),
        "{warden:?}"
    );
    assert_eq!(server.hits("/ok"), 0);
}

#[tokio::test]
async fn a_refused_connection_is_a_failure_that_opens_the_breaker() {
    // A port nothing listens on: bound, then closed.
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = reqwest::Url::parse(&format!("http://{addr}/ok")).unwrap();
    let (client, hosts) = keyed_client(config(3, 3)).await;

    let error = client.get(url.clone()).send().await.unwrap_err();
    let warden = WardenError::of(&error).expect("warden's answer");
    assert!(
        matches!(
            warden.call_error(),
            CallError::RetriesExhausted { attempts: 3, .. }
        ),
        "{warden:?}"
    );
    let last = warden.last().expect("the last attempt's error");
    assert!(last.is_connect(), "{last:?}");
    assert!(
        error
            .to_string()
            .starts_with("retries exhausted after 3 attempt(s): "),
        "{error}"
    );
    // The reqwest error is the warden error's source.
    let source = std::error::Error::source(warden).expect("a source");
    assert!(
        source.to_string().contains("error sending request"),
        "{source}"
    );

    let handle = drained(&hosts, &host_key(&url)).await;
    let counts = handle.counts().await.unwrap();
    assert_eq!((counts.failure, counts.attempts), (1, 3));
    assert!(
        handle.is_open(),
        "three refused connections trip a breaker of 3"
    );
    let error = client.get(url).send().await.unwrap_err();
    assert!(matches!(
        WardenError::of(&error).map(WardenError::call_error),
        Some(CallError::Open { .. })
    ));
}

/// A middleware under warden's: counts the attempts it sees and marks the extensions with
/// the attempt's number.
struct CountAttempts(Arc<Mutex<u32>>);

#[derive(Debug, Clone, PartialEq)]
struct Attempt(u32);

#[async_trait::async_trait]
impl Middleware for CountAttempts {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let attempt = {
            let mut count = self.0.lock().unwrap();
            *count += 1;
            *count
        };
        assert_eq!(
            extensions.get::<Attempt>(),
            None,
            "each attempt starts from the request's extensions"
        );
        extensions.insert(Attempt(attempt));
        next.run(request, extensions).await
    }
}

#[tokio::test]
async fn the_middlewares_below_run_once_per_attempt_and_the_last_ones_extensions_come_back() {
    let server = Server::start().await;
    let registry = RegistryHandle::start().unwrap();
    let hosts = registry.spawn_keyed("hosts", config(3, 100)).await.unwrap();
    let attempts = Arc::new(Mutex::new(0));
    let client = ClientBuilder::new(reqwest_client())
        .with(WardenMiddleware::keyed(hosts))
        .with(CountAttempts(Arc::clone(&attempts)))
        .build();

    let mut extensions = Extensions::new();
    let request = client.get(server.url("/flaky/2")).build().unwrap();
    let response = client
        .execute_with_extensions(request, &mut extensions)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(*attempts.lock().unwrap(), 3);
    assert_eq!(extensions.get::<Attempt>(), Some(&Attempt(3)));
}
