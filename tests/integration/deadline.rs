//! Issue 20, item 1: deadlines that travel. A call's deadline is visible to its operation
//! (`Deadline::current()`), inherited by every warden call made inside it (the sooner wins),
//! and no attempt, retry, hedge or backoff starts that cannot end before it. On a paused
//! clock, then over real loopback HTTP: three axum services in a chain, each behind a
//! `WardenLayer` reading `grpc-timeout`, each forwarding what is left.

use crate::common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::*;
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use warden::hedge::HedgeConfig;
use warden::prelude::*;
use warden::tower::{DeadlineHeader, WardenLayer};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What an operation saw of its deadline: the time it had left when it was invoked.
#[derive(Debug, Clone, Default)]
struct Seen(Arc<Mutex<Vec<Option<Duration>>>>);

impl Seen {
    fn now(&self) {
        let left = Deadline::current().map(Deadline::remaining);
        self.0.lock().unwrap().push(left);
    }
    fn all(&self) -> Vec<Option<Duration>> {
        self.0.lock().unwrap().clone()
    }

    /// Each operation had `expected` left, less at most 2 ms of timer rounding (a sleep
    /// before it ends up to a tick late).
    #[track_caller]
    fn assert_left(&self, expected: &[Duration]) {
        let all = self.all();
        assert_eq!(all.len(), expected.len(), "{all:?}");
        for (left, expected) in all.iter().zip(expected) {
            let left = left.expect("the operation runs inside a deadline");
            assert!(left <= *expected && left + ms(2) >= *expected, "{all:?}");
        }
    }
}

#[actix::test]
async fn an_inner_call_inherits_the_outer_calls_sooner_deadline_and_keeps_its_own_if_sooner() {
    pause_aligned().await;
    let mut outer_config = plain_config();
    outer_config.timeout = None;
    outer_config.deadline = Some(ms(300));
    let outer = start("outer", outer_config);
    // The inner dependency alone would allow 2 s.
    let mut inner_config = plain_config();
    inner_config.timeout = Some(Duration::from_secs(2));
    inner_config.deadline = Some(Duration::from_secs(2));
    let inner = start("inner", inner_config);
    let mut tight_config = plain_config();
    tight_config.timeout = Some(ms(100));
    tight_config.deadline = Some(ms(100));
    let tight = start("tight", tight_config);

    let (seen_outer, seen_inner, seen_tight) = (Seen::default(), Seen::default(), Seen::default());
    let inner_answer = Arc::new(Mutex::new(None));
    let (so, si, st, answer) = (
        seen_outer.clone(),
        seen_inner.clone(),
        seen_tight.clone(),
        inner_answer.clone(),
    );
    let started = Instant::now();
    let result = outer
        .call(move || {
            so.now();
            let (inner, tight, si, st, answer) = (
                inner.clone(),
                tight.clone(),
                si.clone(),
                st.clone(),
                answer.clone(),
            );
            async move {
                tokio::time::sleep(ms(50)).await;
                // Its own deadline (100 ms) is sooner than what is left of the outer (250 ms).
                let quick = tight
                    .call(move || {
                        st.now();
                        async { Ok::<_, DepError>(()) }
                    })
                    .await;
                assert!(quick.is_ok());
                // 2 s of its own, but only what is left of the outer call's 300 ms.
                let slow = inner
                    .call(move || {
                        si.now();
                        async {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            Ok::<_, DepError>(())
                        }
                    })
                    .await;
                *answer.lock().unwrap() = Some(slow);
                Ok::<_, DepError>(())
            }
        })
        .await;
    assert_about(started.elapsed(), ms(300));
    assert_eq!(seen_outer.all(), vec![Some(ms(300))]);
    assert_eq!(seen_tight.all(), vec![Some(ms(100))]);
    seen_inner.assert_left(&[ms(250)]);
    // Cut at the outer deadline: the inner call's own timer fires there, and so does the
    // outer's; whichever answers first, the answer is that the deadline passed.
    let inner_answer = inner_answer.lock().unwrap().take();
    match (&result, &inner_answer) {
        (Err(CallError::DeadlineExceeded { attempts: 1, .. }), None) => {}
        (_, Some(Err(CallError::DeadlineExceeded { attempts: 1, .. }))) => {}
        other => panic!("{other:?}"),
    }
}

