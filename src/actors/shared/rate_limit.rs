//! The rate limiter's cell: the [`RateLimiter`] core behind a short lock, taken by the callers
//! for a token and by the supervisor to reconfigure or penalize it. A call on a supervisor
//! without a rate limit takes no lock.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::ratelimit::{RateLimitConfig, RateLimited, RateLimiter};
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

    /// Takes a token for a call: `Ok(None)` to go now, `Ok(Some(wait))` to go after `wait`
    /// (the token is reserved), or refused. Always `Ok(None)` without a rate limit.
    pub(crate) fn acquire(&self) -> Result<Option<Duration>, RateLimited> {
        if !self.on.load(Ordering::Acquire) {
            return Ok(None);
        }
        let now = Instant::now().into_std();
        self.lock()
            .as_mut()
            .map_or(Ok(None), |limiter| limiter.try_acquire(now))
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
