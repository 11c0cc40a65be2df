//! The rate limiter's cell: the [`RateLimiter`] core — or, for a fleet, the [`FleetQuota`] —
//! behind a short lock, taken by the callers for a token and by the supervisor to reconfigure
//! or penalize it. A call on a supervisor without a rate limit takes no lock.
//!
//! A fleet quota's leases are asked for by the supervisor's lease driver
//! ([`supervisor::fleet`](crate::actors::supervisor)); the cell's [`Leases`] carry the two
//! wake-ups between them: a call that took a token (the driver may lease more) and a lease
//! that arrived (a waiting call may take one).

use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::fleet::{FleetConfig, FleetQuota, FleetToken, Grant, Next, StoreError, Take};
use crate::ratelimit::{RateLimitConfig, RateLimited, RateLimiter, Reservation};
use crate::sync::{AtomicBool, Ordering};

/// The limiter in force.
#[derive(Debug)]
enum Limiter {
    Local(RateLimiter),
    Fleet {
        quota: Box<FleetQuota>,
        limit: RateLimitConfig,
        fleet: Box<FleetConfig>,
        seed: u64,
    },
}

/// A call's rate-limit token (spent when dropped, handed back with
/// [`release`](RateLimitCell::release)), or its place in the wait for a fleet lease.
#[derive(Debug)]
pub(crate) enum Token {
    /// A token of the local bucket.
    Local(Reservation),
    /// A token of the fleet's quota.
    Fleet(FleetToken),
    /// None yet: wait for the fleet's next lease ([`RateLimitCell::wait_for_lease`]).
    Lease,
}

impl Token {
    /// Whether the call must wait before it goes: for the token's turn, or for a lease.
    pub(crate) fn must_wait(&self) -> bool {
        match self {
            Token::Local(reservation) => reservation.wait().is_some(),
            Token::Fleet(token) => token.wait().is_some(),
            Token::Lease => true,
        }
    }

    /// How long to sleep before the token's turn.
    pub(crate) fn wait(&self) -> Option<Duration> {
        match self {
            Token::Local(reservation) => reservation.wait(),
            Token::Fleet(token) => token.wait(),
            Token::Lease => None,
        }
    }

    /// The token, to go with at once (a rate limit that only observes makes no call wait):
    /// `None` for a place in the wait for a fleet lease, which observing does not wait for.
    pub(crate) fn without_wait(self) -> Option<Token> {
        match self {
            Token::Local(reservation) => Some(Token::Local(reservation.without_wait())),
            Token::Fleet(token) => Some(Token::Fleet(token.without_wait())),
            Token::Lease => None,
        }
    }
}

/// Whether `a` and `b` are the same limit but for their `mode`.
fn same_but_mode(a: &RateLimitConfig, b: &RateLimitConfig) -> bool {
    *a == RateLimitConfig {
        mode: a.mode,
        ..b.clone()
    }
}

/// The wake-ups between a fleet quota's callers and its lease driver.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    /// A call took a token or is waiting for one: the driver may lease more.
    pub(crate) asked: Notify,
    /// A lease arrived (or the store failed): waiting calls ask again.
    pub(crate) arrived: Notify,
}

/// The token bucket, when a rate limit is configured.
#[derive(Debug, Default)]
pub(crate) struct RateLimitCell {
    limiter: Mutex<Option<Limiter>>,
    /// Whether `limiter` holds a limiter. Changed only with the lock held.
    on: AtomicBool,
    /// Set once, for a fleet quota.
    leases: std::sync::OnceLock<Arc<Leases>>,
}

impl RateLimitCell {
    fn lock(&self) -> MutexGuard<'_, Option<Limiter>> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token for a call: `Ok(None)` without a rate limit, else its token (go now, or
    /// after [`Token::wait`], or wait for a lease), or refused. A call that is not sent after
    /// all hands its token back with [`release`](Self::release).
    pub(crate) fn acquire(&self) -> Result<Option<Token>, RateLimited> {
        self.acquire_keeping(0)
    }

    /// [`acquire`](Self::acquire) for a call that must leave the share `reserved` (in units
    /// of 2^-16) of a local bucket's burst to more critical calls, in whole tokens: it goes
    /// only above them, and never waits ([`RateLimiter::reserve_keeping`]). A fleet quota
    /// keeps no reserve.
    #[inline]
    pub(crate) fn acquire_keeping(&self, reserved: u32) -> Result<Option<Token>, RateLimited> {
        if !self.on.load(Ordering::Acquire) {
            return Ok(None);
        }
        self.acquire_limited(reserved)
    }

