//! The outcome hand-off from callers to their supervisor: callers push reports (or count a
//! refusal in a tally) without waiting, and wake the supervisor at most once per batch window.
//!
//! The protocol is one flag beside a lock-free queue:
//! - a producer pushes its report, then sets `wake_pending` (a swap); if it was clear, the
//!   producer must wake the consumer (the supervisor) itself;
//! - while the flag is set, the consumer owns the draining: it drains at the wake-up and
//!   again after every batch window, and keeps the flag set as long as a pass found reports;
//! - after a pass that found nothing, the consumer clears the flag (a swap too) and looks at
//!   the queue once more: a report pushed meanwhile is either seen there (and the consumer
//!   keeps the draining, unless a producer has already taken the flag and is waking it), or
//!   its producer saw the cleared flag and wakes the consumer.
//!
//! Both sides change the flag with read-modify-write operations (acquire-release), which read
//! the latest value in its modification order: whichever swap comes second sees the other's,
//! and with it the report pushed (or the clearing done) before it. (A first version let the
//! producer skip the swap after a plain load that saw the flag set, relying on `SeqCst`
//! fences; loom reported a lost wake-up there. loom models `SeqCst` more weakly than C++
//! does, so that may have been a false alarm, but this version needs no such argument.)
//!
//! So no report is ever left behind with nobody due to drain it, and a lone caller making
//! back-to-back calls wakes the supervisor once, not once per call. loom
//! (`loom_handoff_*` in `src/actors/loom_tests.rs`) model-checks this under every interleaving (`RUSTFLAGS="--cfg warden_loom"`).

use std::fmt;

use actix::Message;

use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// Wakes the supervisor to drain the reports (sent at most once per batch window).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

/// Reports pending at most before a producer is told to wait for a drain (backpressure when
/// the supervisor cannot keep up).
pub(crate) const MAX_PENDING: usize = 64 * 1024;

/// Tallies a hand-off carries beside its queue (see [`Handoff::tally`]).
pub(crate) const TALLIES: usize = 18;

/// A multi-producer, single-consumer hand-off with a wake-up flag (see the module docs).
pub(crate) struct Handoff<R> {
    queue: Queue<R>,
    /// Events that carry nothing but their kind (a refused call), counted instead of queued: a
    /// burst of a million refusals costs a million increments, not a million queue entries.
    tallies: [AtomicU64; TALLIES],
    wake_pending: AtomicBool,
}

