//! loom models of the lock-free cells a call uses in its caller's task, each checked alone: the
//! bulkhead (and its observed limit), the admission word, the outcome hand-off and the call settings. Every interleaving (and every
//! reordering the memory orderings allow) is explored.
//!
//! Run: `RUSTFLAGS="--cfg warden_loom" cargo test --lib --release loom_` (CI does, with its own
//! target directory so the normal build is untouched).

use std::sync::Arc;
use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use tokio::time::Instant;

use super::shared::admission::{Admission, AdmissionWord};
use super::shared::bulkhead::SlotGuard;
use super::shared::handoff::Handoff;
use super::shared::settings::{CallSettings, SettingsCell};
use super::shared::throttle::ThrottleGate;
use super::shared::Published;
use crate::breaker::BreakerState;

fn published(max_in_flight: u32) -> Arc<Published> {
    let settings = CallSettings {
        timeout: None,
        deadline: None,
        ..CallSettings::default()
    };
    Arc::new(Published::new(
        crate::observe::ServiceMetrics::register("loom"),
        max_in_flight,
        settings,
    ))
}

#[test]
fn loom_bulkhead_never_admits_more_than_its_limit_and_returns_every_slot() {
    loom::model(|| {
        let shared = published(1);
        let holders = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let shared = Arc::clone(&shared);
                let holders = Arc::clone(&holders);
                thread::spawn(move || {
                    if let Some(slot) =
                        SlotGuard::try_take(&shared, crate::criticality::Criticality::Default)
                    {
                        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 1, "{now} calls hold slots of a bulkhead of 1");
                        holders.fetch_sub(1, Ordering::SeqCst);
                        drop(slot);
                    }
                })
            })
            .collect();
        if let Some(slot) = SlotGuard::try_take(&shared, crate::criticality::Criticality::Default) {
            let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(now <= 1, "{now} calls hold slots of a bulkhead of 1");
            holders.fetch_sub(1, Ordering::SeqCst);
            drop(slot);
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(shared.bulkhead.in_flight(), 0, "every slot comes back");
    });
}

/// Observe-only mode: with an observed limit of 1 in a bulkhead of 2, both calls get a slot,
/// at most one of them counted among the calls the limit admits, and the count comes back.
#[test]
fn loom_an_observed_limit_admits_at_most_its_limit_and_lets_the_rest_through() {
    loom::model(|| {
        let shared = published(2);
        shared.bulkhead.set_observed_limit(Some(1));
        let admitted = Arc::new(AtomicUsize::new(0));
        let take = |shared: &Arc<Published>, admitted: &AtomicUsize| {
            let slot = SlotGuard::try_take(shared, crate::criticality::Criticality::Default)
                .expect("the bulkhead of 2 has room");
            if !slot.over_limit {
                let now = admitted.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(
                    now <= 1,
                    "{now} calls admitted under an observed limit of 1"
                );
                admitted.fetch_sub(1, Ordering::SeqCst);
            }
            drop(slot);
        };
        let other = {
            let (shared, admitted) = (Arc::clone(&shared), Arc::clone(&admitted));
            thread::spawn(move || take(&shared, &admitted))
        };
        take(&shared, &admitted);
        other.join().unwrap();
        assert_eq!(shared.bulkhead.in_flight(), 0, "every slot comes back");
        // And the count under the limit too: a call now is admitted.
        assert!(
            !SlotGuard::try_take(&shared, crate::criticality::Criticality::Default)
                .unwrap()
                .over_limit
        );
    });
}

#[test]
fn loom_admission_never_pairs_a_state_with_another_states_epoch_or_open_period() {
    loom::model(|| {
        let shared = Arc::new(AdmissionWord::default());
        let far = Instant::now() + Duration::from_secs(3600);
        let publisher = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                shared.publish(BreakerState::Open, 1, Some(far));
                shared.publish(BreakerState::HalfOpen, 2, None);
                shared.publish(BreakerState::Closed, 3, None);
            })
        };
        for _ in 0..2 {
            match shared.admit() {
                // Only the Closed states admit here, each with its own epoch.
                Admission::Local(permit) => assert!(
                    permit.epoch() == 0 || permit.epoch() == 3,
                    "admitted with epoch {}",
                    permit.epoch()
                ),
                // Open is only ever read with its own open period (published before it).
                Admission::Refused(retry_after) => {
                    assert!(retry_after.is_some_and(|left| left > Duration::from_secs(3000)));
                }
                // HalfOpen: probes are the supervisor's to count.
                Admission::AskSupervisor => {}
                // Never the published state's answer (observe-only mode makes it in the gates).
                Admission::Shadow => panic!("the admission word never answers Shadow"),
            }
        }
        publisher.join().unwrap();
        assert!(matches!(shared.admit(), Admission::Local(p) if p.epoch() == 3));
    });
}