#[actix::test]
async fn the_operation_sees_its_attempts_time_limit_and_nested_calls_inherit_it() {
    pause_aligned().await;
    // 1 s for the whole call, 200 ms per attempt: an attempt is cut at 200 ms, so that is
    // what its operation (and anything it calls) has.
    let mut config = plain_config();
    config.timeout = Some(ms(200));
    config.deadline = Some(Duration::from_secs(1));
    let svc = start("attempt-limit", config);
    let nested = start("nested", plain_config());
    let (seen, seen_nested) = (Seen::default(), Seen::default());
    let (s, sn) = (seen.clone(), seen_nested.clone());
    let result = svc
        .call(move || {
            s.now();
            let (nested, sn) = (nested.clone(), sn.clone());
            async move {
                nested
                    .call(move || {
                        sn.now();
                        async { Ok::<_, DepError>(7) }
                    })
                    .await
                    .map_err(|_| DepError("nested"))
            }
        })
        .await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(seen.all(), vec![Some(ms(200))]);
    assert_eq!(seen_nested.all(), vec![Some(ms(200))]);
    // Outside any call, no deadline.
    assert_eq!(Deadline::current(), None);
}

#[actix::test]
async fn a_deadline_set_by_hand_bounds_a_call_without_one_of_its_own() {
    pause_aligned().await;
    // 1 s per attempt, no overall deadline: the scope's 250 ms is what bounds the call.
    let svc = start("scoped", plain_config());
    let seen = Seen::default();
    let s = seen.clone();
    let started = Instant::now();
    let result = Deadline::after(ms(250))
        .scope(svc.call(move || {
            s.now();
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, DepError>(())
            }
        }))
        .await;
    assert!(
        matches!(
            result,
            Err(CallError::DeadlineExceeded {
                attempts: 1,
                last: None
            })
        ),
        "{result:?}"
    );
    assert_about(started.elapsed(), ms(250));
    assert_eq!(seen.all(), vec![Some(ms(250))]);
    assert_eq!(svc.counts().await.unwrap().timeout, 1);
}

#[actix::test]
async fn no_retry_or_backoff_starts_that_cannot_end_before_the_inherited_deadline() {
    pause_aligned().await;
    // Attempts time out after 300 ms and are retried after 100 ms, 10 times; the caller
    // allows 1 s in all.
    let mut config = plain_config();
    config.timeout = Some(ms(300));
    config.retry = RetryConfig::constant(10, ms(100)).budget(BudgetConfig::off());
    let svc = start("retries", config);
    let log = AttemptLog::default();
    let l = log.clone();
    let deadline = Deadline::after(Duration::from_secs(1));
    let started = Instant::now();
    let result = deadline
        .scope(svc.call(move || {
            l.push_now();
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, DepError>(())
            }
        }))
        .await;
    // Attempts at 0, 400 and 800 ms; the third is cut at the deadline, not at its timeout.
    assert!(
        matches!(
            result,
            Err(CallError::DeadlineExceeded {
                attempts: 3,
                last: None
            })
        ),
        "{result:?}"
    );
    assert_about(started.elapsed(), Duration::from_secs(1));
    assert_all_about(&log.gaps(), &[ms(400), ms(400)]);

    // Failing at once, retried every 300 ms: attempts at 0, 300, 600 and 900 ms; the next
    // backoff would end at the deadline, so it is not slept: answered at 900 ms with the
    // last error.
    let mut config = plain_config();
    config.retry = RetryConfig::constant(10, ms(300)).budget(BudgetConfig::off());
    let svc = start("backoff", config);
    let hits = Hits::default();
    let h = hits.clone();
    let started = Instant::now();
    let result = Deadline::after(Duration::from_secs(1))
        .scope(svc.call(move || {
            h.hit();
            async { Err::<(), _>(DepError("503")) }
        }))
        .await;
    assert!(
        matches!(
            result,
            Err(CallError::DeadlineExceeded {
                attempts: 4,
                last: Some(DepError("503"))
            })
        ),
        "{result:?}"
    );
    assert_eq!(hits.get(), 4);
    // Three backoffs, each up to 1 ms late (timer ticks), and none slept to the deadline.
    let elapsed = started.elapsed();
    assert!(elapsed >= ms(900) && elapsed <= ms(904), "{elapsed:?}");
}

