//! `Call::coalesce`: calls of one key in flight together reach the dependency once and share
//! its answer; errors and panics are shared too; a dropped follower or a cancelled leader
//! strands nobody; counts (and the exported metric) agree with what the callers saw.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use tokio::time::Instant;
use warden::observe::{self, PrometheusHandle};
use warden::prelude::*;

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| observe::install_recorder().expect("first recorder of this process"))
}

/// `warden_calls_total{service, outcome}` as exported.
fn exported_calls(service: &str, outcome: &str) -> u64 {
    let text = recorder().render();
    let series = format!("warden_calls_total{{service=\"{service}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.parse().expect("a number"))
}

/// A coalesced call of `key` to a dependency that takes `latency`, then answers `answer`;
/// every invocation is counted in `hits`.
fn slow_call(
    hits: &Hits,
    key: &str,
    latency: Duration,
    answer: Result<u32, DepError>,
) -> Call<u32, DepError> {
    let hits = hits.clone();
    Call::new(move || {
        hits.hit();
        let answer = answer.clone();
        async move {
            tokio::time::sleep(latency).await;
            answer
        }
    })
    .coalesce(key)
    .boxed()
}

#[actix::test]
async fn a_thousand_concurrent_calls_for_one_key_reach_a_slow_dependency_once() {
    recorder();
    pause_aligned().await;
    // One bulkhead slot: the followers take none, or 999 of them would be refused.
    let svc = start(
        "co-1000",
        SupervisorConfig {
            max_in_flight: 1,
            ..plain_config()
        },
    );
    let hits = Hits::default();
    let begun = Instant::now();
    let answers = join_all((0..1000).map(|_| {
        let call = slow_call(&hits, "user:42", Duration::from_millis(100), Ok(42));
        svc.send(call)
    }))
    .await;
    assert_about(begun.elapsed(), Duration::from_millis(100));
    assert_eq!(hits.get(), 1, "the dependency was reached once");
    assert!(answers.iter().all(|a| matches!(a, Ok(42))), "{answers:?}");
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.success, counts.coalesced, counts.attempts),
        (1, 999, 1)
    );
    assert_eq!(counts.total(), 1000);
    assert_eq!(svc.in_flight(), 0);
    // The exported counter agrees.
    assert_eq!(exported_calls("co-1000", "success"), 1);
    assert_eq!(exported_calls("co-1000", "coalesced"), 999);

    // The flight is over: the next call of the key runs again (coalescing is not a cache).
    let again = svc
        .send(slow_call(&hits, "user:42", Duration::from_millis(1), Ok(7)))
        .await;
    assert_eq!(again.unwrap(), 7);
    assert_eq!(hits.get(), 2);
}

#[actix::test]
async fn followers_of_a_failing_leader_get_the_same_error() {
    pause_aligned().await;
    let svc = start("co-fail", plain_config());
    let hits = Hits::default();
    let answers = join_all((0..10).map(|_| {
        let call = slow_call(&hits, "k", Duration::from_millis(10), Err(DepError("down")));
        svc.send(call)
    }))
    .await;
    assert_eq!(hits.get(), 1);
    for answer in &answers {
        match answer {
            Err(CallError::Failed {
                last: error,
                attempts,
            }) => {
                assert_eq!((error, *attempts), (&DepError("down"), 1));
            }
            other => panic!("expected the leader's Failed, got {other:?}"),
        }
    }
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.failure, counts.coalesced, counts.attempts),
        (1, 9, 1)
    );
    // The breaker and the health window saw one failure, not ten.
    assert_eq!(svc.breaker_status().await.unwrap().window.failures, 1);
    assert_eq!(svc.health().await.unwrap().stats.failures, 1);
}

fn boom() -> Result<u32, DepError> {
    panic!("dependency bug")
}

