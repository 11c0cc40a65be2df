//! A call's first attempt runs in the caller's task from its first poll: a value ready at once
//! is answered and recorded (through the hand-off); an attempt that is pending goes on in the
//! same task, without losing a wake-up that happened during its first poll, and is timed from
//! its start.

use crate::common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::*;
use warden::prelude::*;

/// Pending at its first poll, after waking its waker at once (a wake-up a poll with a no-op
/// waker would swallow); ready at the next poll.
struct WakesThenReady {
    polled: bool,
}

impl Future for WakesThenReady {
    type Output = Result<u32, DepError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polled {
            return Poll::Ready(Ok(7));
        }
        self.polled = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[actix::test]
async fn a_value_at_the_first_poll_is_answered_and_recorded() {
    pause_aligned().await;
    let svc = start("svc", plain_config());
    let hits = Hits::default();
    let h = hits.clone();
    let value = svc
        .call(move || {
            h.hit();
            async { Ok::<u32, DepError>(42) }
        })
        .await;
    assert_eq!(value.unwrap(), 42);
    assert_eq!(hits.get(), 1);
    assert_eq!(svc.in_flight(), 0);
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.attempts), (1, 1));
    let health = svc.health().await.unwrap();
    assert_eq!(health.stats.calls, 1);
}

#[actix::test]
async fn a_wake_up_during_the_first_poll_is_not_lost() {
    pause_aligned().await;
    let svc = start("svc", plain_config());
    // A lost wake-up would leave the call pending forever: fail instead of hanging.
    let value = tokio::time::timeout(
        Duration::from_secs(60),
        svc.call(|| WakesThenReady { polled: false }),
    )
    .await
    .expect("the call completes");
    assert_eq!(value.unwrap(), 7);
    settle().await;
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.attempts), (1, 1));
}

#[actix::test]
async fn a_yielding_operation_completes_in_its_own_task() {
    pause_aligned().await;
    let svc = start("svc", plain_config());
    let value = svc
        .call(|| async {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            Ok::<u32, DepError>(3)
        })
        .await;
    assert_eq!(value.unwrap(), 3);
}

#[actix::test]
async fn a_pending_first_attempt_is_timed_from_its_start() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_millis(100));
    let svc = start("svc", config);
    let started = tokio::time::Instant::now();
    let result = slow(&svc, Duration::from_secs(1)).await;
    assert!(matches!(result, Err(CallError::TimedOut { attempts: 1 })));
    assert_about(started.elapsed(), Duration::from_millis(100));
}