#[actix::test]
async fn a_call_whose_deadline_has_passed_is_answered_at_once_and_never_runs() {
    pause_aligned().await;
    let svc = start("too-late", plain_config());
    let hits = Hits::default();
    let deadline = Deadline::after(ms(10));
    tokio::time::sleep(ms(20)).await;
    let started = Instant::now();
    for _ in 0..3 {
        let h = hits.clone();
        let result = deadline
            .scope(svc.call(move || {
                h.hit();
                async { Ok::<_, DepError>(()) }
            }))
            .await;
        assert!(
            matches!(
                result,
                Err(CallError::DeadlineExceeded {
                    attempts: 0,
                    last: None
                })
            ),
            "{result:?}"
        );
    }
    // Also through a prepared call with a fallback: the fallback answers, the operation
    // still does not run.
    let h = hits.clone();
    let call = Call::new(move || {
        h.hit();
        async { Ok::<_, DepError>(1) }
    })
    .fallback(|error: CallError<DepError>| {
        assert!(matches!(
            error,
            CallError::DeadlineExceeded { attempts: 0, .. }
        ));
        Ok(0)
    });
    assert_eq!(deadline.scope(svc.send(call)).await.unwrap(), 0);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "answered without waiting"
    );
    assert_eq!(hits.get(), 0, "the operation never ran");
    settle().await;
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.attempts, counts.timeout), (0, 3), "{counts:?}");
}

#[actix::test]
async fn a_rate_limit_wait_longer_than_the_time_left_is_refused_at_once_and_its_token_kept() {
    pause_aligned().await;
    // One call per 100 ms, waited for up to 1 s.
    let config = SupervisorConfig {
        rate_limit: Some(
            RateLimitConfig::per_second(10.0)
                .burst(1)
                .max_wait(Duration::from_secs(1)),
        ),
        ..plain_config()
    };
    let svc = start("limited", config);
    succeed(&svc).await.unwrap();
    // The next token is 100 ms away; with 50 ms left the call is refused without waiting.
    let started = Instant::now();
    let refused = Deadline::after(ms(50)).scope(succeed(&svc)).await;
    assert!(
        matches!(refused, Err(CallError::RateLimited { retry_after }) if retry_after == ms(100)),
        "{refused:?}"
    );
    assert_eq!(started.elapsed(), Duration::ZERO);
    // Its token went back: a call with time enough waits the 100 ms, not 200 ms.
    Deadline::after(ms(500)).scope(succeed(&svc)).await.unwrap();
    assert_about(started.elapsed(), ms(100));
}

#[actix::test]
async fn no_hedge_starts_after_the_deadline_and_each_hedge_inherits_it() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_secs(10));
    config.hedge = Some(HedgeConfig::fixed(ms(100)).max_hedges(5).all_calls());
    config.retry = RetryConfig::off().budget(BudgetConfig::off());
    let svc = start("hedged", config);
    let (log, seen) = (AttemptLog::default(), Seen::default());
    let (l, s) = (log.clone(), seen.clone());
    let started = Instant::now();
    let result = Deadline::after(ms(250))
        .scope(svc.call(move || {
            l.push_now();
            s.now();
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, DepError>(())
            }
        }))
        .await;
    assert!(
        matches!(result, Err(CallError::DeadlineExceeded { .. })),
        "{result:?}"
    );
    assert_about(started.elapsed(), ms(250));
    // The attempt and its hedges at 100 and 200 ms; none at 300 ms, past the deadline.
    assert_all_about(&log.gaps(), &[ms(100), ms(100)]);
    seen.assert_left(&[ms(250), ms(150), ms(50)]);
}

#[actix::test]
async fn the_tower_layer_runs_each_request_with_the_deadline_its_header_brings() {
    pause_aligned().await;
    let handle = start("layer", plain_config());
    let reached = Hits::default();
    let seen = Seen::default();
    let (r, s) = (reached.clone(), seen.clone());
    let service = ServiceBuilder::new()
        .layer(
            WardenLayer::new(handle)
                .deadline_header(DeadlineHeader::millis("x-warden-deadline-ms")),
        )
        .service(service_fn(move |request: axum::http::Request<()>| {
            r.hit();
            s.now();
            async move {
                let wait: u64 = request.uri().path()[1..].parse().unwrap();
                tokio::time::sleep(ms(wait)).await;
                Ok::<_, Infallible>("done")
            }
        }));
    let request = |path: &str, header: Option<&str>| {
        let mut request = axum::http::Request::get(path);
        if let Some(value) = header {
            request = request.header("x-warden-deadline-ms", value);
        }
        request.body(()).unwrap()
    };
    // Time left: 100 ms, the service takes 10 ms.
    let answer = service.clone().oneshot(request("/10", Some("100"))).await;
    assert_eq!(answer.unwrap(), "done");
    // Time left: 100 ms, the service would take 1 s: cut at 100 ms (the supervisor's own
    // timeout is 1 s).
    let started = Instant::now();
    let answer = service.clone().oneshot(request("/1000", Some("100"))).await;
    assert!(
        matches!(answer, Err(CallError::DeadlineExceeded { attempts: 1, .. })),
        "{answer:?}"
    );
    assert_about(started.elapsed(), ms(100));
    // No time left: answered at once, the inner service never reached.
    let answer = service.clone().oneshot(request("/10", Some("0"))).await;
    assert!(
        matches!(answer, Err(CallError::DeadlineExceeded { attempts: 0, .. })),
        "{answer:?}"
    );
    // No header, or one that is not a number: no deadline (the supervisor's timeout only).
    assert_eq!(
        service.clone().oneshot(request("/10", None)).await.unwrap(),
        "done"
    );
    assert_eq!(
        service
            .clone()
            .oneshot(request("/10", Some("soon")))
            .await
            .unwrap(),
        "done"
    );
    assert_eq!(reached.get(), 4);
    assert_eq!(
        seen.all(),
        vec![Some(ms(100)), Some(ms(100)), Some(ms(1000)), Some(ms(1000))]
    );
}

