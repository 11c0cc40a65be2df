//! What a supervisor shares with its handles, so calls run in the callers' tasks:
//! - the breaker state and epoch it publishes after every change, and the end of the open
//!   period: a handle admits a Closed-state call by itself, refuses while open, and asks the
//!   supervisor only in HalfOpen (probes are counted there, exactly);
//! - the bulkhead's in-flight count;
//! - the [hand-off](super::handoff) of the callers' reports (attempt outcomes and answers),
//!   which the supervisor drains in batches;
//! - the settings a call needs (timeout, deadline, attempts);
//! - the [flights](super::coalesce) of coalesced calls in progress;
//! - with the `fault-injection` feature, the [faults](crate::chaos) being injected.
//!
//! The supervisor is the only writer of the breaker fields; handles only read them.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::WeakAddr;
use tokio::time::Instant;

use super::coalesce::Flights;
use super::handoff::Handoff;
use super::supervisor::ServiceSupervisor;
use crate::breaker::{BreakerState, Permit};
use crate::chaos::{Fault, FaultInjector};
use crate::messages::{Drain, Report};
use crate::observe::ServiceMetrics;
use crate::outcome::{CallOutcome, RejectReason};
use crate::ratelimit::RateLimitConfig;
use crate::ratelimit::{RateLimited, RateLimiter};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Bits of the packed admission word that hold the state; the epoch sits above them.
const STATE_BITS: u32 = 8;

/// The settings a call reads in its caller's task.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallSettings {
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    /// Attempts allowed in all (the retry policy's `max_attempts`).
    pub(crate) max_attempts: u32,
    /// Hedges one attempt may start (0: hedging is off).
    pub(crate) max_hedges: u32,
    /// Every call may be hedged, not only the ones marked idempotent.
    pub(crate) hedge_all_calls: bool,
}

impl CallSettings {
    /// The call settings of `config`.
    pub(crate) fn of(config: &crate::config::SupervisorConfig) -> Self {
        let hedge = config.hedge.as_ref();
        CallSettings {
            timeout: config.timeout,
            deadline: config.deadline,
            max_attempts: config.retry.max_attempts,
            max_hedges: hedge.map_or(0, |hedge| hedge.max_hedges),
            hedge_all_calls: hedge.is_some_and(|hedge| hedge.all_calls),
        }
    }
}

/// [`CallSettings`] behind a sequence lock made of atomics: one writer (the supervisor, on a
/// reload), readers on every call that never block and never see half of an update (a reader
/// that raced the writer reads again). Reading costs a few plain loads.
#[derive(Debug)]
struct SettingsCell {
    /// Even: stable; odd: an update is being written.
    sequence: AtomicU64,
    /// Nanoseconds; `NONE` for no timeout.
    timeout: AtomicU64,
    /// Nanoseconds; `NONE` for no deadline.
    deadline: AtomicU64,
    max_attempts: AtomicU32,
    max_hedges: AtomicU32,
    /// 1: every call may be hedged.
    hedge_all_calls: AtomicU32,
}

/// The encoding of `None` in a [`SettingsCell`] duration.
const NONE: u64 = u64::MAX;

impl SettingsCell {
    fn new(settings: CallSettings) -> Self {
        SettingsCell {
            sequence: AtomicU64::new(0),
            timeout: AtomicU64::new(encode_duration(settings.timeout)),
            deadline: AtomicU64::new(encode_duration(settings.deadline)),
            max_attempts: AtomicU32::new(settings.max_attempts),
            max_hedges: AtomicU32::new(settings.max_hedges),
            hedge_all_calls: AtomicU32::new(u32::from(settings.hedge_all_calls)),
        }
    }

    fn load(&self) -> CallSettings {
        loop {
            let before = self.sequence.load(Ordering::SeqCst);
            let settings = CallSettings {
                timeout: decode_duration(self.timeout.load(Ordering::SeqCst)),
                deadline: decode_duration(self.deadline.load(Ordering::SeqCst)),
                max_attempts: self.max_attempts.load(Ordering::SeqCst),
                max_hedges: self.max_hedges.load(Ordering::SeqCst),
                hedge_all_calls: self.hedge_all_calls.load(Ordering::SeqCst) == 1,
            };
            if before & 1 == 0 && self.sequence.load(Ordering::SeqCst) == before {
                return settings;
            }
            crate::sync::spin_loop();
        }
    }