impl<R> fmt::Debug for Handoff<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handoff")
            .field("pending", &self.queue.len())
            .field("wake_pending", &self.wake_pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl<R> Default for Handoff<R> {
    fn default() -> Self {
        Handoff {
            queue: Queue::default(),
            tallies: std::array::from_fn(|_| AtomicU64::new(0)),
            wake_pending: AtomicBool::new(false),
        }
    }
}

impl<R> Handoff<R> {
    /// Pushes `report`. Returns true when the caller must wake the consumer: nobody else is
    /// due to drain it.
    pub(crate) fn push(&self, report: R) -> bool {
        self.queue.push(report);
        !self.wake_pending.swap(true, Ordering::AcqRel)
    }

    /// Counts one event of kind `kind` (below [`TALLIES`]). Returns true when the caller must
    /// wake the consumer, as [`push`](Self::push) does.
    pub(crate) fn tally(&self, kind: usize) -> bool {
        self.tallies[kind].fetch_add(1, Ordering::AcqRel);
        !self.wake_pending.swap(true, Ordering::AcqRel)
    }

    /// Takes the tallies counted since the last call (the consumer, with each pass).
    pub(crate) fn take_tallies(&self) -> [u64; TALLIES] {
        std::array::from_fn(|kind| self.tallies[kind].swap(0, Ordering::AcqRel))
    }

    fn tallied(&self) -> bool {
        self.tallies
            .iter()
            .any(|tally| tally.load(Ordering::Acquire) > 0)
    }

    /// Pops the reports pending now (not those pushed while draining, so a pass always ends)
    /// and hands each to `apply`. Returns how many there were.
    pub(crate) fn drain(&self, mut apply: impl FnMut(R)) -> usize {
        let pending = self.queue.len();
        let mut drained = 0;
        while drained < pending {
            let Some(report) = self.queue.pop() else {
                break;
            };
            apply(report);
            drained += 1;
        }
        drained
    }

    /// Called by the consumer after a pass that found nothing: it stops draining on its own
    /// and lets producers wake it again. Returns true when it must go on draining anyway
    /// (reports arrived meanwhile and no producer has taken over the wake-up).
    pub(crate) fn rest(&self) -> bool {
        self.wake_pending.swap(false, Ordering::AcqRel);
        (!self.queue.is_empty() || self.tallied())
            && !self.wake_pending.swap(true, Ordering::AcqRel)
    }

    /// Whether so many reports are pending that a producer should wait for a drain.
    pub(crate) fn is_backed_up(&self) -> bool {
        self.queue.len() >= MAX_PENDING
    }

    /// Whether the consumer is due to drain (a wake-up was sent, or a pass is scheduled).
    #[cfg(any(test, warden_loom))]
    pub(crate) fn wake_pending(&self) -> bool {
        self.wake_pending.load(Ordering::Acquire)
    }

    /// Reports pending now.
    #[cfg(any(test, warden_loom))]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// The queue: crossbeam's lock-free segmented queue (it allocates nothing until the first
/// push, so an idle supervisor pays only its two cache-padded indices).
#[cfg(not(warden_loom))]
struct Queue<R>(crossbeam_queue::SegQueue<R>);

#[cfg(not(warden_loom))]
impl<R> Default for Queue<R> {
    fn default() -> Self {
        Queue(crossbeam_queue::SegQueue::new())
    }
}

#[cfg(not(warden_loom))]
impl<R> Queue<R> {
    fn push(&self, report: R) {
        self.0.push(report);
    }
    fn pop(&self) -> Option<R> {
        self.0.pop()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Under loom the queue is a mutex-guarded deque: loom checks the flag protocol around it (a
/// linearizable queue either way); crossbeam's own internals are crossbeam's to check.
#[cfg(warden_loom)]
struct Queue<R>(loom::sync::Mutex<std::collections::VecDeque<R>>);

#[cfg(warden_loom)]
impl<R> Default for Queue<R> {
    fn default() -> Self {
        Queue(loom::sync::Mutex::new(std::collections::VecDeque::new()))
    }
}

#[cfg(warden_loom)]
impl<R> Queue<R> {
    fn push(&self, report: R) {
        self.0.lock().unwrap().push_back(report);
    }
    fn pop(&self) -> Option<R> {
        self.0.lock().unwrap().pop_front()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_push_wakes_then_the_consumer_owns_the_draining() {
        let handoff = Handoff::default();
        assert!(handoff.push(1));
        assert!(!handoff.push(2), "a wake-up is already due");
        let mut seen = Vec::new();
        assert_eq!(handoff.drain(|r| seen.push(r)), 2);
        assert_eq!(seen, [1, 2]);
        assert!(
            !handoff.push(3),
            "the consumer drains again after the batch window"
        );
        assert_eq!(handoff.drain(|_| {}), 1);
        assert!(!handoff.rest(), "nothing pending: the consumer rests");
        assert!(!handoff.wake_pending());
        assert!(handoff.push(4), "after a rest the next push wakes again");
    }

    #[test]
    fn rest_keeps_draining_when_reports_arrived() {
        let handoff = Handoff::default();
        assert!(handoff.push(1));
        handoff.drain(|_| {});
        // A report the consumer has not drained yet: it keeps the draining.
        assert!(!handoff.push(2));
        assert!(handoff.rest());
        assert!(handoff.wake_pending());
        assert_eq!(handoff.len(), 1);
    }

    #[test]
    fn a_pass_ends_even_while_producers_keep_pushing() {
        let handoff = Handoff::default();
        for i in 0..10 {
            handoff.push(i);
        }
        let mut n = 0;
        let drained = handoff.drain(|_| {
            n += 1;
            if n < 100 {
                handoff.push(0);
            }
        });
        assert_eq!(drained, 10);
        assert_eq!(handoff.len(), 10);
    }
}