    /// [`acquire_keeping`](Self::acquire_keeping) while a rate limit is on.
    fn acquire_limited(&self, reserved: u32) -> Result<Option<Token>, RateLimited> {
        let now = Instant::now();
        let taken = match self.lock().as_mut() {
            None => return Ok(None),
            Some(Limiter::Local(limiter)) => {
                let burst = limiter.config().burst.max(1);
                let keep = burst - crate::criticality::Shares::usable(reserved, burst);
                return limiter
                    .reserve_keeping(now.into_std(), keep)
                    .map(|r| Some(Token::Local(r)));
            }
            Some(Limiter::Fleet { quota, .. }) => quota.try_acquire_keeping(now, reserved),
        };
        if let Some(leases) = self.leases.get() {
            leases.asked.notify_one();
        }
        match taken {
            Take::Go(token) => Ok(Some(Token::Fleet(token))),
            Take::Lease => Ok(Some(Token::Lease)),
            Take::Refused(limited) => Err(limited),
        }
    }

    /// Waits for a fleet lease (a call that got [`Token::Lease`]), at most the limit's
    /// `max_wait`: the token, or refused.
    pub(crate) async fn wait_for_lease(&self) -> Result<Option<Token>, RateLimited> {
        let Some(leases) = self.leases.get().cloned() else {
            return self.acquire();
        };
        let since = Instant::now();
        loop {
            let mut arrived = pin!(leases.arrived.notified());
            arrived.as_mut().enable();
            let now = Instant::now();
            let max_wait = {
                let mut limiter = self.lock();
                let Some(Limiter::Fleet { quota, .. }) = limiter.as_mut() else {
                    drop(limiter);
                    return self.acquire();
                };
                match quota.try_acquire(now) {
                    Take::Go(token) => return Ok(Some(Token::Fleet(token))),
                    Take::Refused(limited) => return Err(limited),
                    Take::Lease => {}
                }
                if let Some(limited) = quota.wait_over(since, now) {
                    return Err(limited);
                }
                quota.max_wait()
            };
            leases.asked.notify_one();
            tokio::select! {
                () = arrived => {}
                () = tokio::time::sleep_until(since + max_wait) => {}
            }
        }
    }

    /// Hands back the token of a call that was not sent (its caller gave up while waiting for
    /// it, or it was refused, or it followed a coalesced call instead): the bucket is as if
    /// the call had never asked, so an abandoned waiter never slows the next caller.
    pub(crate) fn release(&self, token: Token) {
        let now = Instant::now();
        match (self.lock().as_mut(), token) {
            (Some(Limiter::Local(limiter)), Token::Local(token)) => {
                limiter.release(token, now.into_std());
            }
            (Some(Limiter::Fleet { quota, .. }), Token::Fleet(token)) => quota.release(token, now),
            _ => {}
        }
    }

    /// Sets, changes or removes the rate limit (at start, and on a reload). A changed limit
    /// keeps the tokens saved and reserved (at most a full bucket of the new size) and any
    /// penalty in force. A fleet's quota is set with [`set_fleet`](Self::set_fleet); a changed
    /// limit starts a new share of it.
    pub(crate) fn set(&self, config: Option<RateLimitConfig>) {
        let mut limiter = self.lock();
        match (limiter.as_mut(), config) {
            // Only the mode changes: the limiter goes on as it is (the callers read the mode
            // from the supervisor's published modes).
            (Some(Limiter::Local(current)), Some(config))
                if same_but_mode(current.config(), &config) =>
            {
                current.set_mode(config.mode);
            }
            (Some(Limiter::Fleet { limit, .. }), Some(config)) if same_but_mode(limit, &config) => {
                limit.mode = config.mode;
            }
            (Some(Limiter::Local(current)), Some(config)) => {
                current.reconfigure(config, Instant::now().into_std());
            }
            (
                Some(Limiter::Fleet {
                    quota,
                    limit,
                    fleet,
                    seed,
                }),
                Some(config),
            ) => {
                **quota = FleetQuota::new(&config, fleet, *seed);
                *limit = config;
            }
            (_, config) => *limiter = config.map(|c| Limiter::Local(RateLimiter::new(c))),
        }
        self.on.store(limiter.is_some(), Ordering::Release);
    }

    /// Makes `limit` the fleet's quota, leased through `fleet`'s store; returns the wake-ups
    /// the lease driver listens to.
    pub(crate) fn set_fleet(
        &self,
        limit: RateLimitConfig,
        fleet: &FleetConfig,
        seed: u64,
    ) -> Arc<Leases> {
        let leases = Arc::clone(self.leases.get_or_init(Arc::default));
        let mut limiter = self.lock();
        *limiter = Some(Limiter::Fleet {
            quota: Box::new(FleetQuota::new(&limit, fleet, seed)),
            limit,
            fleet: Box::new(fleet.clone()),
            seed,
        });
        self.on.store(true, Ordering::Release);
        leases
    }