    /// Only ever called by one writer at a time (the supervisor).
    fn store(&self, settings: CallSettings) {
        let sequence = self.sequence.load(Ordering::SeqCst);
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::SeqCst);
        self.timeout
            .store(encode_duration(settings.timeout), Ordering::SeqCst);
        self.deadline
            .store(encode_duration(settings.deadline), Ordering::SeqCst);
        self.max_attempts
            .store(settings.max_attempts, Ordering::SeqCst);
        self.max_hedges.store(settings.max_hedges, Ordering::SeqCst);
        self.hedge_all_calls
            .store(u32::from(settings.hedge_all_calls), Ordering::SeqCst);
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::SeqCst);
    }
}

fn encode_duration(duration: Option<Duration>) -> u64 {
    duration.map_or(NONE, |d| {
        u64::try_from(d.as_nanos())
            .unwrap_or(NONE - 1)
            .min(NONE - 1)
    })
}

fn decode_duration(nanos: u64) -> Option<Duration> {
    (nanos != NONE).then(|| Duration::from_nanos(nanos))
}

/// How a handle may admit an attempt, from the published state alone.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Closed or disabled: admitted here, with a permit of the published epoch.
    Local(Permit),
    /// Open, or forced open: refused; `retry_after` while the open period runs.
    Refused(Option<Duration>),
    /// HalfOpen, or an open period that has just ended: only the supervisor decides.
    AskSupervisor,
}

/// Shared between a supervisor and every handle to it.
#[derive(Debug)]
pub(crate) struct Published {
    /// `epoch << 8 | state`, stored in one word so a reader never pairs a state with another
    /// state's epoch.
    admission: AtomicU64,
    /// End of the open period, in nanoseconds since `origin`; meaningful while `Open`.
    open_until_nanos: AtomicU64,
    origin: Instant,
    in_flight: AtomicU32,
    /// Calls allowed in flight now: `max_in_flight`, or the adaptive limit the supervisor
    /// publishes (never above `max_in_flight`).
    limit: AtomicU32,
    /// Calls refused by handles without reaching the supervisor: open breaker.
    fast_rejections: AtomicU64,
    /// Calls refused because the bulkhead was full.
    overloads: AtomicU64,
    /// Numbers calls for their tracing spans (only read when the span is enabled).
    next_call_id: AtomicU64,
    /// The adaptive throttle's reject probability, in units of 2^-32 (0: refuse nothing).
    throttle: AtomicU32,
    /// Accumulates the probability of every call admitted past the throttle: a call is refused
    /// when the sum crosses a multiple of 2^32, so exactly the published share of calls is
    /// refused, deterministically and without a random draw or a lock.
    throttle_credit: AtomicU32,
    /// The settings a call reads; replaced as a whole on a reload.
    settings: SettingsCell,
    /// The hedge delay the supervisor last derived, in nanoseconds (0: do not hedge now).
    hedge_delay_nanos: AtomicU64,
    pub(crate) metrics: ServiceMetrics,
    /// The token bucket, when a rate limit is configured (a short lock per call).
    rate_limiter: Mutex<Option<RateLimiter>>,
    /// Whether `rate_limiter` holds a limiter (so a call without one takes no lock). Changed
    /// only with the lock held.
    rate_limit_on: AtomicBool,
    /// Calls refused by the rate limiter.
    rate_limited: AtomicU64,
    /// Callers' reports, drained by the supervisor.
    pub(crate) reports: Handoff<Report>,
    /// Coalesced calls in flight, by key (at most one per bulkhead slot).
    pub(crate) flights: Flights,
    /// How a producer wakes the supervisor; weak, so the shared state does not keep it alive.
    supervisor: OnceLock<WeakAddr<ServiceSupervisor>>,
    /// The faults being injected, set by the supervisor; the draws are taken by the callers.
    #[cfg(feature = "fault-injection")]
    faults: Mutex<Option<Box<FaultInjector>>>,
    /// Whether `faults` holds an injector (so a call without faults takes no lock). Changed
    /// only with the lock held.
    #[cfg(feature = "fault-injection")]
    faults_on: crate::sync::AtomicBool,
}

