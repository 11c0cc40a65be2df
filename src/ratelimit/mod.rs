//! Token bucket rate limiting, with room to honour a server's `429 Retry-After`.
//!
//! A [`RateLimiter`] holds up to `burst` tokens and refills at `rate` tokens per second; each
//! call takes one. When the bucket is empty a call may **reserve** the next token if it would
//! have to wait at most `max_wait` for it: [`RateLimiter::try_acquire`] then answers
//! `Ok(Some(wait))`, the token is taken at once, and the caller sleeps `wait` before sending.
//! Beyond `max_wait` the call is refused with [`RateLimited::retry_after`], the time after
//! which the same call would be granted (with a wait of exactly `max_wait`).
//!
//! A call that reserved a token and then is not sent (its caller gave up while waiting, or it
//! found nothing to send) hands it back: [`RateLimiter::reserve`] answers the token as a
//! [`Reservation`], and [`RateLimiter::release`] returns it, so the bucket is as if the call
//! had never asked and abandoned waiters never slow the callers after them.
//!
//! [`RateLimiter::penalize`] applies what a server said about its own limit (a 429 with
//! `Retry-After`): the saved burst is dropped and the bucket refills at `rate × factor` until
//! the given instant (`factor = 0`: nothing until then), then at `rate` again.
//!
//! The core is pure: time comes in as `now: Instant`, and all arithmetic is in integers (see
//! [`RateLimiter`] for the exact rule), so the same inputs always give the same waits to the
//! nanosecond.

mod config;
mod limiter;

pub use config::RateLimitConfig;
pub use limiter::{RateLimited, RateLimiter, Reservation};
