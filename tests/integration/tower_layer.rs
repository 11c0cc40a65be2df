//! `warden::tower::WardenLayer` around a real hyper-util client talking to a loopback hyper
//! server (the HTTP example's server): each request is one supervised call, 5xx responses
//! classified as failures trip the breaker, an open breaker refuses requests without reaching
//! the server, retries happen only for a `Clone` request. Real sockets: the assertions are on
//! counts (requests the server received), never on measured time. Readiness is tested with
//! an in-memory service on a paused clock.

use crate::app;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use app::{FaultyServer, Mode};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client, Error as ClientError};
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use warden::prelude::*;
use warden::tower::WardenLayer;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;
type HttpResult = Result<Response<Incoming>, ClientError>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A 5xx response is a transient failure, a connection error too; anything else a success.
fn server_errors_fail(result: &HttpResult) -> Option<ErrorClass> {
    match result {
        Ok(response) if response.status().is_server_error() => Some(ErrorClass::transient()),
        Ok(_) => None,
        Err(_) => Some(ErrorClass::transient()),
    }
}

/// A supervisor whose breaker opens after `trip_after` consecutive failures, with up to 3
/// attempts a few milliseconds apart.
fn supervisor(name: &str, trip_after: u32) -> ServiceHandle {
    ServiceSupervisor::builder(name)
        .timeout(Duration::from_secs(5))
        .retry(RetryConfig::constant(3, Duration::from_millis(2)))
        .breaker(BreakerConfig::consecutive(trip_after).open_for(Duration::from_secs(60)))
        .start()
        .expect("valid configuration")
}

fn get(server: &FaultyServer, path: &str) -> Request<Empty<Bytes>> {
    Request::get(server.url(path))
        .body(Empty::new())
        .expect("valid request")
}

