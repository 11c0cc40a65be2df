//! The token bucket itself.

use std::time::{Duration, Instant};

use super::config::RateLimitConfig;

/// Credits accrued per nanosecond at the full rate. A token is `interval × SCALE` credits, so
/// a penalty factor is applied in integer millionths.
const SCALE: u128 = 1_000_000;

/// A call refused by [`RateLimiter::try_acquire`]: it would have had to wait longer than
/// `max_wait` for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// After this long the same call would be granted, with a wait of exactly `max_wait`
    /// (assuming no other call takes a token and no new penalty arrives in between).
    pub retry_after: Duration,
}

/// Token bucket rate limiter for one dependency.
///
/// # Exact rule
///
/// `rate` becomes an interval `T = round(1e9 / rate)` nanoseconds per token (at least 1). The
/// bucket holds a token count that is a multiple of `1 / (T × 1e6)`: it gains `1 / T` token per
/// nanosecond, or `factor / T` during a penalty (`factor` rounded to millionths), never more
/// than `burst` in total. It starts full at the first instant the limiter sees; an instant
/// earlier than the latest one seen is taken as that latest one.
///
/// [`try_acquire`](RateLimiter::try_acquire) at `now`:
///
/// - at least one token: take it, `Ok(None)` (go now);
/// - otherwise let `wait` be the time, rounded up to a whole nanosecond, until the bucket would
///   hold one token (counting the penalty, if any, then the full rate after it). If
///   `wait ≤ max_wait`, take the token now (the count goes below zero: later calls queue
///   behind this one) and answer `Ok(Some(wait))`; otherwise nothing is taken and the answer is
///   `Err(RateLimited { retry_after: wait − max_wait })`.
///
/// [`penalize`](RateLimiter::penalize) at `now` drops the tokens saved (the count becomes
/// `min(count, 0)`, reservations already made stay) and refills at `rate × factor` until
/// `until`. The latest penalty replaces any earlier one, including one still running.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    config: RateLimitConfig,
    /// Credits per token: `T × SCALE`.
    token: i128,
    /// Credits of a full bucket.
    capacity: i128,
    /// Credits now (negative when tokens are reserved ahead); meaningful once `last` is set.
    credit: i128,
    /// The instant `credit` was brought up to date; `None` before first use.
    last: Option<Instant>,
    /// A penalty still running at `last`: its end and the credits it accrues per nanosecond.
    penalty: Option<(Instant, u128)>,
    max_wait_nanos: u128,
}

impl RateLimiter {
    /// A full bucket. `config` is assumed validated ([`RateLimitConfig::validate`]).
    pub fn new(config: RateLimitConfig) -> Self {
        let token = i128::from(interval_nanos(config.rate)) * SCALE as i128;
        RateLimiter {
            token,
            capacity: token * i128::from(config.burst.max(1)),
            credit: 0,
            last: None,
            penalty: None,
            max_wait_nanos: config.max_wait.as_nanos(),
            config,
        }
    }