// ---- Over real loopback HTTP: edge → middle → inner → (slow database) ----

/// The time the edge's caller allows.
const BUDGET: Duration = Duration::from_millis(300);
/// How late after the edge's deadline a hop may see a request sent before it (loopback
/// transit and scheduling on a loaded machine): work started later than that was started
/// after the deadline.
const TRANSIT: Duration = Duration::from_millis(50);

/// What one hop counts: requests whose work started, and those that started it too late.
#[derive(Debug, Default)]
struct Tally {
    started: AtomicU32,
    /// Started once the hop's own deadline (from the request's header) had passed.
    after_own_deadline: AtomicU32,
    /// Started later than the edge's deadline (plus transit).
    after_edge_deadline: AtomicU32,
    /// Started without a deadline: the header did not arrive.
    without_deadline: AtomicU32,
}

impl Tally {
    fn work_starts(&self, edge_deadline: &Mutex<std::time::Instant>) {
        self.started.fetch_add(1, Ordering::SeqCst);
        match Deadline::current() {
            None => self.without_deadline.fetch_add(1, Ordering::SeqCst),
            Some(deadline) if deadline.has_passed() => {
                self.after_own_deadline.fetch_add(1, Ordering::SeqCst)
            }
            Some(_) => 0,
        };
        if std::time::Instant::now() > *edge_deadline.lock().unwrap() + TRANSIT {
            self.after_edge_deadline.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn get(&self) -> [u32; 4] {
        [
            self.started.load(Ordering::SeqCst),
            self.after_own_deadline.load(Ordering::SeqCst),
            self.after_edge_deadline.load(Ordering::SeqCst),
            self.without_deadline.load(Ordering::SeqCst),
        ]
    }
}

/// A hop that forwards each request to the next one through its own supervisor, sending on
/// the time left in `grpc-timeout`.
#[derive(Clone)]
struct Forward {
    next: String,
    client: reqwest::Client,
    dependency: ServiceHandle,
    tally: Arc<Tally>,
    edge_deadline: Arc<Mutex<std::time::Instant>>,
}

async fn forward(State(hop): State<Forward>) -> (StatusCode, String) {
    hop.tally.work_starts(&hop.edge_deadline);
    let header = DeadlineHeader::grpc_timeout();
    let result = hop
        .dependency
        .call(|| {
            let mut request = hop.client.get(&hop.next);
            // Inside the attempt: what is left of its deadline.
            if let Some((name, value)) = header.current() {
                request = request.header(name, value);
            }
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                match response.status() {
                    status if status.is_success() => {
                        response.text().await.map_err(|e| e.to_string())
                    }
                    status => Err(format!("status {status}")),
                }
            }
        })
        .await;
    match result {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => (StatusCode::GATEWAY_TIMEOUT, error.to_string()),
    }
}

/// The innermost hop: its database takes 1 s to answer.
#[derive(Clone)]
struct Slowest {
    database: ServiceHandle,
    tally: Arc<Tally>,
    edge_deadline: Arc<Mutex<std::time::Instant>>,
}

async fn slowest(State(hop): State<Slowest>) -> (StatusCode, String) {
    hop.tally.work_starts(&hop.edge_deadline);
    let result = hop
        .database
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, std::io::Error>("rows")
        })
        .await;
    match result {
        Ok(rows) => (StatusCode::OK, rows.to_string()),
        Err(error) => (StatusCode::GATEWAY_TIMEOUT, error.to_string()),
    }
}

async fn deadline_passed(error: CallError<Infallible>) -> (StatusCode, String) {
    (StatusCode::GATEWAY_TIMEOUT, error.to_string())
}

