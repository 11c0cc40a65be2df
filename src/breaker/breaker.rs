//! The breaker state machine: admission, outcome recording and time-driven transitions.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::config::BreakerConfig;
use super::outcome::{Outcome, OutcomeKind};
use super::state::BreakerState;
use super::totals::WindowSnapshot;
use super::transition::{Transition, TransitionReason};
use super::window::OutcomeWindow;

/// Undrained transitions kept at most; the oldest are dropped beyond this so a breaker whose
/// owner never drains stays bounded.
const MAX_PENDING_TRANSITIONS: usize = 64;

/// Deadline used when `now + duration` does not fit in an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Admission to make one call, issued by [`Breaker::try_acquire`] (or minted with
/// [`Permit::closed_at`] from a published [`Breaker::epoch`]).
///
/// Hand it back exactly once, to [`Breaker::record`] or [`Breaker::release`]: it is neither
/// `Copy` nor `Clone`, so the compiler sees to that. A permit issued before the breaker last
/// changed state is stale and its result is ignored.
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    epoch: u64,
    probe: bool,
}

impl Permit {
    /// True when the call is a HalfOpen probe whose result decides the next state.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// A permit for a call admitted without asking the breaker, by an owner that read
    /// `epoch` from [`Breaker::epoch`] while the state was Closed or Disabled, e.g. from a
    /// copy of the state published to other threads. It is recorded exactly like a permit from
    /// [`Breaker::try_acquire`] in that state; if the breaker has changed state since, it is
    /// stale and its result is ignored.
    ///
    /// Only Closed and Disabled admit every call, so only there may admission happen elsewhere;
    /// probes (HalfOpen) always come from [`Breaker::try_acquire`].
    #[inline]
    pub fn closed_at(epoch: u64) -> Permit {
        Permit {
            epoch,
            probe: false,
        }
    }

    /// The epoch the permit was issued in (see [`Breaker::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// A call refused by the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// The state that refused the call (Open, HalfOpen with every probe slot taken, or
    /// ForcedOpen).
    pub state: BreakerState,
    /// Time until the breaker admits a probe, when known (Open only).
    pub retry_after: Option<Duration>,
}

/// A circuit breaker: a pure state machine driven by the caller's clock.
///
/// Closed admits every call and trips to Open on the configured policies. Open rejects until
/// its duration elapses, then HalfOpen admits exactly `half_open_probes` probes: all
/// succeeding closes it, one failing reopens it for longer. ForcedOpen and Disabled are
/// manual and last until [`Breaker::reset`].
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    /// Incremented on every state change (and reset); stamps permits.
    epoch: u64,
    window: OutcomeWindow,
    consecutive_failures: u32,
    /// End of Open, or end of the half-open wait; `None` in the other states.
    deadline: Option<Instant>,
    /// Probes admitted in this HalfOpen whose result has not arrived.
    probes_in_flight: u32,
    /// Probes that succeeded in this HalfOpen.
    probe_successes: u32,
    /// Open-duration growth level: +1 per failed probe or half-open timeout, 0 on close.
    level: u32,
    rng: SmallRng,
    transitions: Vec<Transition>,
    /// Whether a trip policy that fires may open the breaker (see [`Breaker::hold_closed`]).
    may_trip: bool,
}

impl Breaker {
    /// A closed breaker. `config` is assumed validated ([`BreakerConfig::validate`]);
    /// `rng_seed` seeds the open-duration jitter.
    pub fn new(config: BreakerConfig, rng_seed: u64) -> Self {
        Breaker {
            window: OutcomeWindow::new(&config.window),
            config,
            state: BreakerState::Closed,
            epoch: 0,
            consecutive_failures: 0,
            deadline: None,
            probes_in_flight: 0,
            probe_successes: 0,
            level: 0,
            rng: SmallRng::seed_from_u64(rng_seed),
            transitions: Vec::new(),
            may_trip: true,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The state as of the last mutation (pending time-driven transitions not applied).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The stamp of the current state: it changes on every state change and on
    /// [`reset`](Self::reset), and every permit carries the one it was issued in. An owner that
    /// publishes the state for admission elsewhere publishes this with it (see
    /// [`Permit::closed_at`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// When the Open state ends; `Some` only while Open.
    pub fn open_until(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => self.deadline,
            _ => None,
        }
    }

    /// When [`Breaker::poll`] would next change the state: the end of Open, or the end of
    /// `half_open_max_wait` in HalfOpen. `None` in the other states.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Ask to make one call at `now`, applying due time-driven transitions first.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Permit, Rejected> {
        self.poll(now);
        match self.state {
            BreakerState::Closed | BreakerState::Disabled => Ok(self.permit(false)),
            BreakerState::HalfOpen => {
                if self.probes_in_flight + self.probe_successes < self.config.half_open_probes {
                    self.probes_in_flight += 1;
                    Ok(self.permit(true))
                } else {
                    Err(Rejected {
                        state: BreakerState::HalfOpen,
                        retry_after: None,
                    })
                }
            }
            BreakerState::Open => Err(Rejected {
                state: BreakerState::Open,
                retry_after: self.deadline.map(|end| end.saturating_duration_since(now)),
            }),
            BreakerState::ForcedOpen => Err(Rejected {
                state: BreakerState::ForcedOpen,
                retry_after: None,
            }),
        }
    }