#[actix::test]
async fn followers_of_a_panicking_leader_are_answered_panicked() {
    pause_aligned().await;
    let svc = start("co-panic", plain_config());
    let hits = Hits::default();
    let call = || {
        let hits = hits.clone();
        Call::new(move || {
            hits.hit();
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                boom()
            }
        })
        .coalesce("k")
    };
    let answers = join_all((0..5).map(|_| svc.send(call()))).await;
    assert_eq!(hits.get(), 1);
    for answer in &answers {
        match answer {
            Err(CallError::Panicked { message, attempts }) => {
                assert_eq!((message.as_str(), *attempts), ("dependency bug", 1));
            }
            other => panic!("expected Panicked, got {other:?}"),
        }
    }
    assert!(svc.is_alive());
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.panic, counts.coalesced), (1, 4));
}

#[actix::test]
async fn a_dropped_follower_frees_its_place_and_the_others_still_get_the_answer() {
    pause_aligned().await;
    let svc = start("co-drop", plain_config());
    let hits = Hits::default();
    let leader = svc.send(slow_call(&hits, "k", Duration::from_millis(100), Ok(1)));
    let kept = svc.send(slow_call(&hits, "k", Duration::from_millis(100), Ok(2)));
    // 100 followers whose callers give up after 10 ms.
    let impatient = join_all((0..100).map(|_| {
        let call = svc.send(slow_call(&hits, "k", Duration::from_millis(100), Ok(3)));
        tokio::time::timeout(Duration::from_millis(10), call)
    }));
    let (leader, kept, impatient) = tokio::join!(leader, kept, impatient);
    assert!(impatient.iter().all(Result::is_err), "all gave up");
    assert_eq!((leader.unwrap(), kept.unwrap()), (1, 1));
    assert_eq!(hits.get(), 1);
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.success, counts.coalesced, counts.cancelled),
        (1, 1, 100)
    );
    assert_eq!(counts.total(), 2, "the cancelled got no answer");
    assert_eq!(svc.in_flight(), 0);
}

#[actix::test]
async fn a_cancelled_leader_does_not_strand_its_followers() {
    pause_aligned().await;
    let svc = start("co-cancel", plain_config());
    let hits = Hits::default();
    let begun = Instant::now();
    // The leader's caller gives up after 10 ms; its followers must not wait forever.
    let leader = tokio::time::timeout(
        Duration::from_millis(10),
        svc.send(slow_call(&hits, "k", Duration::from_millis(100), Ok(1))),
    );
    let followers = join_all((0..5).map(|_| {
        let svc = svc.clone();
        let call = slow_call(&hits, "k", Duration::from_millis(100), Ok(1));
        async move {
            let answer = svc.send(call).await;
            (answer, begun.elapsed())
        }
    }));
    // (A stranded follower would wait forever: the virtual clock turns that into a failure.)
    let followers = tokio::time::timeout(Duration::from_secs(60), followers);
    let (leader, followers) = tokio::join!(leader, followers);
    assert!(leader.is_err(), "the leader was cancelled");
    let followers = followers.expect("no follower is stranded");
    // One follower led a new flight at 10 ms; everyone got its answer at 110 ms.
    assert_eq!(hits.get(), 2, "once for each leader");
    for (answer, at) in followers {
        assert_eq!(answer.unwrap(), 1);
        assert_about(at, Duration::from_millis(110));
    }
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (
            counts.success,
            counts.coalesced,
            counts.cancelled,
            counts.attempts
        ),
        (1, 4, 1, 2)
    );
    assert_eq!(svc.in_flight(), 0);
}