impl Published {
    pub(crate) fn new(service: &str, max_in_flight: u32, settings: CallSettings) -> Self {
        Published {
            admission: AtomicU64::new(u64::from(BreakerState::Closed.as_u8())),
            open_until_nanos: AtomicU64::new(0),
            origin: Instant::now(),
            in_flight: AtomicU32::new(0),
            limit: AtomicU32::new(max_in_flight),
            fast_rejections: AtomicU64::new(0),
            overloads: AtomicU64::new(0),
            next_call_id: AtomicU64::new(0),
            throttle: AtomicU32::new(0),
            throttle_credit: AtomicU32::new(0),
            settings: SettingsCell::new(settings),
            hedge_delay_nanos: AtomicU64::new(0),
            metrics: ServiceMetrics::register(service),
            reports: Handoff::default(),
            flights: Flights::default(),
            rate_limiter: Mutex::new(None),
            rate_limit_on: AtomicBool::new(false),
            rate_limited: AtomicU64::new(0),
            supervisor: OnceLock::new(),
            #[cfg(feature = "fault-injection")]
            faults: Mutex::new(None),
            #[cfg(feature = "fault-injection")]
            faults_on: crate::sync::AtomicBool::new(false),
        }
    }

    /// Tells the shared state where its supervisor runs (once, right after it started).
    pub(crate) fn set_supervisor(&self, addr: WeakAddr<ServiceSupervisor>) {
        // Set once by the builder; a second call would be a bug, and changes nothing.
        let _ = self.supervisor.set(addr);
    }

    /// Called by the supervisor after every breaker change.
    pub(crate) fn publish(&self, state: BreakerState, epoch: u64, open_until: Option<Instant>) {
        let nanos = open_until.map_or(0, |until| self.nanos_since_origin(until));
        self.open_until_nanos.store(nanos, Ordering::Release);
        let word = (epoch << STATE_BITS) | u64::from(state.as_u8());
        self.admission.store(word, Ordering::Release);
    }

    /// The last published breaker state.
    pub(crate) fn state(&self) -> Option<BreakerState> {
        decode(self.admission.load(Ordering::Acquire)).0
    }

    /// How an attempt starting now is admitted, from the published state.
    ///
    /// The epoch keeps only the low 56 bits of the breaker's: after 2^56 state changes a
    /// locally admitted call's permit would read as stale and its outcome be ignored, which
    /// loses a sample, never an answer.
    pub(crate) fn admission(&self) -> Admission {
        let (state, epoch) = decode(self.admission.load(Ordering::Acquire));
        match state {
            Some(BreakerState::Closed | BreakerState::Disabled) => {
                Admission::Local(Permit::closed_at(epoch))
            }
            Some(BreakerState::ForcedOpen) => Admission::Refused(None),
            Some(BreakerState::Open) => {
                let until = self.open_until_nanos.load(Ordering::Acquire);
                let now = self.nanos_since_origin(Instant::now());
                if now < until {
                    Admission::Refused(Some(Duration::from_nanos(until - now)))
                } else {
                    Admission::AskSupervisor
                }
            }
            Some(BreakerState::HalfOpen) | None => Admission::AskSupervisor,
        }
    }

    /// Publishes the adaptive throttle's reject probability (the supervisor, after a change).
    pub(crate) fn publish_throttle(&self, probability: f64) {
        let units = (probability.clamp(0.0, 1.0) * 4_294_967_296.0).min(f64::from(u32::MAX));
        self.throttle.store(units as u32, Ordering::Relaxed);
    }

    /// Whether the throttle refuses this call: `Some(probability)` for one call in every
    /// `1 / probability`, spread evenly.
    pub(crate) fn throttled(&self) -> Option<f64> {
        let units = self.throttle.load(Ordering::Relaxed);
        if units == 0 {
            return None;
        }
        let before = self.throttle_credit.fetch_add(units, Ordering::Relaxed);
        before
            .checked_add(units)
            .is_none()
            .then(|| f64::from(units) / 4_294_967_296.0)
    }

    /// Counts a call the throttle refused (the supervisor counts it as a request the
    /// dependency did not accept).
    pub(crate) fn count_throttled(&self) {
        self.report(Report {
            throttled: true,
            ..Report::default()
        });
    }