    /// Report the outcome of the call admitted by `permit`. Stale permits are ignored.
    ///
    /// Time-driven transitions are not applied here: a probe result that arrives after
    /// `half_open_max_wait` but before the next `poll`/`try_acquire` still decides.
    #[inline]
    pub fn record(&mut self, permit: Permit, outcome: Outcome, now: Instant) {
        if permit.epoch != self.epoch {
            return;
        }
        match self.state {
            BreakerState::Closed => self.record_closed(outcome, now),
            BreakerState::HalfOpen if permit.probe => self.record_probe(outcome, now),
            _ => {}
        }
    }

    /// Holds a closed breaker closed (`true`) even when a trip policy fires, or lets it trip
    /// again (`false`): a keyed service's cap on open keys (Envoy's `max_ejection_percent`).
    /// Outcomes are still counted while it is held, so it trips at the next failure after it
    /// is let go if the policy still fires. Manual and time-driven transitions are unaffected.
    pub fn hold_closed(&mut self, hold: bool) {
        self.may_trip = !hold;
    }

    /// The call admitted by `permit` was abandoned without a result; same as
    /// [`OutcomeKind::Ignored`] (frees a probe slot).
    pub fn release(&mut self, permit: Permit, now: Instant) {
        self.record(permit, Outcome::ignored(Duration::ZERO), now);
    }