#[actix::test]
async fn each_request_is_one_supervised_call() {
    let server = FaultyServer::start().await.expect("bind 127.0.0.1:0");
    let handle = supervisor("items", 3);
    let mut service = WardenLayer::new(handle.clone())
        .classify(server_errors_fail)
        .layer(client());
    for id in 1..=3 {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(get(&server, &format!("/items/{id}")))
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
    }
    // A 404 is the dependency answering: a success for the breaker, returned as it is.
    let response = service
        .ready()
        .await
        .unwrap()
        .call(get(&server, "/nothing"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(server.requests(), 4);
    let counts = handle.counts().await.unwrap();
    assert_eq!(counts.success, 4);
}

#[actix::test]
async fn server_errors_trip_the_breaker_then_requests_are_refused_without_reaching_the_server() {
    let server = FaultyServer::start().await.expect("bind 127.0.0.1:0");
    server.set_mode(Mode::Failing(503)).await.unwrap();
    let handle = supervisor("items", 3);
    // `hyper::Request` is not `Clone`: one attempt per request.
    let mut service = WardenLayer::new(handle.clone())
        .classify(server_errors_fail)
        .layer(client());
    for _ in 0..3 {
        // The dependency's answer comes back (a failed response ends the call as itself)...
        let response = service
            .ready()
            .await
            .unwrap()
            .call(get(&server, "/items/1"))
            .await
            .expect("the 503 response is returned");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // ...and counted as a failure: three of them opened the breaker.
    assert_eq!(server.requests(), 3);
    assert!(handle.is_open());
    assert_eq!(
        handle.breaker_status().await.unwrap().state,
        BreakerState::Open
    );

    // Ready at once (the inner client is not even asked), and refused at once.
    for _ in 0..5 {
        let answer = service
            .ready()
            .await
            .expect("ready while open")
            .call(get(&server, "/items/1"))
            .await;
        assert!(
            matches!(
                answer,
                Err(CallError::Open {
                    retry_after: Some(_)
                })
            ),
            "{answer:?}"
        );
    }
    assert_eq!(server.requests(), 3, "no request reached the server");
    let counts = handle.counts().await.unwrap();
    assert_eq!(counts.rejected_open, 5);
}

/// A request that is `Clone`: the path to get. The service sends it with the hyper client.
fn by_path(
    server: &FaultyServer,
) -> impl Service<String, Response = Response<Incoming>, Error = ClientError, Future: Send>
       + Clone
       + Send
       + 'static {
    let client = client();
    let base = server.url("");
    tower::service_fn(move |path: String| {
        let client = client.clone();
        let uri = format!("{base}{path}").parse().expect("valid uri");
        async move { client.get(uri).await }
    })
}

#[actix::test]
async fn a_clone_request_is_retried_and_a_non_clone_one_is_not() {
    let server = FaultyServer::start().await.expect("bind 127.0.0.1:0");
    server.set_mode(Mode::Failing(500)).await.unwrap();
    let handle = supervisor("items", 100);

    // `String` is `Clone`: with `retry_requests`, 3 attempts, each reaching the server.
    let mut retrying = WardenLayer::new(handle.clone())
        .classify(server_errors_fail)
        .retry_requests()
        .layer(by_path(&server));
    let response = retrying
        .ready()
        .await
        .unwrap()
        .call("/items/1".to_string())
        .await
        .expect("the last 500 response is returned");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(server.take_requests(), 3);

    // The same supervisor and retry policy, a `hyper::Request` (not `Clone`): one attempt.
    let mut once = WardenLayer::new(handle.clone())
        .classify(server_errors_fail)
        .layer(client());
    let response = once
        .ready()
        .await
        .unwrap()
        .call(get(&server, "/items/1"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(server.take_requests(), 1);

    // Recovery: the retrying service's next request succeeds at its first attempt.
    server.set_mode(Mode::Healthy).await.unwrap();
    let response = retrying
        .ready()
        .await
        .unwrap()
        .call("/items/1".to_string())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.take_requests(), 1);
    let counts = handle.counts().await.unwrap();
    assert_eq!(counts.attempts, 3 + 1 + 1);
}

#[actix::test]
async fn connection_errors_are_the_inner_error_and_retried() {
    let server = FaultyServer::start().await.expect("bind 127.0.0.1:0");
    server.set_mode(Mode::Down).await.unwrap();
    let handle = supervisor("items", 100);
    let mut service = WardenLayer::new(handle.clone())
        .retry_requests()
        .layer(by_path(&server));
    let answer = service
        .ready()
        .await
        .unwrap()
        .call("/items/1".to_string())
        .await;
    match answer {
        Err(CallError::RetriesExhausted { last, attempts: 3 }) => assert!(last.is_connect()),
        other => panic!("expected 3 refused connections, got {other:?}"),
    }
}

#[actix::test]
async fn it_composes_inside_a_service_builder() {
    let server = FaultyServer::start().await.expect("bind 127.0.0.1:0");
    let handle = supervisor("items", 3);
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(30))
        .layer(WardenLayer::new(handle.clone()).classify(server_errors_fail))
        .service(client());
    let response = service.oneshot(get(&server, "/items/7")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    server.set_mode(Mode::Failing(502)).await.unwrap();
    let mut service = ServiceBuilder::new()
        .timeout(Duration::from_secs(30))
        .layer(WardenLayer::new(handle.clone()).classify(server_errors_fail))
        .service(client());
    for _ in 0..3 {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(get(&server, "/items/7"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }
    // Through the outer layer the refusal is a boxed `CallError`.
    let refused = service
        .ready()
        .await
        .unwrap()
        .call(get(&server, "/items/7"))
        .await
        .unwrap_err();
    let refused = refused
        .downcast_ref::<CallError<ClientError>>()
        .expect("a CallError");
    assert!(matches!(refused, CallError::Open { .. }));
    assert_eq!(server.requests(), 1 + 3);
}

/// An in-memory service that is ready only while its gate is open, and counts its calls.
#[derive(Clone, Default)]
struct Gated {
    open: Arc<AtomicBool>,
    waiting: Arc<Mutex<Option<Waker>>>,
    calls: Arc<AtomicU32>,
}

impl Gated {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waiting.lock().unwrap().take() {
            waker.wake();
        }
    }
}

impl Service<u32> for Gated {
    type Response = u32;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<u32, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        if self.open.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        *self.waiting.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }

    fn call(&mut self, request: u32) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(request * 2) })
    }
}

