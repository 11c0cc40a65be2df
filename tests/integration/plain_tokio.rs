//! Plain tokio without ceremony: supervisors and registries start from a `#[tokio::main]`-style
//! program (no actix system, no `BackgroundRuntime` to learn), and calls run in its tasks.

use crate::common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use common::*;
use warden::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_starts_and_serves_calls_from_plain_tokio() {
    let db = ServiceSupervisor::builder("database")
        .config(plain_config())
        .start()
        .expect("starts outside an actix system");
    let rows: Result<u32, CallError<DepError>> = db.call(|| async { Ok(3) }).await;
    assert_eq!(rows.unwrap(), 3);
    assert!(fail(&db).await.is_err());
    let counts = db.counts().await.unwrap();
    assert_eq!((counts.success, counts.failure), (1, 1));
    assert!(db.health().await.unwrap().is_healthy());
    // Spawned tasks can call it: the call's future is Send.
    let task = tokio::spawn({
        let db = db.clone();
        async move { db.call(|| async { Ok::<_, DepError>(4) }).await }
    });
    assert_eq!(task.await.unwrap().unwrap(), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn a_registry_starts_from_plain_tokio_and_answers_health_by_name() {
    let registry = warden::RegistryHandle::start().unwrap();
    let cache = registry.spawn("cache", plain_config()).await.unwrap();
    succeed(&cache).await.unwrap();
    let health = registry
        .health_of("cache")
        .await
        .unwrap()
        .expect("a registered service");
    assert_eq!(health.service, "cache");
    assert!(registry.health_of("nope").await.unwrap().is_none());
    assert_eq!(registry.list().await.unwrap(), ["cache"]);
}

/// Polls `future` once with a no-op waker, outside any runtime.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn outside_any_runtime_a_ready_call_works_and_a_waiting_one_says_why_it_cannot() {
    let handle = ServiceSupervisor::builder("anywhere")
        .config(plain_config())
        .start()
        .unwrap();
    let ready = poll_once(handle.call(|| async { Ok::<_, DepError>(1) }));
    assert!(matches!(ready, Poll::Ready(Ok(1))));
    // An attempt that has to wait needs a timer for its timeout: there is none here.
    let waiting = poll_once(handle.call(|| async {
        tokio::task::yield_now().await;
        Ok::<_, DepError>(2)
    }));
    match waiting {
        Poll::Ready(Err(error @ CallError::NoRuntime { attempts: 1 })) => {
            assert!(error.to_string().contains("outside a tokio runtime"));
        }
        other => panic!("expected NoRuntime, got {other:?}"),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let counts = runtime.block_on(handle.counts()).unwrap();
    assert_eq!((counts.success, counts.cancelled), (1, 1));
    assert_eq!(handle.in_flight(), 0);
}