    /// Apply time-driven transitions due at `now` (Open → HalfOpen, HalfOpen timeout → Open).
    pub fn poll(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            BreakerState::Open => {
                self.change_state(
                    BreakerState::HalfOpen,
                    TransitionReason::OpenElapsed,
                    now,
                    None,
                );
                self.deadline = Some(add_saturating(now, self.config.half_open_max_wait));
            }
            BreakerState::HalfOpen => self.reopen(TransitionReason::HalfOpenTimeout, now),
            _ => {}
        }
    }

    /// Reject every call until [`Breaker::reset`].
    pub fn force_open(&mut self, now: Instant) {
        if self.state != BreakerState::ForcedOpen {
            self.change_state(
                BreakerState::ForcedOpen,
                TransitionReason::ForcedOpen,
                now,
                None,
            );
        }
    }

    /// Admit every call and record nothing until [`Breaker::reset`].
    pub fn disable(&mut self, now: Instant) {
        if self.state != BreakerState::Disabled {
            self.change_state(
                BreakerState::Disabled,
                TransitionReason::Disabled,
                now,
                None,
            );
        }
    }

    /// Back to Closed with empty windows and growth level 0. From Closed this records no
    /// transition but still clears the windows and makes outstanding permits stale.
    pub fn reset(&mut self, now: Instant) {
        self.level = 0;
        if self.state == BreakerState::Closed {
            self.clear_counts();
            self.epoch = self.epoch.wrapping_add(1);
        } else {
            self.change_state(BreakerState::Closed, TransitionReason::Reset, now, None);
        }
    }

    /// Applies a new configuration (assumed validated) without losing state: the state, its
    /// epoch (permits stay valid), the end of an open period or half-open wait in progress, the
    /// open-duration growth level, the consecutive-failure count and the probes in flight are
    /// kept. The outcome window is kept when its kind and size are unchanged; otherwise it
    /// starts empty (its outcomes cannot be carried into another kind or size). Outcomes already
    /// recorded keep the slow-call classification they were given. A new threshold applies from
    /// the next recorded outcome: reconfiguring never trips the breaker by itself, and a new
    /// open duration applies from the next opening. Returns whether the window was kept.
    pub fn reconfigure(&mut self, config: BreakerConfig) -> bool {
        let keep_window = config.window == self.config.window;
        if !keep_window {
            self.window = OutcomeWindow::new(&config.window);
        }
        self.config = config;
        keep_window
    }

    /// What the window holds as of `now`.
    pub fn window_snapshot(&self, now: Instant) -> WindowSnapshot {
        self.window.totals(now).snapshot(self.consecutive_failures)
    }

    /// Transitions since the last drain, oldest first (at most the last 64 are kept).
    pub fn drain_transitions(&mut self) -> std::vec::Drain<'_, Transition> {
        self.transitions.drain(..)
    }

    /// Whether transitions are pending (not drained yet).
    #[inline]
    pub(crate) fn has_transitions(&self) -> bool {
        !self.transitions.is_empty()
    }

    fn permit(&self, probe: bool) -> Permit {
        Permit {
            epoch: self.epoch,
            probe,
        }
    }

    /// Count a success or failure into the window; false for Ignored.
    fn count(&mut self, outcome: Outcome, now: Instant) -> bool {
        let failure = match outcome.kind {
            OutcomeKind::Ignored => return false,
            OutcomeKind::Failure => true,
            OutcomeKind::Success => false,
        };
        let slow = outcome.duration >= self.config.slow_call_duration;
        self.window.record(failure, slow, now);
        self.consecutive_failures = if failure {
            self.consecutive_failures.saturating_add(1)
        } else {
            0
        };
        true
    }

    fn record_closed(&mut self, outcome: Outcome, now: Instant) {
        if self.count(outcome, now) && self.may_trip {
            if let Some(reason) = self.trip_reason(now) {
                self.open(reason, now);
            }
        }
    }

    /// The first trip policy that fires, in order: consecutive, failure rate, slow rate.
    fn trip_reason(&self, now: Instant) -> Option<TransitionReason> {
        let config = &self.config;
        if config
            .consecutive_failures
            .is_some_and(|n| self.consecutive_failures >= n)
        {
            return Some(TransitionReason::ConsecutiveFailures);
        }
        // Without a rate policy nothing else can fire: the window's totals are not needed.
        if config.failure_rate_threshold.is_none() && config.slow_call_rate_threshold.is_none() {
            return None;
        }
        let totals = self.window.totals(now);
        if totals.calls < config.effective_minimum_calls() {
            return None;
        }
        if config
            .failure_rate_threshold
            .is_some_and(|t| totals.failure_rate() >= t)
        {
            return Some(TransitionReason::FailureRate);
        }
        if config
            .slow_call_rate_threshold
            .is_some_and(|t| totals.slow_call_rate() >= t)
        {
            return Some(TransitionReason::SlowCallRate);
        }
        None
    }

    /// Probe results are counted into the window too, so the transition they cause carries
    /// them in its snapshot.
    fn record_probe(&mut self, outcome: Outcome, now: Instant) {
        self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        if !self.count(outcome, now) {
            return;
        }
        let slow_counts = self.config.slow_call_rate_threshold.is_some()
            && outcome.duration >= self.config.slow_call_duration;
        if outcome.kind == OutcomeKind::Failure || slow_counts {
            self.reopen(TransitionReason::ProbeFailed, now);
            return;
        }
        self.probe_successes += 1;
        if self.probe_successes >= self.config.half_open_probes {
            self.level = 0;
            self.change_state(
                BreakerState::Closed,
                TransitionReason::ProbesSucceeded,
                now,
                None,
            );
        }
    }

    fn reopen(&mut self, reason: TransitionReason, now: Instant) {
        self.level = self.level.saturating_add(1);
        self.open(reason, now);
    }

    fn open(&mut self, reason: TransitionReason, now: Instant) {
        let open_for = self
            .config
            .open_duration
            .at_level(self.level, &mut self.rng);
        self.change_state(BreakerState::Open, reason, now, Some(open_for));
        self.deadline = Some(add_saturating(now, open_for));
    }

    /// Record the transition (snapshot taken before clearing), then enter `to` with a new
    /// epoch, empty windows and no deadline.
    fn change_state(
        &mut self,
        to: BreakerState,
        reason: TransitionReason,
        now: Instant,
        open_for: Option<Duration>,
    ) {
        if self.transitions.len() >= MAX_PENDING_TRANSITIONS {
            self.transitions.remove(0);
        }
        self.transitions.push(Transition {
            from: self.state,
            to,
            reason,
            at: now,
            snapshot: self.window_snapshot(now),
            open_for,
        });
        self.state = to;
        self.epoch = self.epoch.wrapping_add(1);
        self.deadline = None;
        self.clear_counts();
    }

    fn clear_counts(&mut self) {
        self.window.clear();
        self.consecutive_failures = 0;
        self.probes_in_flight = 0;
        self.probe_successes = 0;
    }
}