/// Serves `router` on 127.0.0.1, behind a `WardenLayer` (its own supervisor, no timeout)
/// that reads `grpc-timeout`.
async fn serve(name: &str, router: Router) -> SocketAddr {
    let server = ServiceSupervisor::builder(format!("{name}-server"))
        .timeout(None)
        .retry(RetryConfig::off())
        .breaker(BreakerConfig::consecutive(1000))
        .start()
        .expect("valid configuration");
    let layer = WardenLayer::new(server).deadline_header(DeadlineHeader::grpc_timeout());
    let app = router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(deadline_passed))
            .layer(layer),
    );
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A client-side supervisor: `timeout` per attempt, `attempts` attempts `backoff` apart.
fn dependency(name: &str, timeout: Duration, attempts: u32, backoff: Duration) -> ServiceHandle {
    ServiceSupervisor::builder(name)
        .timeout(timeout)
        .retry(RetryConfig::constant(attempts, backoff).budget(BudgetConfig::off()))
        .breaker(BreakerConfig::consecutive(1000))
        .start()
        .expect("valid configuration")
}

#[actix::test]
async fn a_300_ms_budget_travels_through_three_http_services_and_no_hop_works_past_it() {
    let edge_deadline = Arc::new(Mutex::new(std::time::Instant::now() + BUDGET));
    let tallies: [Arc<Tally>; 3] = Default::default();
    let [edge_tally, middle_tally, inner_tally] = tallies.clone();
    let client = reqwest::Client::new();

    let inner = serve(
        "inner",
        Router::new().route("/", get(slowest)).with_state(Slowest {
            database: dependency("database", Duration::from_secs(2), 1, ms(10)),
            tally: inner_tally,
            edge_deadline: Arc::clone(&edge_deadline),
        }),
    )
    .await;
    // Each hop alone would retry well past 300 ms: the middle 5 times (100 ms per attempt),
    // the edge 3 times (250 ms per attempt).
    let middle = serve(
        "middle",
        Router::new().route("/", get(forward)).with_state(Forward {
            next: format!("http://{inner}/"),
            client: client.clone(),
            dependency: dependency("middle-to-inner", ms(100), 5, ms(20)),
            tally: middle_tally,
            edge_deadline: Arc::clone(&edge_deadline),
        }),
    )
    .await;
    let edge = serve(
        "edge",
        Router::new().route("/", get(forward)).with_state(Forward {
            next: format!("http://{middle}/"),
            client: client.clone(),
            dependency: dependency("edge-to-middle", ms(250), 3, ms(10)),
            tally: edge_tally,
            edge_deadline: Arc::clone(&edge_deadline),
        }),
    )
    .await;

    let mut latencies = Vec::new();
    for _ in 0..3 {
        let sent = std::time::Instant::now();
        *edge_deadline.lock().unwrap() = sent + BUDGET;
        let response = client
            .get(format!("http://{edge}/"))
            .header("grpc-timeout", "300m")
            .send()
            .await
            .expect("the edge answers");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let latency = sent.elapsed();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert!(body.contains("deadline exceeded"), "{body}");
        latencies.push(latency);
        // Let what is still in flight below end (each hop's deadline is the edge's), so
        // the next round's deadline does not excuse it.
        tokio::time::sleep(TRANSIT * 2).await;
    }
    let [edge, middle, inner] = tallies.each_ref().map(|tally| tally.get());
    println!(
        "deadline over HTTP, 300 ms budget, 3 hops, database 1 s: edge answered in {:?}; \
         work started [started, after own deadline, after edge deadline + {TRANSIT:?}, without \
         deadline]: edge {edge:?}, middle {middle:?}, inner {inner:?}",
        latencies
    );
    for (hop, tally) in [("edge", edge), ("middle", middle), ("inner", inner)] {
        let [started, after_own, after_edge, without] = tally;
        assert!(started >= 3, "{hop}: every round reached it: {tally:?}");
        assert_eq!(
            after_own, 0,
            "{hop} started work after its deadline: {tally:?}"
        );
        assert_eq!(
            after_edge, 0,
            "{hop} started work after the edge's deadline: {tally:?}"
        );
        assert_eq!(
            without, 0,
            "{hop} got a request without its deadline: {tally:?}"
        );
    }
    for latency in latencies {
        assert!(
            latency >= BUDGET - ms(5),
            "answered before the budget ran out: {latency:?}"
        );
        assert!(
            latency <= BUDGET + ms(150),
            "the edge answered within its budget (+ a margin for a loaded machine): {latency:?}"
        );
    }
}
