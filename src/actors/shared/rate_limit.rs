//! The rate limiter's cell: the [`RateLimiter`] core behind a short lock, taken by the callers
//! for a token and by the supervisor to reconfigure or penalize it. A call on a supervisor
//! without a rate limit takes no lock.

use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::time::Instant;

use crate::ratelimit::{RateLimitConfig, RateLimited, RateLimiter, Reservation};
use crate::sync::{AtomicBool, Ordering};

/// The token bucket, when a rate limit is configured.
#[derive(Debug, Default)]
pub(crate) struct RateLimitCell {
    limiter: Mutex<Option<RateLimiter>>,
    /// Whether `limiter` holds a limiter. Changed only with the lock held.
    on: AtomicBool,
}

impl RateLimitCell {
    fn lock(&self) -> MutexGuard<'_, Option<RateLimiter>> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token for a call: `Ok(None)` without a rate limit, else its reservation (go
    /// now, or after [`Reservation::wait`]), or refused. A call that is not sent after all
    /// hands its token back with [`release`](Self::release).
    pub(crate) fn acquire(&self) -> Result<Option<Reservation>, RateLimited> {
        if !self.on.load(Ordering::Acquire) {
            return Ok(None);
        }
        let now = Instant::now().into_std();
        self.lock()
            .as_mut()
            .map_or(Ok(None), |limiter| limiter.reserve(now).map(Some))
    }

    /// Hands back the token of a call that was not sent (its caller gave up while waiting for
    /// it, or it was refused, or it followed a coalesced call instead): the bucket is as if
    /// the call had never asked, so an abandoned waiter never slows the next caller.
    pub(crate) fn release(&self, token: Reservation) {
        let now = Instant::now().into_std();
        if let Some(limiter) = self.lock().as_mut() {
            limiter.release(token, now);
        }
    }

    /// Sets, changes or removes the rate limit (at start, and on a reload). A changed limit
    /// keeps the tokens saved and reserved (at most a full bucket of the new size) and any
    /// penalty in force.
    pub(crate) fn set(&self, config: Option<RateLimitConfig>) {
        let mut limiter = self.lock();
        match (limiter.as_mut(), config) {
            (Some(current), Some(config)) => {
                current.reconfigure(config, Instant::now().into_std());
            }
            (_, config) => *limiter = config.map(RateLimiter::new),
        }
        self.on.store(limiter.is_some(), Ordering::Release);
    }

    /// The rate limit in force, if any.
    pub(crate) fn config(&self) -> Option<RateLimitConfig> {
        self.lock().as_ref().map(|limiter| limiter.config().clone())
    }

    /// Lowers the rate until `until` after a dependency's retry-after hint (see
    /// [`RateLimiter::penalize`]); false when there is no rate limit.
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
            Some(limiter) => {
                limiter.penalize(now, until, factor);
                true
            }
            None => false,
        }
    }
}