#[actix::test]
async fn distinct_keys_and_uncoalesced_calls_do_not_coalesce() {
    pause_aligned().await;
    let svc = start("co-keys", plain_config());
    let hits = Hits::default();
    let keyed = join_all((0..10).map(|i| {
        svc.send(slow_call(
            &hits,
            &format!("k{i}"),
            Duration::from_millis(10),
            Ok(i),
        ))
    }));
    let plain = join_all((0..10).map(|_| {
        let hits = hits.clone();
        svc.call(move || {
            hits.hit();
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<u32, DepError>(100)
            }
        })
    }));
    // The same key with another answer type: not coalesced with the u32 calls.
    let typed = {
        let hits = hits.clone();
        svc.send(
            Call::new(move || {
                hits.hit();
                async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok::<String, DepError>("text".into())
                }
            })
            .coalesce("k0"),
        )
    };
    let (keyed, plain, typed) = tokio::join!(keyed, plain, typed);
    let keyed: Vec<u32> = keyed.into_iter().map(Result::unwrap).collect();
    assert_eq!(keyed, (0..10).collect::<Vec<_>>());
    assert!(plain.into_iter().all(|a| a.unwrap() == 100));
    assert_eq!(typed.unwrap(), "text");
    assert_eq!(hits.get(), 21);
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.coalesced), (21, 0));
}

#[actix::test]
async fn a_followers_fallback_applies_to_its_copy_of_the_error() {
    pause_aligned().await;
    let svc = start("co-fallback", plain_config());
    let hits = Hits::default();
    let leader = svc.send(slow_call(
        &hits,
        "k",
        Duration::from_millis(10),
        Err(DepError("down")),
    ));
    let with_fallback = svc.send(
        slow_call(&hits, "k", Duration::from_millis(10), Err(DepError("down"))).fallback(|error| {
            match error {
                CallError::Failed { .. } => Ok(0),
                other => Err(other),
            }
        }),
    );
    let without = svc.send(slow_call(
        &hits,
        "k",
        Duration::from_millis(10),
        Err(DepError("down")),
    ));
    let (leader, with_fallback, without) = tokio::join!(leader, with_fallback, without);
    assert!(matches!(leader, Err(CallError::Failed { .. })));
    assert_eq!(with_fallback.unwrap(), 0);
    assert!(matches!(without, Err(CallError::Failed { .. })));
    assert_eq!(hits.get(), 1);
    let counts = svc.counts().await.unwrap();
    assert_eq!(
        (counts.failure, counts.fallback, counts.coalesced),
        (1, 1, 1)
    );
}

#[actix::test]
async fn a_leaders_fallback_is_its_own() {
    pause_aligned().await;
    let svc = start("co-leader-fallback", plain_config());
    let hits = Hits::default();
    let leader = svc.send(
        slow_call(&hits, "k", Duration::from_millis(10), Err(DepError("down"))).fallback(|_| Ok(0)),
    );
    let follower = svc.send(slow_call(
        &hits,
        "k",
        Duration::from_millis(10),
        Err(DepError("down")),
    ));
    let (leader, follower) = tokio::join!(leader, follower);
    assert_eq!(leader.unwrap(), 0);
    assert!(
        matches!(follower, Err(CallError::Failed { .. })),
        "the follower gets the real answer, not the leader's fallback: {follower:?}"
    );
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.fallback, counts.coalesced), (1, 1));
}

#[actix::test]
async fn a_call_that_finds_its_key_taken_once_it_has_a_slot_follows_and_gives_the_slot_back() {
    pause_aligned().await;
    // One token, then one per 10 ms, waited for up to 100 ms: two calls of one key both find
    // no flight, wait for their tokens, and only then take a slot.
    let svc = start(
        "co-race",
        SupervisorConfig {
            rate_limit: Some(
                RateLimitConfig::per_second(100.0)
                    .burst(1)
                    .max_wait(Duration::from_millis(100)),
            ),
            ..plain_config()
        },
    );
    succeed(&svc).await.unwrap();
    let hits = Hits::default();
    let first = svc.send(slow_call(&hits, "k", Duration::from_millis(100), Ok(1)));
    let second = svc.send(slow_call(&hits, "k", Duration::from_millis(100), Ok(2)));
    let watch = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        svc.in_flight()
    };
    let (first, second, in_flight) = tokio::join!(first, second, watch);
    assert_eq!((first.unwrap(), second.unwrap()), (1, 1));
    assert_eq!(hits.get(), 1);
    assert_eq!(in_flight, 1, "the follower gave its slot back");
    let counts = svc.counts().await.unwrap();
    assert_eq!((counts.success, counts.coalesced), (2, 1));
}