/// `now + duration`, or a far-future instant when that overflows.
fn add_saturating(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::SlidingWindow;

    const FAST: Duration = Duration::from_millis(10);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ok() -> Outcome {
        Outcome::success(FAST)
    }

    fn fail() -> Outcome {
        Outcome::failure(FAST)
    }

    /// Acquire and record one outcome at `now`.
    fn call(b: &mut Breaker, outcome: Outcome, now: Instant) {
        let permit = b.try_acquire(now).expect("admitted");
        b.record(permit, outcome, now);
    }

    fn reasons(b: &mut Breaker) -> Vec<TransitionReason> {
        b.drain_transitions().map(|t| t.reason).collect()
    }

    /// Trips on 1 failure, opens 30 s → 60 s → 120 s.
    fn growing() -> Breaker {
        Breaker::new(
            BreakerConfig::consecutive(1).open_exponential(secs(30), secs(120), 2.0),
            7,
        )
    }

    #[test]
    fn held_closed_counts_but_does_not_trip_until_let_go() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(3), 1);
        b.hold_closed(true);
        for i in 0..5 {
            call(&mut b, fail(), t0 + secs(i));
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(reasons(&mut b).is_empty());
        b.hold_closed(false);
        call(&mut b, fail(), t0 + secs(6));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(reasons(&mut b), [TransitionReason::ConsecutiveFailures]);
    }

    #[test]
    fn trips_on_exactly_n_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(3), 0);
        call(&mut b, fail(), t0);
        call(&mut b, fail(), t0);
        call(&mut b, ok(), t0); // resets the run
        call(&mut b, fail(), t0);
        call(&mut b, fail(), t0);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.window_snapshot(t0).consecutive_failures, 2);
        call(&mut b, fail(), t0);
        assert_eq!(b.state(), BreakerState::Open);
        let t = b.drain_transitions().collect::<Vec<_>>();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].reason, TransitionReason::ConsecutiveFailures);
        assert_eq!(t[0].snapshot.consecutive_failures, 3);
        assert_eq!(t[0].snapshot.calls, 6);
        assert_eq!(t[0].open_for, Some(secs(30)));
        assert_eq!(b.open_until(), Some(t0 + secs(30)));
        // cleared after the trip
        assert_eq!(b.window_snapshot(t0), WindowSnapshot::EMPTY);
    }

    #[test]
    fn ignored_outcomes_neither_count_nor_reset_the_run() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(2), 0);
        call(&mut b, fail(), t0);
        call(&mut b, Outcome::ignored(FAST), t0);
        let permit = b.try_acquire(t0).expect("admitted");
        b.release(permit, t0);
        assert_eq!(b.window_snapshot(t0).calls, 1);
        call(&mut b, fail(), t0);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn failure_rate_waits_for_minimum_calls() {
        let t0 = Instant::now();
        let config = BreakerConfig {
            consecutive_failures: None,
            ..BreakerConfig::default()
        };
        let mut b = Breaker::new(config, 0);
        for _ in 0..19 {
            call(&mut b, fail(), t0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.window_snapshot(t0).failures, 19);
        call(&mut b, fail(), t0);
        assert_eq!(b.state(), BreakerState::Open);
        let t = b.drain_transitions().next().expect("transition");
        assert_eq!(t.reason, TransitionReason::FailureRate);
        assert_eq!((t.snapshot.calls, t.snapshot.failures), (20, 20));
        assert_eq!(t.snapshot.failure_rate, 1.0);
    }

    #[test]
    fn failure_rate_trips_at_threshold_in_a_rolling_count_window() {
        let t0 = Instant::now();
        let config = BreakerConfig {
            consecutive_failures: None,
            ..BreakerConfig::default()
        }
        .failure_rate(0.5, SlidingWindow::Count { size: 10 }, 10);
        let mut b = Breaker::new(config, 0);
        // 4 failures then 16 successes: the failures roll out of the 10-call window
        for _ in 0..4 {
            call(&mut b, fail(), t0);
        }
        for _ in 0..16 {
            call(&mut b, ok(), t0);
        }
        assert_eq!(b.window_snapshot(t0).failures, 0);
        for _ in 0..4 {
            call(&mut b, fail(), t0);
        }
        assert_eq!(b.state(), BreakerState::Closed); // 4/10
        call(&mut b, fail(), t0); // 5/10
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(reasons(&mut b), [TransitionReason::FailureRate]);
    }

    #[test]
    fn minimum_calls_above_count_window_size_is_capped() {
        let t0 = Instant::now();
        let config = BreakerConfig {
            consecutive_failures: None,
            ..BreakerConfig::default()
        }
        .failure_rate(0.5, SlidingWindow::Count { size: 4 }, 20);
        let mut b = Breaker::new(config, 0);
        call(&mut b, ok(), t0);
        call(&mut b, ok(), t0);
        call(&mut b, fail(), t0);
        assert_eq!(b.state(), BreakerState::Closed);
        call(&mut b, fail(), t0);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn time_window_forgets_old_failures() {
        let config = BreakerConfig {
            consecutive_failures: None,
            ..BreakerConfig::default()
        }
        .failure_rate(0.5, SlidingWindow::Time { duration: secs(10) }, 4);
        let run = |second_batch_at: Duration| {
            let t0 = Instant::now();
            let mut b = Breaker::new(config.clone(), 0);
            for _ in 0..3 {
                call(&mut b, fail(), t0);
            }
            let t1 = t0 + second_batch_at;
            for outcome in [ok(), ok(), fail(), ok()] {
                if let Ok(permit) = b.try_acquire(t1) {
                    b.record(permit, outcome, t1);
                }
            }
            (b.state(), b.window_snapshot(t1).calls)
        };
        // within the window: 3 old failures + 1 success = 75% at 4 calls
        assert_eq!(run(secs(9)), (BreakerState::Open, 0));
        // after the window: only the 4 new calls count, 25%
        assert_eq!(run(secs(10)), (BreakerState::Closed, 4));
    }

    #[test]
    fn slow_calls_trip_on_slow_call_rate() {
        let t0 = Instant::now();
        let config = BreakerConfig {
            consecutive_failures: None,
            failure_rate_threshold: None,
            minimum_calls: 4,
            ..BreakerConfig::default()
        }
        .slow_calls(0.75, secs(1));
        let mut b = Breaker::new(config, 0);
        let slow = Outcome::success(secs(1)); // exactly the threshold counts as slow
        call(&mut b, slow, t0);
        call(&mut b, ok(), t0);
        call(&mut b, slow, t0);
        assert_eq!(b.state(), BreakerState::Closed); // only 3 calls
        call(&mut b, Outcome::failure(secs(2)), t0);
        assert_eq!(b.state(), BreakerState::Open);
        let t = b.drain_transitions().next().expect("transition");
        assert_eq!(t.reason, TransitionReason::SlowCallRate);
        assert_eq!((t.snapshot.calls, t.snapshot.slow_calls), (4, 3));
        assert_eq!(t.snapshot.slow_call_rate, 0.75);
    }

    #[test]
    fn open_rejects_with_retry_after_then_half_opens_exactly_on_time() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(1), 0);
        call(&mut b, fail(), t0);
        assert_eq!(b.next_deadline(), Some(t0 + secs(30)));
        assert_eq!(
            b.try_acquire(t0 + secs(10)),
            Err(Rejected {
                state: BreakerState::Open,
                retry_after: Some(secs(20))
            })
        );
        let almost = t0 + secs(30) - Duration::from_nanos(1);
        assert_eq!(
            b.try_acquire(almost).unwrap_err().retry_after,
            Some(Duration::from_nanos(1))
        );
        let permit = b.try_acquire(t0 + secs(30)).expect("probe admitted");
        assert!(permit.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.open_until(), None);
        assert_eq!(b.next_deadline(), Some(t0 + secs(90)));
        assert_eq!(
            reasons(&mut b),
            [
                TransitionReason::ConsecutiveFailures,
                TransitionReason::OpenElapsed
            ]
        );
    }

    #[test]
    fn poll_half_opens_without_admitting() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(1), 0);
        call(&mut b, fail(), t0);
        b.poll(t0 + secs(29));
        assert_eq!(b.state(), BreakerState::Open);
        b.poll(t0 + secs(30));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // the single probe slot is still free
        assert!(b.try_acquire(t0 + secs(31)).expect("probe").is_probe());
        assert!(b.try_acquire(t0 + secs(31)).is_err());
    }

    #[test]
    fn half_open_admits_exactly_the_configured_probes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(1).half_open_probes(3), 0);
        call(&mut b, fail(), t0);
        let t1 = t0 + secs(30);
        let mut permits = Vec::new();
        let mut rejected = 0;
        for _ in 0..1000 {
            match b.try_acquire(t1) {
                Ok(p) => permits.push(p),
                Err(r) => {
                    assert_eq!(
                        r,
                        Rejected {
                            state: BreakerState::HalfOpen,
                            retry_after: None
                        }
                    );
                    rejected += 1;
                }
            }
        }
        assert_eq!((permits.len(), rejected), (3, 997));
        assert!(permits.iter().all(Permit::is_probe));
        // a completed success does not free a slot
        let mut permits = permits.into_iter();
        b.record(permits.next().unwrap(), ok(), t1);
        b.record(permits.next().unwrap(), ok(), t1);
        assert!(b.try_acquire(t1).is_err());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(permits.next().unwrap(), ok(), t1);
        assert_eq!(b.state(), BreakerState::Closed);
        let t = b.drain_transitions().next_back().expect("closed");
        assert_eq!(t.reason, TransitionReason::ProbesSucceeded);
        assert_eq!((t.snapshot.calls, t.snapshot.failures), (3, 0));
        assert_eq!(b.window_snapshot(t1), WindowSnapshot::EMPTY);
    }

    #[test]
    fn failed_probes_double_the_open_duration_up_to_max_and_success_resets() {
        let t0 = Instant::now();
        let mut b = growing();
        call(&mut b, fail(), t0);
        let mut now = t0;
        let mut opened_for = vec![b.open_until().expect("open") - now];
        for _ in 0..3 {
            now = b.open_until().expect("open");
            call(&mut b, fail(), now); // probe fails
            opened_for.push(b.open_until().expect("open") - now);
        }
        assert_eq!(opened_for, [secs(30), secs(60), secs(120), secs(120)]);
        now = b.open_until().expect("open");
        call(&mut b, ok(), now); // probe succeeds
        assert_eq!(b.state(), BreakerState::Closed);
        call(&mut b, fail(), now);
        assert_eq!(b.open_until(), Some(now + secs(30)));
        let got: Vec<_> = b.drain_transitions().filter_map(|t| t.open_for).collect();
        assert_eq!(got, [secs(30), secs(60), secs(120), secs(120), secs(30)]);
    }

    #[test]
    fn stale_permits_are_ignored() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(2), 0);
        let early_a = b.try_acquire(t0).expect("admitted");
        let early_b = b.try_acquire(t0).expect("admitted");
        call(&mut b, fail(), t0);
        call(&mut b, fail(), t0);
        assert_eq!(b.state(), BreakerState::Open);
        // a late failure from before the trip cannot trip again or extend Open
        b.record(early_a, fail(), t0 + secs(1));
        assert_eq!(b.open_until(), Some(t0 + secs(30)));
        let t1 = t0 + secs(30);
        let probe = b.try_acquire(t1).expect("probe");
        // The same permit once more (the type forbids handing one back twice; a copy can still
        // arrive late from an owner that published it).
        let probe_again = Permit {
            epoch: probe.epoch,
            probe: true,
        };
        // a late success from Closed is not a probe result
        b.record(early_b, ok(), t1);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.try_acquire(t1).is_err());
        b.record(probe, ok(), t1);
        assert_eq!(b.state(), BreakerState::Closed);
        // the probe permit is stale now as well
        b.record(probe_again, fail(), t1);
        assert_eq!(b.window_snapshot(t1).calls, 0);
        assert_eq!(
            reasons(&mut b),
            [
                TransitionReason::ConsecutiveFailures,
                TransitionReason::OpenElapsed,
                TransitionReason::ProbesSucceeded
            ]
        );
    }

    #[test]
    fn ignored_and_released_probes_free_their_slot() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(1), 0);
        call(&mut b, fail(), t0);
        let t1 = t0 + secs(30);
        let first = b.try_acquire(t1).expect("probe");
        assert!(b.try_acquire(t1).is_err());
        b.release(first, t1);
        let second = b.try_acquire(t1).expect("slot freed by release");
        assert!(b.try_acquire(t1).is_err());
        b.record(second, Outcome::ignored(secs(100)), t1);
        let third = b.try_acquire(t1).expect("slot freed by ignored");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(third, ok(), t1);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn stuck_probe_times_out_half_open() {
        let t0 = Instant::now();
        let mut b = growing();
        call(&mut b, fail(), t0);
        let t1 = t0 + secs(30);
        let stuck = b.try_acquire(t1).expect("probe");
        assert_eq!(b.next_deadline(), Some(t1 + secs(60)));
        b.poll(t1 + secs(60) - Duration::from_nanos(1));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let t2 = t1 + secs(60);
        assert_eq!(
            b.try_acquire(t2),
            Err(Rejected {
                state: BreakerState::Open,
                retry_after: Some(secs(60)) // level 1
            })
        );
        // the stuck probe's late result is stale
        b.record(stuck, ok(), t2);
        assert_eq!(b.state(), BreakerState::Open);
        let t = b.drain_transitions().next_back().expect("timeout");
        assert_eq!(
            (t.from, t.to, t.reason),
            (
                BreakerState::HalfOpen,
                BreakerState::Open,
                TransitionReason::HalfOpenTimeout
            )
        );
        assert_eq!((t.at, t.open_for), (t2, Some(secs(60))));
        // poll drives the same timeout
        let t3 = t2 + secs(60);
        b.poll(t3);
        b.poll(t3 + secs(60));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.open_until(), Some(t3 + secs(180)));
    }

    #[test]
    fn slow_probe_fails_only_when_slow_calls_are_tracked() {
        let t0 = Instant::now();
        let slow_ok = Outcome::success(secs(6));
        let mut plain = Breaker::new(BreakerConfig::consecutive(1), 0);
        call(&mut plain, fail(), t0);
        call(&mut plain, slow_ok, t0 + secs(30));
        assert_eq!(plain.state(), BreakerState::Closed);

        let mut tracked = Breaker::new(BreakerConfig::consecutive(1).slow_calls(1.0, secs(5)), 0);
        call(&mut tracked, fail(), t0);
        call(&mut tracked, slow_ok, t0 + secs(30));
        assert_eq!(tracked.state(), BreakerState::Open);
        let t = tracked.drain_transitions().next_back().expect("reopened");
        assert_eq!(t.reason, TransitionReason::ProbeFailed);
        assert_eq!(t.snapshot.slow_calls, 1);
    }

    #[test]
    fn force_open_rejects_until_reset() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(1), 0);
        let before = b.try_acquire(t0).expect("admitted");
        b.force_open(t0);
        b.force_open(t0); // no second transition
        assert_eq!(b.next_deadline(), None);
        let later = t0 + secs(3600);
        b.poll(later);
        assert_eq!(
            b.try_acquire(later),
            Err(Rejected {
                state: BreakerState::ForcedOpen,
                retry_after: None
            })
        );
        b.record(before, fail(), later);
        assert_eq!(b.state(), BreakerState::ForcedOpen);
        b.reset(later);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire(later).is_ok());
        let t: Vec<_> = b
            .drain_transitions()
            .map(|t| (t.from, t.to, t.reason))
            .collect();
        assert_eq!(
            t,
            [
                (
                    BreakerState::Closed,
                    BreakerState::ForcedOpen,
                    TransitionReason::ForcedOpen
                ),
                (
                    BreakerState::ForcedOpen,
                    BreakerState::Closed,
                    TransitionReason::Reset
                ),
            ]
        );
    }

    #[test]
    fn disabled_admits_everything_and_never_trips() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(1), 0);
        call(&mut b, fail(), t0);
        b.disable(t0);
        b.disable(t0);
        assert_eq!(b.open_until(), None);
        for i in 0..100 {
            call(&mut b, fail(), t0 + secs(i));
        }
        assert_eq!(b.state(), BreakerState::Disabled);
        assert_eq!(b.window_snapshot(t0).calls, 0);
        b.reset(t0 + secs(100));
        assert_eq!(
            reasons(&mut b),
            [
                TransitionReason::ConsecutiveFailures,
                TransitionReason::Disabled,
                TransitionReason::Reset
            ]
        );
        call(&mut b, fail(), t0 + secs(100));
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn reset_clears_windows_and_growth_level() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(3), 0);
        call(&mut b, fail(), t0);
        let in_flight = b.try_acquire(t0).expect("admitted");
        b.reset(t0);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.window_snapshot(t0), WindowSnapshot::EMPTY);
        assert_eq!(b.drain_transitions().count(), 0);
        b.record(in_flight, fail(), t0); // admitted before the reset: ignored
        assert_eq!(b.window_snapshot(t0).calls, 0);

        let mut g = growing();
        call(&mut g, fail(), t0);
        call(&mut g, fail(), t0 + secs(30)); // level 1
        g.reset(t0 + secs(31));
        call(&mut g, fail(), t0 + secs(31));
        assert_eq!(g.open_until(), Some(t0 + secs(61)));
    }

    #[test]
    fn jitter_is_bounded_and_reproducible_with_a_seed() {
        let config = BreakerConfig::consecutive(1)
            .open_exponential(secs(10), secs(40), 2.0)
            .jitter(0.5);
        let run = |seed| {
            let t0 = Instant::now();
            let mut b = Breaker::new(config.clone(), seed);
            call(&mut b, fail(), t0);
            for _ in 0..20 {
                let now = b.open_until().expect("open");
                call(&mut b, fail(), now);
            }
            b.drain_transitions()
                .filter_map(|t| t.open_for)
                .collect::<Vec<_>>()
        };
        let a = run(99);
        assert_eq!(a, run(99));
        assert_eq!(a.len(), 21);
        for (level, d) in a.iter().enumerate() {
            let nominal = [10.0, 20.0, 40.0][level.min(2)];
            let s = d.as_secs_f64();
            assert!(
                s >= nominal * 0.5 && s <= nominal * 1.5,
                "level {level}: {s}"
            );
            assert!(s <= 60.0);
        }
        assert!(a.iter().any(|d| d.subsec_nanos() != 0));
    }

    #[test]
    fn transitions_drain_in_order_with_reasons_and_snapshots() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(2), 0);
        call(&mut b, ok(), t0);
        call(&mut b, fail(), t0);
        call(&mut b, fail(), t0 + secs(1));
        let t1 = t0 + secs(31);
        call(&mut b, fail(), t1); // probe fails
        let t2 = t1 + secs(60); // level 1 with base = max = 30 s stays 30 s
        b.poll(t1 + secs(30));
        call(&mut b, ok(), t2);
        let all: Vec<Transition> = b.drain_transitions().collect();
        let s = |calls, failures, consecutive_failures| WindowSnapshot {
            calls,
            failures,
            slow_calls: 0,
            failure_rate: if calls == 0 {
                0.0
            } else {
                f64::from(failures) / f64::from(calls)
            },
            slow_call_rate: 0.0,
            consecutive_failures,
        };
        use BreakerState::*;
        use TransitionReason::*;
        let expected = [
            (
                Closed,
                Open,
                ConsecutiveFailures,
                t0 + secs(1),
                s(3, 2, 2),
                Some(secs(30)),
            ),
            (Open, HalfOpen, OpenElapsed, t1, s(0, 0, 0), None),
            (HalfOpen, Open, ProbeFailed, t1, s(1, 1, 1), Some(secs(30))),
            (Open, HalfOpen, OpenElapsed, t1 + secs(30), s(0, 0, 0), None),
            (HalfOpen, Closed, ProbesSucceeded, t2, s(1, 0, 0), None),
        ];
        assert_eq!(all.len(), expected.len());
        for (got, (from, to, reason, at, snapshot, open_for)) in all.iter().zip(expected) {
            assert_eq!(
                *got,
                Transition {
                    from,
                    to,
                    reason,
                    at,
                    snapshot,
                    open_for
                }
            );
        }
        assert_eq!(b.drain_transitions().count(), 0);
    }

    #[test]
    fn undrained_transitions_stay_bounded() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::consecutive(1), 0);
        for i in 0..100 {
            b.force_open(t0 + secs(i));
            b.reset(t0 + secs(i));
        }
        let kept: Vec<Transition> = b.drain_transitions().collect();
        assert_eq!(kept.len(), MAX_PENDING_TRANSITIONS);
        assert_eq!(kept.last().map(|t| t.reason), Some(TransitionReason::Reset));
        assert_eq!(kept.last().map(|t| t.at), Some(t0 + secs(99)));
    }

    #[test]
    fn idle_breaker_allocates_nothing() {
        let b = Breaker::new(BreakerConfig::default(), 0);
        assert_eq!(b.transitions.capacity(), 0);
        assert_eq!(b.window_snapshot(Instant::now()), WindowSnapshot::EMPTY);
        assert_eq!(b.config(), &BreakerConfig::default());
    }

    #[test]
    fn reconfigure_keeps_the_state_and_a_window_of_the_same_kind_and_size() {
        let t0 = Instant::now();
        let config =
            BreakerConfig::consecutive(3).failure_rate(0.5, SlidingWindow::Count { size: 10 }, 10);
        let mut breaker = Breaker::new(config.clone(), 1);
        let permit = breaker.try_acquire(t0).unwrap();
        breaker.record(permit, Outcome::failure(Duration::ZERO), t0);
        let kept = breaker.reconfigure(config.clone().open_for(secs(60)));
        assert!(kept);
        assert_eq!(breaker.window_snapshot(t0).failures, 1);
        assert_eq!(breaker.window_snapshot(t0).consecutive_failures, 1);
        // A permit issued before the reconfiguration still counts.
        let permit = breaker.try_acquire(t0).unwrap();
        let _ = breaker.drain_transitions();
        breaker.reconfigure(config.clone());
        breaker.record(permit, Outcome::failure(Duration::ZERO), t0);
        assert_eq!(breaker.window_snapshot(t0).failures, 2);

        // Another size: the window starts empty, the consecutive count is kept.
        let kept =
            breaker.reconfigure(config.failure_rate(0.5, SlidingWindow::Count { size: 20 }, 10));
        assert!(!kept);
        let snapshot = breaker.window_snapshot(t0);
        assert_eq!(snapshot.calls, 0);
        assert_eq!(snapshot.consecutive_failures, 2);
    }

    #[test]
    fn reconfigure_keeps_an_open_breaker_open_until_its_period_ends() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(BreakerConfig::consecutive(1).open_for(secs(30)), 1);
        let permit = breaker.try_acquire(t0).unwrap();
        breaker.record(permit, Outcome::failure(Duration::ZERO), t0);
        assert_eq!(breaker.state(), BreakerState::Open);
        let epoch = breaker.epoch();
        let until = breaker.open_until();
        let _ = breaker.drain_transitions();
        breaker.reconfigure(BreakerConfig::consecutive(5).open_for(secs(1)));
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.epoch(), epoch);
        assert_eq!(breaker.open_until(), until);
        assert_eq!(breaker.drain_transitions().len(), 0);
        assert!(breaker.try_acquire(t0 + secs(2)).is_err());
        assert!(breaker.try_acquire(t0 + secs(30)).is_ok());
    }
}