    /// Applies a new configuration (assumed validated) at `now`: the tokens in the bucket (or
    /// reserved ahead, as negative tokens) are kept, at most a full bucket of the new size, and
    /// so is a penalty in force. The new rate applies from `now`.
    pub fn reconfigure(&mut self, config: RateLimitConfig, now: Instant) {
        let used = self.last.is_some();
        let tokens = if used {
            let now = self.refill(now);
            self.last = Some(now);
            Some(self.credit as f64 / self.token as f64)
        } else {
            None
        };
        let (last, penalty) = (self.last, self.penalty);
        *self = RateLimiter::new(config);
        if let Some(tokens) = tokens {
            self.last = last;
            self.penalty = penalty;
            self.credit = ((tokens * self.token as f64) as i128).min(self.capacity);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Ask for one token at `now`: `Ok(None)` to go now, `Ok(Some(wait))` to go after sleeping
    /// `wait` (the token is reserved), or [`RateLimited`] when the wait would exceed `max_wait`.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Option<Duration>, RateLimited> {
        let now = self.refill(now);
        if self.credit >= self.token {
            self.credit -= self.token;
            return Ok(None);
        }
        let wait = self.time_to_accrue(now, (self.token - self.credit) as u128);
        if wait <= self.max_wait_nanos {
            self.credit -= self.token;
            Ok(Some(duration_from_nanos(wait)))
        } else {
            Err(RateLimited {
                retry_after: duration_from_nanos(wait - self.max_wait_nanos),
            })
        }
    }

    /// Honour a server's refusal at `now` (a 429 with `Retry-After`): drop the saved tokens and
    /// refill at `rate × factor` until `until`, then at `rate`. `factor` is clamped to `[0, 1]`
    /// (NaN counts as 0) and used in millionths; `until ≤ now` only drops the saved tokens.
    /// Replaces any earlier penalty.
    pub fn penalize(&mut self, now: Instant, until: Instant, factor: f64) {
        let now = self.refill(now);
        self.credit = self.credit.min(0);
        let factor = if factor.is_nan() {
            0.0
        } else {
            factor.clamp(0.0, 1.0)
        };
        let per_nano = (factor * SCALE as f64).round() as u128;
        self.penalty = (until > now).then_some((until, per_nano));
    }

    /// Tokens in the bucket at `now`, negative when calls have reserved tokens ahead (does not
    /// mutate).
    pub fn tokens(&self, now: Instant) -> f64 {
        let mut copy = self.clone();
        copy.refill(now);
        copy.credit as f64 / self.token as f64
    }

    /// When the penalty in force at `now` ends, if there is one.
    pub fn penalized_until(&self, now: Instant) -> Option<Instant> {
        self.penalty
            .map(|(until, _)| until)
            .filter(|until| *until > now)
    }

    /// Bring the credit up to `now` (or the latest instant seen, if later) and return that
    /// instant.
    fn refill(&mut self, now: Instant) -> Instant {
        let Some(last) = self.last else {
            self.last = Some(now);
            self.credit = self.capacity;
            return now;
        };
        if now <= last {
            return last;
        }
        let mut gained: u128 = 0;
        let mut from = last;
        if let Some((until, per_nano)) = self.penalty {
            let end = until.min(now);
            gained = nanos_between(from, end).saturating_mul(per_nano);
            from = end;
            if until <= now {
                self.penalty = None;
            }
        }
        gained = gained.saturating_add(nanos_between(from, now).saturating_mul(SCALE));
        let room = (self.capacity - self.credit) as u128;
        self.credit += gained.min(room) as i128;
        self.last = Some(now);
        now
    }

    /// Nanoseconds (rounded up) from `now` until `need` more credits have accrued.
    fn time_to_accrue(&self, now: Instant, need: u128) -> u128 {
        let mut need = need;
        let mut waited: u128 = 0;
        if let Some((until, per_nano)) = self.penalty.filter(|(until, _)| *until > now) {
            let span = nanos_between(now, until);
            let during = span.saturating_mul(per_nano);
            if need <= during {
                return need.div_ceil(per_nano);
            }
            need -= during;
            waited = span;
        }
        waited.saturating_add(need.div_ceil(SCALE))
    }
}

/// `round(1e9 / rate)` nanoseconds, at least 1 (and `u64::MAX` for absurdly low rates).
fn interval_nanos(rate: f64) -> u64 {
    let nanos = (1e9 / rate).round();
    if nanos.is_nan() || nanos < 1.0 {
        1
    } else if nanos >= u64::MAX as f64 {
        u64::MAX
    } else {
        nanos as u64
    }
}

fn nanos_between(from: Instant, to: Instant) -> u128 {
    to.saturating_duration_since(from).as_nanos()
}

fn duration_from_nanos(nanos: u128) -> Duration {
    u64::try_from(nanos).map_or(Duration::MAX, Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limiter(rate: f64, burst: u32, max_wait: Duration) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            rate,
            burst,
            max_wait,
            ..RateLimitConfig::default()
        })
    }

    #[test]
    fn a_full_bucket_then_one_token_per_interval() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 3, Duration::ZERO); // 100 ms per token
        for _ in 0..3 {
            assert_eq!(l.try_acquire(t0), Ok(None));
        }
        assert_eq!(
            l.try_acquire(t0),
            Err(RateLimited {
                retry_after: ms(100)
            })
        );
        assert_eq!(
            l.try_acquire(t0 + ms(40)),
            Err(RateLimited {
                retry_after: ms(60)
            })
        );
        assert_eq!(l.try_acquire(t0 + ms(100)), Ok(None));
        assert_eq!(l.tokens(t0 + ms(100)), 0.0);
        assert_eq!(l.tokens(t0 + ms(250)), 1.5);
        // the bucket never holds more than burst
        assert_eq!(l.tokens(t0 + Duration::from_secs(3600)), 3.0);
    }

    #[test]
    fn reservations_within_max_wait_queue_up() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 1, ms(250));
        assert_eq!(l.try_acquire(t0), Ok(None));
        assert_eq!(l.try_acquire(t0), Ok(Some(ms(100))));
        assert_eq!(l.try_acquire(t0), Ok(Some(ms(200))));
        assert_eq!(l.tokens(t0), -2.0);
        // the next would wait 300 ms: refused, and granted (with 250 ms) 50 ms later
        assert_eq!(
            l.try_acquire(t0),
            Err(RateLimited {
                retry_after: ms(50)
            })
        );
        assert_eq!(l.try_acquire(t0 + ms(50)), Ok(Some(ms(250))));
    }

    #[test]
    fn waits_round_up_to_the_nanosecond() {
        let t0 = Instant::now();
        let mut l = limiter(3.0, 1, Duration::from_secs(1)); // 333_333_333 ns per token
        assert_eq!(l.try_acquire(t0), Ok(None));
        assert_eq!(
            l.try_acquire(t0 + Duration::from_nanos(1)),
            Ok(Some(Duration::from_nanos(333_333_332)))
        );
    }

    #[test]
    fn a_penalty_drops_the_burst_and_slows_the_refill_until_it_ends() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 5, ms(150));
        assert_eq!(l.tokens(t0), 5.0);
        l.penalize(t0, t0 + Duration::from_secs(1), 0.5); // 200 ms per token until 1 s
        assert_eq!(l.tokens(t0), 0.0);
        assert_eq!(l.penalized_until(t0), Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            l.try_acquire(t0),
            Err(RateLimited {
                retry_after: ms(50)
            })
        );
        let at = t0 + ms(900); // 4.5 tokens
        for _ in 0..4 {
            assert_eq!(l.try_acquire(at), Ok(None));
        }
        assert_eq!(l.try_acquire(at), Ok(Some(ms(100))));
        // 1.5 tokens short: 0.5 by the end of the penalty, then 1 at full rate (100 ms)
        assert_eq!(
            l.try_acquire(at),
            Err(RateLimited {
                retry_after: ms(50)
            })
        );
        assert_eq!(l.tokens(t0 + ms(1_050)), 0.5);
        assert_eq!(l.penalized_until(t0 + ms(1_050)), None);
    }

    #[test]
    fn factor_zero_holds_everything_until_the_end_of_the_penalty() {
        let t0 = Instant::now();
        let mut l = limiter(100.0, 10, Duration::from_secs(60));
        l.penalize(t0, t0 + Duration::from_secs(5), 0.0);
        // the first token comes one interval after the penalty ends
        assert_eq!(l.try_acquire(t0 + ms(1)), Ok(Some(ms(5_009))));
        assert_eq!(l.try_acquire(t0 + ms(1)), Ok(Some(ms(5_019))));
        // NaN counts as 0; a later penalty replaces the earlier one, the two reservations stay
        l.penalize(t0 + ms(2), t0 + ms(3), f64::NAN);
        assert_eq!(l.penalized_until(t0 + ms(2)), Some(t0 + ms(3)));
        assert_eq!(l.tokens(t0 + ms(3)), -2.0);
        assert_eq!(l.try_acquire(t0 + ms(3)), Ok(Some(ms(30))));
    }

    #[test]
    fn a_penalty_in_the_past_only_drops_the_burst() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 4, Duration::ZERO);
        l.penalize(t0 + ms(10), t0, 0.0);
        assert_eq!(l.penalized_until(t0 + ms(10)), None);
        assert_eq!(l.tokens(t0 + ms(110)), 1.0);
        // reservations made before a penalty stay
        let mut l = limiter(10.0, 1, Duration::from_secs(1));
        l.try_acquire(t0).unwrap();
        l.try_acquire(t0).unwrap();
        l.penalize(t0, t0, 1.0);
        assert_eq!(l.tokens(t0), -1.0);
    }

    #[test]
    fn earlier_instants_count_as_the_latest_one() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 1, Duration::ZERO);
        assert_eq!(l.try_acquire(t0 + ms(500)), Ok(None));
        assert_eq!(
            l.try_acquire(t0),
            Err(RateLimited {
                retry_after: ms(100)
            })
        );
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let t0 = Instant::now();
        let mut l = limiter(1e-9, u32::MAX, Duration::MAX);
        assert_eq!(l.try_acquire(t0), Ok(None));
        let mut slow = limiter(1e-9, 1, Duration::MAX);
        slow.try_acquire(t0).unwrap();
        assert!(matches!(slow.try_acquire(t0), Ok(Some(d)) if d > Duration::from_secs(1 << 29)));
        let mut fast = limiter(1e9, 1, Duration::ZERO);
        assert_eq!(fast.try_acquire(t0), Ok(None));
        assert_eq!(
            fast.try_acquire(t0),
            Err(RateLimited {
                retry_after: Duration::from_nanos(1)
            })
        );
        fast.penalize(t0, t0 + Duration::from_secs(1 << 40), 1e-6);
        assert_eq!(fast.tokens(t0 + Duration::from_secs(1 << 41)), 1.0);
    }

    #[test]
    fn reconfigure_keeps_the_tokens_up_to_the_new_burst() {
        let t0 = Instant::now();
        let mut limiter = limiter(10.0, 5, ms(0));
        for _ in 0..2 {
            assert_eq!(limiter.try_acquire(t0), Ok(None));
        }
        assert!((limiter.tokens(t0) - 3.0).abs() < 1e-9);
        limiter.reconfigure(
            RateLimitConfig {
                rate: 100.0,
                burst: 2,
                max_wait: ms(0),
                ..RateLimitConfig::default()
            },
            t0,
        );
        assert!(
            (limiter.tokens(t0) - 2.0).abs() < 1e-9,
            "capped at the new burst"
        );
        assert_eq!(limiter.try_acquire(t0), Ok(None));
        assert_eq!(limiter.try_acquire(t0), Ok(None));
        assert!(limiter.try_acquire(t0).is_err());
        // The new rate: one token per 10 ms.
        assert_eq!(limiter.try_acquire(t0 + ms(10)), Ok(None));
    }
}