#[actix::test]
async fn readiness_follows_the_inner_service_until_the_breaker_opens() {
    tokio::time::pause();
    let handle = supervisor("gated", 3);
    let gated = Gated::default();
    let mut service = WardenLayer::new(handle.clone())
        .retry_requests()
        .layer(gated.clone());

    // Closed breaker: not ready while the inner service is not.
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(service.poll_ready(&mut cx).is_pending());
    gated.open();
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(service.call(21).await.unwrap(), 42);
    assert_eq!(gated.calls.load(Ordering::SeqCst), 1);

    // Forced open: ready at once whatever the inner service says, refused without calling it.
    let mut closed_gate = WardenLayer::new(handle.clone())
        .retry_requests()
        .layer(Gated::default());
    handle.force_open().await.unwrap();
    assert!(handle.is_open());
    assert!(matches!(
        closed_gate.poll_ready(&mut cx),
        Poll::Ready(Ok(()))
    ));
    assert!(matches!(
        closed_gate.call(1).await,
        Err(CallError::Open { retry_after: None })
    ));
    assert_eq!(closed_gate.get_ref().calls.load(Ordering::SeqCst), 0);

    // Reset: readiness is the inner service's again.
    handle.reset().await.unwrap();
    assert!(closed_gate.poll_ready(&mut cx).is_pending());

    // A stopped supervisor: the service fails its readiness for good.
    handle.stop().await.unwrap();
    handle.stopped().await;
    assert!(matches!(
        service.poll_ready(&mut cx),
        Poll::Ready(Err(CallError::SupervisorGone))
    ));
}

#[actix::test]
async fn a_request_brings_its_criticality_in_a_header() {
    use warden::tower::CriticalityHeader;
    use warden::Criticality;

    let handle = ServiceSupervisor::builder("graded")
        .start()
        .expect("valid configuration");
    // The inner service answers the criticality it runs with: its call's.
    let mut service = WardenLayer::new(handle.clone())
        .criticality_header(CriticalityHeader::default())
        .layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::io::Error>(Criticality::current())
        }));
    let request = |value: Option<&str>| {
        let request = Request::get("/");
        match value {
            Some(value) => request.header("x-warden-criticality", value),
            None => request,
        }
        .body(())
        .expect("valid request")
    };
    for (value, expected) in [
        (Some("critical"), Criticality::Critical),
        (Some("SHEDDABLE"), Criticality::Sheddable),
        (None, Criticality::Default),
        (Some("urgent"), Criticality::Default),
    ] {
        let ran_as = service.ready().await.unwrap().call(request(value)).await;
        assert_eq!(ran_as.unwrap(), expected, "{value:?}");
    }
    // Without the header a request is as critical as the scope the service is called in;
    // with it, the header wins.
    let ran_as = Criticality::Critical
        .scope(async {
            let none = service.ready().await.unwrap().call(request(None)).await;
            let sheddable = service
                .ready()
                .await
                .unwrap()
                .call(request(Some("sheddable")));
            (none.unwrap(), sheddable.await.unwrap())
        })
        .await;
    assert_eq!(ran_as, (Criticality::Critical, Criticality::Sheddable));

    // A request refused at once is counted in its class.
    handle.force_open().await.unwrap();
    let refused = service
        .ready()
        .await
        .unwrap()
        .call(request(Some("sheddable")))
        .await;
    assert!(
        matches!(refused, Err(CallError::Open { .. })),
        "{refused:?}"
    );
    let refused = service
        .ready()
        .await
        .unwrap()
        .call(request(Some("critical")))
        .await;
    assert!(
        matches!(refused, Err(CallError::Open { .. })),
        "{refused:?}"
    );
    assert_eq!(handle.counts().await.unwrap().shed, [1, 0, 1]);
}