    /// The fleet quota's wake-ups, once [`set_fleet`](Self::set_fleet) made one.
    pub(crate) fn leases(&self) -> Option<Arc<Leases>> {
        self.leases.get().cloned()
    }

    /// The rate limit in force, if any.
    pub(crate) fn config(&self) -> Option<RateLimitConfig> {
        self.lock().as_ref().map(|limiter| match limiter {
            Limiter::Local(limiter) => limiter.config().clone(),
            Limiter::Fleet { limit, .. } => limit.clone(),
        })
    }

    /// The fleet quota's next step for its driver at `now`, with the fleet's interval and
    /// burst; `None` without a fleet quota (the driver ends).
    pub(crate) fn poll_fleet(&self, now: Instant) -> Option<(Next, Duration, u32)> {
        match self.lock().as_mut() {
            Some(Limiter::Fleet { quota, .. }) => {
                let (interval, burst) = quota.limit();
                Some((quota.poll(now), interval, burst))
            }
            _ => None,
        }
    }

    /// The store's answer to a lease asked `round_trip` ago; wakes the waiting calls. Returns
    /// the new sharing state when it changed.
    pub(crate) fn leased(
        &self,
        now: Instant,
        answer: Result<Grant, StoreError>,
        round_trip: Duration,
    ) -> Option<bool> {
        let changed = match self.lock().as_mut() {
            Some(Limiter::Fleet { quota, .. }) => match answer {
                Ok(grant) => quota.granted(now, grant, round_trip).then_some(true),
                Err(_) => quota.failed(now).then_some(false),
            },
            _ => None,
        };
        if let Some(leases) = self.leases.get() {
            leases.arrived.notify_waiters();
        }
        changed
    }

    /// Whether a fleet quota is shared now (`None`: no fleet quota).
    pub(crate) fn fleet_shared(&self) -> Option<bool> {
        match self.lock().as_ref() {
            Some(Limiter::Fleet { quota, .. }) => Some(quota.is_shared()),
            _ => None,
        }
    }

    /// Lowers the rate until `until` after a dependency's retry-after hint (see
    /// [`RateLimiter::penalize`]); false when there is no local rate limit (a fleet's quota
    /// is the store's: a hint lowers no replica's share of it).
    pub(crate) fn penalize(
        &self,
        now: std::time::Instant,
        until: std::time::Instant,
        factor: f64,
    ) -> bool {
        if !self.on.load(Ordering::Acquire) {
            return false;
        }
        match self.lock().as_mut() {
            Some(Limiter::Local(limiter)) => {
                limiter.penalize(now, until, factor);
                true
            }
            _ => false,
        }
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_token_without_its_wait_goes_now_and_stays_taken() {
        let cell = RateLimitCell::default();
        cell.set(Some(
            RateLimitConfig::per_second(10.0)
                .burst(1)
                .max_wait(Duration::from_millis(250)),
        ));
        let first = cell.acquire().unwrap().unwrap();
        assert!(!first.must_wait());
        // The next token is reserved 100 ms ahead: without its wait it goes at once.
        let later = cell.acquire().unwrap().unwrap();
        assert_eq!(later.wait(), Some(Duration::from_millis(100)));
        let at_once = later.without_wait().unwrap();
        assert!(!at_once.must_wait() && at_once.wait().is_none());
        // Still taken: the one after that waits 200 ms, as it would have.
        let third = cell.acquire().unwrap().unwrap();
        assert_eq!(third.wait(), Some(Duration::from_millis(200)));
        // And handed back as a token of this bucket.
        cell.release(third);
        cell.release(at_once);
        assert_eq!(
            cell.acquire().unwrap().unwrap().wait(),
            Some(Duration::from_millis(100))
        );
        // A place in the wait for a fleet lease is not waited for at all.
        assert!(Token::Lease.without_wait().is_none());
    }

    #[test]
    fn a_mode_switch_keeps_the_bucket() {
        let cell = RateLimitCell::default();
        let config = RateLimitConfig::per_second(1.0).burst(2);
        cell.set(Some(config.clone()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let _first = cell.acquire().unwrap();
            cell.set(Some(config.clone().observe()));
            assert_eq!(cell.config(), Some(config.clone().observe()));
            let _second = cell.acquire().unwrap();
            assert!(
                cell.acquire().is_err(),
                "the burst of 2 was spent across the switch"
            );
        });
    }
}
