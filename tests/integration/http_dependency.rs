//! The HTTP example's server and client (`cargo run --example http_dependency`) on loopback
//! with real sockets: for each fault mode, the classifier's decision shows in how many requests
//! reach the server. Real sockets mean real time, so delays are a few milliseconds and the
//! assertions are on counts and decisions, never on measured durations.

use crate::app;

use std::time::Duration;

use app::timeline::{ErrorKind, Timeline};
use app::{FaultyServer, HttpError, ItemsClient, Mode, Timings};
use warden::breaker::BreakerState;
use warden::messages::EventKind;
use warden::{CallError, ServiceSupervisor};

const BACKOFF: Duration = Duration::from_millis(5);

/// A server and a client with its own supervisor; small delays, a timeout that a loopback
/// request never comes near, and a breaker that stays open long enough to be observed.
async fn setup() -> (FaultyServer, ItemsClient, Timeline) {
    let server = FaultyServer::start().await.expect("bind 127.0.0.1:0");
    let timings = Timings {
        timeout: Duration::from_millis(250),
        backoff: BACKOFF,
        max_delay: Duration::from_millis(500),
        open_for: Duration::from_secs(1),
    };
    let handle = ServiceSupervisor::builder("items-api")
        .config(app::supervisor_config(timings))
        .start()
        .expect("valid configuration");
    let timeline = Timeline::start();
    timeline.follow(&handle).await;
    let client = ItemsClient::new(server.url(""), handle, timeline.clone());
    (server, client, timeline)
}

#[actix::test]
async fn healthy_calls_make_one_request_each() {
    let (server, client, _) = setup().await;
    for id in 1..=3 {
        let fetched = client.get(&format!("/items/{id}")).await;
        let body = fetched.result.expect("healthy server answers");
        assert_eq!(body, format!("{{\"id\":{id},\"name\":\"item {id}\"}}"));
    }
    assert_eq!(server.requests(), 3);
}

#[actix::test]
async fn a_client_error_is_neither_retried_nor_held_against_the_server() {
    let (server, client, _) = setup().await;
    let fetched = client.get("/items/unknown").await;
    match fetched.result {
        Err(CallError::Failed {
            last: HttpError::Status { code: 404, .. },
            attempts: 1,
        }) => {}
        other => panic!("expected a 404 answered at once, got {other:?}"),
    }
    assert_eq!(server.requests(), 1);
    let status = client.handle().breaker_status().await.unwrap();
    assert_eq!(
        status.window.failures, 0,
        "ignored errors are not breaker failures"
    );
}

#[actix::test]
async fn server_errors_are_retried_until_the_attempts_run_out() {
    let (server, client, _) = setup().await;
    for code in [503, 500] {
        server.set_mode(Mode::Failing(code)).await.unwrap();
        let fetched = client.get("/items/1").await;
        match fetched.result {
            Err(CallError::RetriesExhausted {
                last: HttpError::Status { code: got, .. },
                attempts: 3,
            }) => assert_eq!(got, code),
            other => panic!("expected 3 attempts ending in {code}, got {other:?}"),
        }
        assert_eq!(server.take_requests(), 3, "{code}");
        // A success resets the breaker's count of failures in a row (5 would open it).
        server.set_mode(Mode::Healthy).await.unwrap();
        assert!(client.get("/items/1").await.result.is_ok());
        assert_eq!(server.take_requests(), 1);
    }
    let status = client.handle().breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.window.failures, 6);
}

#[actix::test]
async fn a_429_is_retried_after_the_servers_hint_not_the_backoff() {
    let (server, client, timeline) = setup().await;
    let every = Duration::from_millis(40);
    server.set_mode(Mode::RateLimited { every }).await.unwrap();
    let fetched = client.get("/items/1").await;
    assert!(fetched.result.is_ok(), "{:?}", fetched.result);
    assert_eq!(fetched.answer.attempts(), 2);
    assert_eq!(
        server.requests(),
        2,
        "one 429, then the retry that got through"
    );
    let delays: Vec<Duration> = timeline
        .entries()
        .iter()
        .filter_map(|e| match e.supervisor() {
            Some(EventKind::RetryScheduled { delay, .. }) => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 1);
    // The wait is the server's hint (the time left in its period), not the 5 ms backoff.
    assert!(delays[0] > BACKOFF && delays[0] <= every, "{delays:?}");
}

#[actix::test]
async fn a_hint_longer_than_max_delay_stops_retrying() {
    let (server, client, _) = setup().await;
    server
        .set_mode(Mode::RateLimited {
            every: Duration::from_secs(5),
        })
        .await
        .unwrap();
    let fetched = client.get("/items/1").await;
    match fetched.result {
        Err(CallError::RetryDeferred {
            last:
                HttpError::Status {
                    code: 429,
                    retry_after: Some(hint),
                },
            attempts: 1,
            retry_after,
        }) => {
            assert!(hint > Duration::from_secs(4), "{hint:?}");
            assert_eq!(retry_after, hint, "the hint is kept in the answer");
        }
        other => panic!("expected one 429 and no retry, got {other:?}"),
    }
    assert_eq!(server.requests(), 1);
}

#[actix::test]
async fn slow_answers_are_cut_off_and_retried() {
    let (server, client, timeline) = setup().await;
    server
        .set_mode(Mode::Slow(Duration::from_secs(5)))
        .await
        .unwrap();
    let fetched = client.get("/items/1").await;
    assert!(
        matches!(fetched.result, Err(CallError::TimedOut { attempts: 3 })),
        "{:?}",
        fetched.result
    );
    assert_eq!(server.requests(), 3, "each attempt reached the server");
    let cancelled = timeline
        .entries()
        .iter()
        .filter(|e| matches!(e.event, app::timeline::Event::Cancelled { .. }))
        .count();
    assert_eq!(cancelled, 3, "each attempt's request future was dropped");
}

#[actix::test]
async fn refused_connections_open_the_breaker_and_a_probe_closes_it() {
    let (server, client, _) = setup().await;
    assert!(client.get("/items/1").await.result.is_ok());
    server.take_requests();
    server.set_mode(Mode::Down).await.unwrap();

    // 3 refused attempts, then 2 more: 5 in a row open the breaker mid-call.
    let first = client.get("/items/2").await;
    match &first.result {
        Err(CallError::RetriesExhausted {
            last: HttpError::Connect(what),
            attempts: 3,
        }) => assert_eq!(what, "connection refused"),
        other => panic!("expected 3 refused connections, got {other:?}"),
    }
    let second = client.get("/items/3").await;
    assert_eq!(second.answer.attempts(), 2);
    assert_eq!(second.answer.error_kind(), Some(ErrorKind::RetryRefused));
    let third = client.get("/items/4").await;
    assert_eq!(third.answer.attempts(), 0, "refused without trying");
    assert!(matches!(third.result, Err(CallError::Open { .. })));
    assert_eq!(
        server.take_requests(),
        0,
        "nothing reached a closed listener"
    );

    // Back up: once the open period is over, one probe goes through and closes the breaker.
    server.set_mode(Mode::Healthy).await.unwrap();
    let status = client.handle().breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Open);
    tokio::time::sleep(status.retry_after.unwrap_or_default()).await;
    let probe = client.get("/items/5").await;
    assert!(probe.result.is_ok(), "{:?}", probe.result);
    assert_eq!(server.take_requests(), 1);
    let status = client.handle().breaker_status().await.unwrap();
    assert_eq!(status.state, BreakerState::Closed);
}