    /// Takes a token for a call: `Ok(None)` to go now, `Ok(Some(wait))` to go after `wait`
    /// (the token is reserved), or refused. Always `Ok(None)` without a rate limit.
    pub(crate) fn acquire_token(&self) -> Result<Option<Duration>, RateLimited> {
        if !self.rate_limit_on.load(Ordering::Acquire) {
            return Ok(None);
        }
        let now = Instant::now().into_std();
        self.rate_limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
            .map_or(Ok(None), |limiter| limiter.try_acquire(now))
    }

    /// The settings a call starting now reads (a consistent set, never half of a reload).
    pub(crate) fn settings(&self) -> CallSettings {
        self.settings.load()
    }

    /// Replaces the call settings (the supervisor, on a reload); calls starting afterwards
    /// read the new ones, calls in flight keep theirs.
    pub(crate) fn set_settings(&self, settings: CallSettings) {
        self.settings.store(settings);
    }

    /// Sets, changes or removes the rate limit (at start, and on a reload). A changed limit
    /// keeps the tokens saved and reserved (at most a full bucket of the new size) and any
    /// penalty in force.
    pub(crate) fn set_rate_limit(&self, config: Option<RateLimitConfig>) {
        let mut limiter = self
            .rate_limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (limiter.as_mut(), config) {
            (Some(current), Some(config)) => {
                current.reconfigure(config, Instant::now().into_std());
            }
            (_, config) => *limiter = config.map(RateLimiter::new),
        }
        self.rate_limit_on
            .store(limiter.is_some(), Ordering::Release);
    }

