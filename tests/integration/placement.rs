//! Where a call runs: in the caller's task. The supervisor decides (trips, retries, probes,
//! budget) and records; it is never waited for on the success path, and a dropped call is
//! cancelled where it stands.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::*;
use warden::actors::BackgroundRuntime;
use warden::prelude::*;

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Blocks the arbiter's thread until the returned sender is dropped (or sent on).
fn block_arbiter(runtime: &BackgroundRuntime) -> mpsc::Sender<()> {
    let (release, blocked) = mpsc::channel::<()>();
    let (started, wait_started) = mpsc::channel::<()>();
    runtime.arbiter(0).spawn(async move {
        started.send(()).unwrap();
        // Blocks this arbiter's thread: the supervisor cannot handle anything meanwhile.
        let _ = blocked.recv();
    });
    wait_started.recv().unwrap();
    release
}

#[test]
fn successful_calls_never_wait_for_the_supervisor_and_queries_read_their_own_writes() {
    let runtime = BackgroundRuntime::start(1).unwrap();
    let handle = ServiceSupervisor::builder("cache")
        .config(plain_config())
        .start_in_arbiter(runtime.arbiter(0))
        .unwrap();
    let tokio_rt = multi_thread_runtime();
    let release = block_arbiter(&runtime);
    // The supervisor's thread is blocked, yet every call completes: none waits for it.
    tokio_rt.block_on(async {
        for i in 0..1000u32 {
            let value = handle
                .call(move || async move { Ok::<_, DepError>(i) })
                .await;
            assert_eq!(value.unwrap(), i);
        }
    });
    drop(release);
    // A query drains what is pending first: it sees every call.
    let counts = tokio_rt.block_on(handle.counts()).unwrap();
    assert_eq!((counts.success, counts.attempts), (1000, 1000));
    assert_eq!(counts.total(), 1000);
    let health = tokio_rt.block_on(handle.health()).unwrap();
    // The health window (100 calls by default) is full of this caller's successes.
    assert_eq!((health.stats.calls, health.stats.failures), (100, 0));
    runtime.stop();
}

#[test]
fn operations_run_on_the_callers_threads_and_spread_over_them() {
    let handle = ServiceSupervisor::builder("spread")
        .config(plain_config())
        .start()
        .unwrap();
    let tokio_rt = multi_thread_runtime();
    let threads = tokio_rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let mut seen = std::collections::BTreeSet::new();
                    for _ in 0..50 {
                        let thread = handle
                            .call(|| async {
                                tokio::task::yield_now().await;
                                Ok::<_, DepError>(std::thread::current().id())
                            })
                            .await
                            .unwrap();
                        seen.insert(format!("{thread:?}"));
                    }
                    seen
                })
            })
            .collect();
        let mut all = std::collections::BTreeSet::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    // Only the runtime's two workers ran operations (never the supervisor's thread).
    assert!(!threads.is_empty() && threads.len() <= 2, "{threads:?}");
    let counts = tokio_rt.block_on(handle.counts()).unwrap();
    assert_eq!(counts.success, 64 * 50);
}

#[test]
fn exactly_one_probe_runs_while_half_open_however_many_callers_race() {
    let handle = ServiceSupervisor::builder("probed")
        .config(SupervisorConfig {
            breaker: BreakerConfig::consecutive(1).open_for(Duration::from_millis(1)),
            ..plain_config()
        })
        .start()
        .unwrap();
    let tokio_rt = multi_thread_runtime();
    tokio_rt.block_on(async {
        assert!(fail(&handle).await.is_err());
        // The open period is 1 ms: once it has passed, every caller races for the probe.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let started = Arc::new(AtomicU32::new(0));
        let (release, hold) = tokio::sync::watch::channel(false);
        let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..200 {
            let handle = handle.clone();
            let started = Arc::clone(&started);
            let hold = hold.clone();
            let answers = answers.clone();
            tokio::spawn(async move {
                let answer = handle
                    .call(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        let mut hold = hold.clone();
                        async move {
                            // The probe hangs until every other caller has been answered.
                            let _ = hold.wait_for(|go| *go).await;
                            Ok::<_, DepError>(())
                        }
                    })
                    .await;
                let _ = answers.send(answer);
            });
        }
        // Every caller but the probe is refused while the probe hangs.
        for _ in 0..199 {
            let answer = answered.recv().await.unwrap();
            assert!(matches!(answer, Err(CallError::Open { .. })), "{answer:?}");
        }
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "exactly one probe started"
        );
        release.send(true).unwrap();
        answered.recv().await.unwrap().unwrap();
        assert_eq!(
            handle.breaker_status().await.unwrap().state,
            BreakerState::Closed
        );
    });
}

#[actix::test]
async fn a_dropped_call_is_cancelled_frees_its_slot_and_is_counted() {
    pause_aligned().await;
    let handle = start(
        "dropped",
        SupervisorConfig {
            max_in_flight: 1,
            ..plain_config()
        },
    );
    let ran_to_end = Arc::new(AtomicU32::new(0));
    let op = {
        let ran_to_end = Arc::clone(&ran_to_end);
        move || {
            let ran_to_end = Arc::clone(&ran_to_end);
            async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                ran_to_end.fetch_add(1, Ordering::SeqCst);
                Ok::<_, DepError>(())
            }
        }
    };
    // The caller gives up after 100 ms: its call is dropped.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), handle.call(op.clone())).await;
    assert!(gave_up.is_err());
    // The slot is free at once: the next call is admitted, not Overloaded.
    assert_eq!(handle.in_flight(), 0);
    succeed(&handle).await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        ran_to_end.load(Ordering::SeqCst),
        0,
        "the attempt was cancelled"
    );
    let counts = handle.counts().await.unwrap();
    assert_eq!((counts.cancelled, counts.success), (1, 1));
    assert_eq!(counts.total(), 1, "a cancelled call received no answer");
}

#[actix::test]
async fn a_dropped_probe_hands_its_permit_back_at_once() {
    pause_aligned().await;
    let handle = start(
        "probe-dropped",
        SupervisorConfig {
            breaker: BreakerConfig::consecutive(1).open_for(Duration::from_secs(1)),
            ..plain_config()
        },
    );
    assert!(fail(&handle).await.is_err());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The probe's caller gives up after 100 ms...
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        slow(&handle, Duration::from_secs(30)),
    )
    .await;
    assert!(gave_up.is_err());
    // ...and the probe slot is free at once (not after `half_open_max_wait`): the next call is
    // the probe, and closes the breaker.
    succeed(&handle).await.unwrap();
    assert_eq!(
        handle.breaker_status().await.unwrap().state,
        BreakerState::Closed
    );
}

#[actix::test]
async fn a_call_sent_to_the_address_runs_the_same_attempt_loop() {
    pause_aligned().await;
    let handle = start(
        "by-message",
        SupervisorConfig {
            retry: RetryConfig::exponential(3, Duration::from_millis(100)),
            ..plain_config()
        },
    );
    let hits = Hits::default();
    let answer = handle
        .addr()
        .send(Call::new({
            let hits = hits.clone();
            move || {
                let n = hits.hit();
                async move {
                    if n < 3 {
                        Err(DepError("flaky"))
                    } else {
                        Ok(n)
                    }
                }
            }
        }))
        .await
        .unwrap();
    assert_eq!(answer.unwrap(), 3);
    let counts = handle.counts().await.unwrap();
    assert_eq!((counts.success, counts.attempts, counts.retries), (1, 3, 2));
}
