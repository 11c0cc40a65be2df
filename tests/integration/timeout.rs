//! Timeouts cancel the operation (its future is dropped), and the overall deadline bounds the
//! whole call across retries.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use warden::prelude::*;

/// Sets its flag when dropped: proves the timed-out future was cancelled.
struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[actix::test]
async fn timed_out_attempt_is_dropped_not_left_running() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_millis(500));
    let svc = start("svc", config);
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (d, f) = (dropped.clone(), finished.clone());
    let started = tokio::time::Instant::now();
    let result = svc
        .call(move || {
            let guard = DropGuard(d.clone());
            let finished = f.clone();
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(60)).await;
                finished.store(true, Ordering::SeqCst);
                Ok::<(), DepError>(())
            }
        })
        .await;
    assert!(matches!(result, Err(CallError::TimedOut { attempts: 1 })));
    assert_about(started.elapsed(), Duration::from_millis(500));
    assert!(
        dropped.load(Ordering::SeqCst),
        "future dropped at the timeout"
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(
        !finished.load(Ordering::SeqCst),
        "never resumed after the timeout"
    );
    assert_eq!(svc.counts().await.unwrap().timeout, 1);
}

#[actix::test]
async fn deadline_bounds_the_whole_call_across_retries() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_secs(1));
    config.deadline = Some(Duration::from_millis(2500));
    config.retry = RetryConfig::constant(10, Duration::from_millis(100))
        .budget(warden::retry::BudgetConfig::off());
    let svc = start("svc", config);
    let log = AttemptLog::default();
    let l = log.clone();
    let started = tokio::time::Instant::now();
    let result = svc
        .call(move || {
            l.push_now();
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<(), DepError>(())
            }
        })
        .await;
    // Attempts at 0, 1.1 s and 2.2 s; the third is cut at the deadline (2.5 s).
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
    assert_eq!(log.len(), 3);
    assert_about(started.elapsed(), Duration::from_millis(2500));
}

#[actix::test]
async fn no_retry_is_started_when_its_delay_would_pass_the_deadline() {
    pause_aligned().await;
    let mut config = plain_config();
    config.timeout = Some(Duration::from_secs(1));
    config.deadline = Some(Duration::from_secs(2));
    config.retry =
        RetryConfig::constant(5, Duration::from_secs(3)).budget(warden::retry::BudgetConfig::off());
    let svc = start("svc", config);
    let hits = Hits::default();
    let h = hits.clone();
    let result = svc
        .call(move || {
            h.hit();
            async { Err::<(), _>(DepError("503")) }
        })
        .await;
    // The deadline is why the call ended, and the last error is kept.
    assert!(
        matches!(
            result,
            Err(CallError::DeadlineExceeded {
                attempts: 1,
                last: Some(DepError("503"))
            })
        ),
        "{result:?}"
    );
    assert_eq!(hits.get(), 1);
}