    /// The rate limit in force, if any.
    pub(crate) fn rate_limit(&self) -> Option<RateLimitConfig> {
        self.rate_limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|limiter| limiter.config().clone())
    }

    /// Lowers the rate until `until` after a dependency's retry-after hint (see
    /// [`RateLimiter::penalize`]); false when there is no rate limit.
    pub(crate) fn penalize_rate(
        &self,
        now: std::time::Instant,
        until: std::time::Instant,
        factor: f64,
    ) -> bool {
        if !self.rate_limit_on.load(Ordering::Acquire) {
            return false;
        }
        let mut limiter = self
            .rate_limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match limiter.as_mut() {
            Some(limiter) => {
                limiter.penalize(now, until, factor);
                true
            }
            None => false,
        }
    }

    /// Counts a call refused by the rate limiter.
    pub(crate) fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        self.metrics.rejected(RejectReason::RateLimited);
        self.metrics.call(CallOutcome::Rejected, 0.0);
    }

    pub(crate) fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Counts a call refused by a handle because the published state is open.
    pub(crate) fn count_fast_rejection(&self) {
        self.fast_rejections.fetch_add(1, Ordering::Relaxed);
        self.metrics.rejected(RejectReason::Open);
        self.metrics.call(CallOutcome::Rejected, 0.0);
    }

    pub(crate) fn fast_rejections(&self) -> u64 {
        self.fast_rejections.load(Ordering::Relaxed)
    }

    /// Counts a call refused because the bulkhead was full.
    pub(crate) fn reject_overloaded(&self) {
        self.overloads.fetch_add(1, Ordering::Relaxed);
        self.metrics.rejected(RejectReason::Overloaded);
        self.metrics.call(CallOutcome::Rejected, 0.0);
    }

    pub(crate) fn overloads(&self) -> u64 {
        self.overloads.load(Ordering::Relaxed)
    }

    /// Starts injecting with `injector`, or stops with `None` (the supervisor).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn set_faults(&self, injector: Option<FaultInjector>) {
        let mut faults = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.faults_on.store(injector.is_some(), Ordering::Release);
        *faults = injector.map(Box::new);
    }

    /// Without the `fault-injection` feature nothing is ever injected (configurations with
    /// faults are refused before they get here).
    #[cfg(not(feature = "fault-injection"))]
    pub(crate) fn set_faults(&self, _injector: Option<FaultInjector>) {}

    /// The fault to inject into an attempt starting now, if any. Once the injection has
    /// expired, it is switched off.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn fault(&self) -> Option<Fault> {
        if !self.faults_on.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now().into_std();
        let mut faults = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let injector = faults.as_mut()?;
        if injector.is_expired(now) {
            *faults = None;
            self.faults_on.store(false, Ordering::Release);
            return None;
        }
        injector.decide(now)
    }

    /// Without the `fault-injection` feature: never a fault.
    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub(crate) fn fault(&self) -> Option<Fault> {
        None
    }

    /// A number for a call's tracing span.
    pub(crate) fn next_call_id(&self) -> u64 {
        self.next_call_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes a bulkhead slot, or `None` when the limit of calls in flight is reached.
    pub(crate) fn try_reserve(self: &Arc<Self>) -> Option<SlotGuard> {
        let previous = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if previous >= self.limit.load(Ordering::Relaxed) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.metrics.in_flight_changed(1.0);
        Some(SlotGuard {
            published: Arc::clone(self),
            in_flight: previous + 1,
        })
    }

    /// Publishes the calls allowed in flight (the supervisor, when the adaptive limit moves).
    /// Calls in flight above a lowered limit finish; new ones wait for room.
    /// Publishes the hedge delay (`None`: do not hedge, e.g. while the latency is unknown).
    pub(crate) fn publish_hedge_delay(&self, delay: Option<Duration>) {
        let nanos = delay.map_or(0, |delay| {
            u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        self.hedge_delay_nanos.store(nanos, Ordering::Relaxed);
    }

    /// The hedge delay, when hedging is configured and the delay is known.
    pub(crate) fn hedge_delay(&self) -> Option<Duration> {
        if self.settings().max_hedges == 0 {
            return None;
        }
        match self.hedge_delay_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    pub(crate) fn publish_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
        self.metrics.limit(limit);
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Calls allowed in flight now (the bulkhead's `max_in_flight` or the adaptive limit).
    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Hands `report` to the supervisor without waiting; wakes it when nobody else will.
    pub(crate) fn report(&self, report: Report) {
        if self.reports.push(report) {
            self.wake_supervisor();
        }
    }

    /// Wakes the supervisor to drain the reports (one message per batch window at most).
    fn wake_supervisor(&self) {
        if let Some(addr) = self.supervisor.get().and_then(WeakAddr::upgrade) {
            // A full mailbox still takes it (`do_send` ignores the capacity), and one message
            // per batch window cannot pile up.
            addr.do_send(Drain);
        }
    }

    fn nanos_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

fn decode(word: u64) -> (Option<BreakerState>, u64) {
    let state = BreakerState::from_u8((word & ((1 << STATE_BITS) - 1)) as u8);
    (state, word >> STATE_BITS)
}

/// One bulkhead slot; released when dropped, whatever happens to the call holding it.
#[derive(Debug)]
pub(crate) struct SlotGuard {
    published: Arc<Published>,
    /// Calls in flight when this one was admitted, itself included (a concurrency-limit sample).
    pub(crate) in_flight: u32,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.published.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.published.metrics.in_flight_changed(-1.0);
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_refuses_exactly_the_published_share_spread_evenly() {
        let settings = CallSettings {
            timeout: None,
            deadline: None,
            max_attempts: 1,
            ..CallSettings::default()
        };
        let published = Published::new("t", 8, settings);
        assert_eq!(published.throttled(), None);
        published.publish_throttle(0.25);
        let refused: Vec<bool> = (0..100).map(|_| published.throttled().is_some()).collect();
        assert_eq!(refused.iter().filter(|r| **r).count(), 25);
        // Never two refusals in a row at 25 %.
        assert!(refused.windows(2).all(|w| !(w[0] && w[1])));
        published.publish_throttle(0.0);
        assert_eq!(published.throttled(), None);
    }

    #[test]
    fn settings_are_replaced_as_a_whole() {
        let settings = CallSettings {
            timeout: Some(Duration::from_secs(2)),
            deadline: None,
            max_attempts: 3,
            max_hedges: 0,
            hedge_all_calls: false,
        };
        let published = Published::new("t", 8, settings);
        let read = published.settings();
        assert_eq!(read.timeout, Some(Duration::from_secs(2)));
        assert_eq!(read.deadline, None);
        assert_eq!(read.max_attempts, 3);
        published.set_settings(CallSettings {
            timeout: None,
            deadline: Some(Duration::from_millis(1500)),
            max_attempts: 1,
            max_hedges: 2,
            hedge_all_calls: true,
        });
        let read = published.settings();
        assert_eq!(read.timeout, None);
        assert_eq!(read.deadline, Some(Duration::from_millis(1500)));
        assert_eq!(read.max_attempts, 1);
        assert_eq!((read.max_hedges, read.hedge_all_calls), (2, true));
    }
}