#[test]
fn loom_handoff_never_leaves_a_report_with_nobody_due_to_drain_it() {
    loom::model(|| {
        let handoff = Arc::new(Handoff::<u32>::default());
        // The consumer was woken by an earlier report and owns the draining.
        assert!(handoff.push(0));
        let wakes = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (1..=2)
            .map(|report| {
                let handoff = Arc::clone(&handoff);
                let wakes = Arc::clone(&wakes);
                thread::spawn(move || {
                    if handoff.push(report) {
                        wakes.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // One draining session: drain, then rest unless reports arrived meanwhile.
        let mut drained = handoff.drain(|_| {});
        while handoff.rest() {
            drained += handoff.drain(|_| {});
        }
        for p in producers {
            p.join().unwrap();
        }
        let left = handoff.len();
        if left > 0 {
            // Someone must be due to drain them: a producer that sent a wake-up after the
            // consumer rested.
            assert!(
                wakes.load(Ordering::SeqCst) > 0,
                "{left} report(s) left and no wake-up sent"
            );
            assert!(handoff.wake_pending());
            // That wake-up's session drains them.
            drained += handoff.drain(|_| {});
            while handoff.rest() {
                drained += handoff.drain(|_| {});
            }
        }
        assert_eq!(drained, 3);
        assert_eq!(handoff.len(), 0);
    });
}

#[test]
fn loom_handoff_never_leaves_a_tallied_refusal_with_nobody_due_to_drain_it() {
    loom::model(|| {
        let handoff = Arc::new(Handoff::<u32>::default());
        // The consumer was woken by an earlier report and owns the draining.
        assert!(handoff.push(0));
        let wakes = Arc::new(AtomicUsize::new(0));
        let producer = {
            let handoff = Arc::clone(&handoff);
            let wakes = Arc::clone(&wakes);
            thread::spawn(move || {
                if handoff.tally(1) {
                    wakes.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // One draining session: drain and take the tallies, then rest unless more came.
        let mut drained = handoff.drain(|_| {});
        let mut tallied = handoff.take_tallies()[1];
        while handoff.rest() {
            drained += handoff.drain(|_| {});
            tallied += handoff.take_tallies()[1];
        }
        producer.join().unwrap();
        if tallied == 0 {
            // The refusal came after the consumer rested: its producer must wake it.
            assert_eq!(
                wakes.load(Ordering::SeqCst),
                1,
                "a refusal left and no wake-up sent"
            );
            assert!(handoff.wake_pending());
            tallied += handoff.take_tallies()[1];
        }
        assert_eq!((drained, tallied), (1, 1));
    });
}

#[test]
fn loom_throttle_refuses_exactly_the_published_share_whatever_the_interleaving() {
    loom::model(|| {
        let shared = Arc::new(ThrottleGate::default());
        shared.publish([0.5; 3]);
        let refused = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let shared = Arc::clone(&shared);
                let refused = Arc::clone(&refused);
                thread::spawn(move || {
                    for _ in 0..2 {
                        if shared
                            .refuses(crate::criticality::Criticality::Default)
                            .is_some()
                        {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(refused.load(Ordering::SeqCst), 2, "half of 4 calls");
    });
}

#[test]
fn loom_call_settings_are_read_whole_while_a_reload_replaces_them() {
    loom::model(|| {
        let before = CallSettings {
            timeout: Some(Duration::from_secs(1)),
            deadline: None,
            max_hedges: 0,
            hedge_all_calls: false,
        };
        let after = CallSettings {
            timeout: None,
            deadline: Some(Duration::from_secs(2)),
            max_hedges: 2,
            hedge_all_calls: true,
        };
        let shared = Arc::new(SettingsCell::new(before));
        let writer = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || shared.store(after))
        };
        let read = shared.load();
        let whole = |s: &CallSettings| (s.timeout, s.deadline, s.max_hedges, s.hedge_all_calls);
        assert!(
            whole(&read) == whole(&before) || whole(&read) == whole(&after),
            "a torn read: {read:?}"
        );
        writer.join().unwrap();
        assert_eq!(whole(&shared.load()), whole(&after));
    });
}
