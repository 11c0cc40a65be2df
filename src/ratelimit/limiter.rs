//! The token bucket itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::config::RateLimitConfig;

/// Credits accrued per nanosecond at the full rate. A token is `interval × SCALE` credits, so
/// a penalty factor is applied in integer millionths.
const SCALE: u128 = 1_000_000;

/// Clamps of the count remembered for [`RateLimiter::release`]; beyond this the oldest two are
/// merged (see [`RateLimiter`], the exact rule).
const CLAMPS_KEPT: usize = 64;

/// Tells limiters apart, so a reservation is only handed back to the limiter that issued it.
static NEXT_LIMITER: AtomicU64 = AtomicU64::new(0);

/// One token taken by [`RateLimiter::reserve`]: go after [`wait`](Reservation::wait), or hand
/// it back with [`RateLimiter::release`] when the call will not be sent after all.
///
/// Not `Clone`: a token is handed back at most once. Dropping a reservation keeps the token
/// spent (the call was sent).
#[derive(Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The limiter that issued it.
    limiter: u64,
    /// Order of issue within that limiter.
    seq: u64,
    wait: Option<Duration>,
}

impl Reservation {
    /// `None` to go now, `Some(wait)` to go after sleeping `wait`: the answer of
    /// [`RateLimiter::try_acquire`].
    pub fn wait(&self) -> Option<Duration> {
        self.wait
    }

    /// The same token, to be used at once instead of after its wait (a rate limit that only
    /// observes does not make a call wait): the bucket is as the wait left it.
    pub(crate) fn without_wait(self) -> Reservation {
        Reservation { wait: None, ..self }
    }
}

/// What a clamp of the count (a penalty: at most 0; a reconfiguration or the refill: at most a
/// full bucket) means for hand-backs: reservations issued before it (`seq` below `before`) may
/// together restore at most `room` credits, the distance from the count it left up to its
/// bound, less what they restored already. Without those calls, the count would have been
/// clamped there.
#[derive(Debug, Clone, Copy)]
struct Clamp {
    before: u64,
    room: i128,
    /// For a full bucket: the latest turn of the reservations it applies to; once past, only
    /// late hand-backs could meet it and it is forgotten. `None`: kept (a penalty, a
    /// reconfiguration).
    until: Option<Instant>,
}

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
///
/// [`release`](RateLimiter::release) at `now` hands a reservation's token back: the count
/// becomes what it would be had that call never asked (so abandoned waiters never slow the
/// next caller, and those queued behind keep their turns), namely one token more, except where
/// the bucket without the call would have been clamped since the reservation:
///
/// - a penalty would have dropped the token with the saved ones: the reservations issued
///   before a penalty restore together at most what it took from the count (their debt: the
///   count goes back up to zero, no further);
/// - a full bucket stops the refill (the bucket never holds more than `burst`, now or at any
///   instant since, a reconfiguration to a smaller one included): what the refill would have
///   lost does not come back.
///
/// This is exact for a hand-back at or before the reservation's turn (its `wait` elapsed).
/// After its turn the token, unused, still goes back (the call it was taken for was never
/// sent), bounded by the penalties and reconfigurations since and a full bucket now, but no
/// longer by the full buckets in between: once every reservation issued before an instant is
/// past its turn, that instant is forgotten. The last 64 clamps are told apart; beyond that
/// the two oldest are merged, which gives back less, never more.
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
    /// Which limiter issued a reservation.
    id: u64,
    /// Sequence number of the next reservation.
    next_seq: u64,
    /// Recent clamps of the count, oldest first, for [`release`](RateLimiter::release).
    clamps: VecDeque<Clamp>,
    /// The latest turn of a reservation issued so far.
    latest_turn: Option<Instant>,
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
            id: NEXT_LIMITER.fetch_add(1, Ordering::Relaxed),
            next_seq: 0,
            clamps: VecDeque::new(),
            latest_turn: None,
        }
    }

    /// Changes the configuration's `mode` only (nothing else of the limiter changes: the
    /// limiter itself enforces nothing, its owner does).
    pub(crate) fn set_mode(&mut self, mode: crate::mode::PolicyMode) {
        self.config.mode = mode;
    }

    /// Applies a new configuration (assumed validated) at `now`: the tokens in the bucket (or
    /// reserved ahead, as negative tokens) are kept, at most a full bucket of the new size, and
    /// so is a penalty in force. The new rate applies from `now`. Reservations issued before
    /// stay valid: handed back, each returns one token of the new size.
    pub fn reconfigure(&mut self, config: RateLimitConfig, now: Instant) {
        let used = self.last.is_some();
        let tokens = if used {
            let now = self.refill(now);
            self.last = Some(now);
            Some(self.credit as f64 / self.token as f64)
        } else {
            None
        };
        let (last, penalty, old_token) = (self.last, self.penalty, self.token);
        if used {
            // the refill up to now stopped at a full bucket of the old size
            self.remember_clamp(self.capacity - self.credit, self.latest_turn);
        }
        let (id, next_seq, latest_turn) = (self.id, self.next_seq, self.latest_turn);
        let mut clamps = std::mem::take(&mut self.clamps);
        *self = RateLimiter::new(config);
        let ratio = self.token as f64 / old_token as f64;
        for clamp in &mut clamps {
            // rounded up: a credit is a millionth of a nanosecond of refill
            clamp.room = (clamp.room as f64 * ratio).ceil() as i128;
        }
        (self.id, self.next_seq, self.clamps) = (id, next_seq, clamps);
        self.latest_turn = latest_turn;
        if let Some(tokens) = tokens {
            self.last = last;
            self.penalty = penalty;
            self.credit = ((tokens * self.token as f64) as i128).min(self.capacity);
            // a smaller burst drops what is above it, a handed-back token included
            self.remember_clamp(self.capacity - self.credit, None);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Ask for one token at `now`: `Ok(None)` to go now, `Ok(Some(wait))` to go after sleeping
    /// `wait` (the token is reserved), or [`RateLimited`] when the wait would exceed `max_wait`.
    /// The token cannot be handed back: a caller that may give up uses
    /// [`reserve`](RateLimiter::reserve).
    pub fn try_acquire(&mut self, now: Instant) -> Result<Option<Duration>, RateLimited> {
        self.reserve(now).map(|reservation| reservation.wait)
    }

    /// [`try_acquire`](RateLimiter::try_acquire), answering the token as a [`Reservation`]
    /// that [`release`](RateLimiter::release) hands back if the call is not sent after all
    /// (its caller gave up while waiting, or found it had nothing to send).
    pub fn reserve(&mut self, now: Instant) -> Result<Reservation, RateLimited> {
        let now = self.refill(now);
        let wait = if self.credit >= self.token {
            None
        } else {
            let wait = self.time_to_accrue(now, (self.token - self.credit) as u128);
            if wait > self.max_wait_nanos {
                return Err(RateLimited {
                    retry_after: duration_from_nanos(wait - self.max_wait_nanos),
                });
            }
            Some(duration_from_nanos(wait))
        };
        // Without the calls before, the refill up to now would have stopped at a full bucket.
        self.forget_clamps(now);
        if self.latest_turn.is_some() {
            self.remember_clamp(self.capacity - self.credit, self.latest_turn);
        }
        let turn = now + wait.unwrap_or_default();
        self.latest_turn = Some(self.latest_turn.map_or(turn, |latest| latest.max(turn)));
        self.credit -= self.token;
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(Reservation {
            limiter: self.id,
            seq,
            wait,
        })
    }

    /// [`reserve`](RateLimiter::reserve) for a call that must leave `keep` tokens in the
    /// bucket (the share of the burst reserved for more critical calls): it goes now if the
    /// bucket holds `keep + 1` tokens, else it is refused, with the time until it would.
    /// It never waits in line: only a call with nothing to keep (`keep = 0`) queues up to
    /// `max_wait`.
    pub fn reserve_keeping(&mut self, now: Instant, keep: u32) -> Result<Reservation, RateLimited> {
        if keep == 0 {
            return self.reserve(now);
        }
        let at = self.refill(now);
        let need = self.token.saturating_mul(i128::from(keep) + 1);
        if self.credit < need {
            let wait = self.time_to_accrue(at, (need - self.credit) as u128);
            return Err(RateLimited {
                retry_after: duration_from_nanos(wait.max(1)),
            });
        }
        // At least a token in the bucket: it goes now.
        self.reserve(now)
    }

    /// Hands back at `now` the token of a call that will not be sent: the bucket holds what it
    /// would had the call never asked (see the exact rule on [`RateLimiter`]), so the callers
    /// queued behind keep their waits and the next one waits that much less. A reservation
    /// issued by another limiter (one this replaced) is ignored. Returns the tokens given back
    /// (1 but for a penalty since, or a full bucket).
    ///
    /// Why: a waiter that gives up and keeps its token slows every later caller by one
    /// interval, from a dependency that never saw the call; enough of them and callers are
    /// refused by an idle dependency.
    pub fn release(&mut self, reservation: Reservation, now: Instant) -> f64 {
        if reservation.limiter != self.id {
            return 0.0;
        }
        let now = self.refill(now);
        self.forget_clamps(now);
        let mut give = self.token;
        // Clamps since the reservation, oldest first: each would have dropped the token
        // beyond what it left room for.
        for clamp in self
            .clamps
            .iter_mut()
            .filter(|clamp| clamp.before > reservation.seq)
        {
            give = give.min(clamp.room);
            clamp.room -= give;
        }
        give = give.min(self.capacity - self.credit).max(0);
        self.credit += give;
        give as f64 / self.token as f64
    }

    /// Honour a server's refusal at `now` (a 429 with `Retry-After`): drop the saved tokens and
    /// refill at `rate × factor` until `until`, then at `rate`. `factor` is clamped to `[0, 1]`
    /// (NaN counts as 0) and used in millionths; `until ≤ now` only drops the saved tokens.
    /// Replaces any earlier penalty.
    ///
    /// Reservations issued before may still be handed back, but together they bring the count
    /// back up to zero at most (what the penalty would have dropped of their tokens had they
    /// never asked).
    pub fn penalize(&mut self, now: Instant, until: Instant, factor: f64) {
        let now = self.refill(now);
        self.credit = self.credit.min(0);
        self.remember_clamp(-self.credit, None);
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

    /// The count was just clamped, leaving `room` credits below its bound: reservations issued
    /// so far may restore no more than that together.
    /// `until`: see [`Clamp::until`].
    fn remember_clamp(&mut self, room: i128, until: Option<Instant>) {
        let mut until = until;
        // An older clamp with as much room or more never binds: this one binds first (and
        // stands for it as long as it would have been kept).
        while let Some(older) = self.clamps.back().filter(|clamp| clamp.room >= room) {
            until = until.zip(older.until).map(|(a, b)| a.max(b));
            self.clamps.pop_back();
        }
        self.clamps.push_back(Clamp {
            before: self.next_seq,
            room,
            until,
        });
        if self.clamps.len() > CLAMPS_KEPT {
            // merged: the reservations between the two count under the older, smaller room
            if let Some(oldest) = self.clamps.pop_front() {
                if let Some(next) = self.clamps.front_mut() {
                    next.room = next.room.min(oldest.room);
                    next.until = next.until.zip(oldest.until).map(|(a, b)| a.max(b));
                }
            }
        }
    }

    /// Forgets the full-bucket clamps whose reservations are all past their turn at `now`.
    fn forget_clamps(&mut self, now: Instant) {
        self.clamps
            .retain(|clamp| clamp.until.is_none_or(|until| until >= now));
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

    /// Issue 18: two waiters that gave up delayed the next caller from 100 ms to 300 ms; ten
    /// left a dependency idle since the start refusing callers.
    #[test]
    fn abandoned_waiters_never_slow_the_next_caller() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 1, Duration::from_secs(2));
        assert_eq!(l.try_acquire(t0), Ok(None), "sent");
        let waiters: Vec<_> = (0..2).map(|_| l.reserve(t0).unwrap()).collect();
        assert_eq!(waiters[1].wait(), Some(ms(200)));
        for waiter in waiters {
            assert_eq!(l.release(waiter, t0 + ms(10)), 1.0);
        }
        assert_eq!(l.try_acquire(t0 + ms(10)), Ok(Some(ms(90))), "not 290 ms");

        // ten abandoned on a limiter nobody used: the next caller goes at once
        let mut l = limiter(10.0, 1, Duration::from_secs(1));
        let waiters: Vec<_> = (0..11).map(|_| l.reserve(t0).unwrap()).collect();
        assert_eq!(waiters[0].wait(), None, "the first would have gone at once");
        assert_eq!(waiters[10].wait(), Some(ms(1_000)));
        for waiter in waiters {
            l.release(waiter, t0 + ms(10));
        }
        assert_eq!(l.tokens(t0 + ms(10)), 1.0);
        assert_eq!(l.try_acquire(t0 + ms(10)), Ok(None));
    }

    #[test]
    fn a_waiter_in_the_middle_of_the_queue_gives_up() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 1, Duration::from_secs(1));
        l.try_acquire(t0).unwrap();
        let b = l.reserve(t0).unwrap();
        let c = l.reserve(t0).unwrap();
        let d = l.reserve(t0).unwrap();
        assert_eq!(
            [b.wait(), c.wait(), d.wait()],
            [Some(ms(100)), Some(ms(200)), Some(ms(300))]
        );
        l.release(c, t0 + ms(50));
        // as if c never came: b and d keep their turns, the next caller takes c's place
        let mut never = limiter(10.0, 1, Duration::from_secs(1));
        never.try_acquire(t0).unwrap();
        never.reserve(t0).unwrap();
        never.reserve(t0).unwrap();
        assert_eq!(l.tokens(t0 + ms(50)), never.tokens(t0 + ms(50)));
        assert_eq!(l.try_acquire(t0 + ms(50)), Ok(Some(ms(250))));
        assert_eq!(never.try_acquire(t0 + ms(50)), Ok(Some(ms(250))));
    }

    /// A token whose turn came and that was not used goes back while the bucket is below
    /// full (the call it was taken for was never sent), never above full.
    #[test]
    fn an_unused_token_whose_turn_came_goes_back_up_to_a_full_bucket() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 2, Duration::from_secs(1));
        let first = l.reserve(t0).unwrap();
        l.try_acquire(t0).unwrap();
        let late = l.reserve(t0).unwrap();
        assert_eq!(late.wait(), Some(ms(100)));
        // at its turn: the bucket is empty, the token goes back
        assert_eq!(l.release(late, t0 + ms(100)), 1.0);
        assert_eq!(l.tokens(t0 + ms(100)), 1.0);
        // much later the bucket is full: nothing to give back
        assert_eq!(l.release(first, t0 + Duration::from_secs(5)), 0.0);
        assert_eq!(l.tokens(t0 + Duration::from_secs(5)), 2.0);
    }

    #[test]
    fn a_penalty_since_the_reservation_drops_its_token_with_the_saved_ones() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 5, Duration::from_secs(1));
        let went = l.reserve(t0).unwrap();
        for _ in 0..4 {
            l.try_acquire(t0).unwrap();
        }
        let b = l.reserve(t0).unwrap();
        let c = l.reserve(t0).unwrap();
        assert_eq!(l.tokens(t0 + ms(50)), -1.5);
        l.penalize(t0 + ms(50), t0 + ms(50), 1.0);
        // both given back: the count goes up to zero, no further (the penalty would have
        // dropped the half token saved had they never asked)
        assert_eq!(l.release(b, t0 + ms(60)), 1.0);
        assert!((l.release(c, t0 + ms(60)) - 0.5).abs() < 1e-9);
        assert!((l.tokens(t0 + ms(60)) - 0.1).abs() < 1e-9);
        // a token that could go at once before a penalty is dropped by it
        assert_eq!(l.release(went, t0 + ms(60)), 0.0);
        // a reservation issued after the penalty comes back whole
        let mut l = limiter(10.0, 1, Duration::from_secs(1));
        l.try_acquire(t0).unwrap();
        l.penalize(t0, t0 + Duration::from_secs(1), 0.5);
        let d = l.reserve(t0).unwrap();
        assert_eq!(d.wait(), Some(ms(200)));
        assert_eq!(l.release(d, t0 + ms(10)), 1.0);
        assert_eq!(l.try_acquire(t0 + ms(10)), Ok(Some(ms(190))));
    }

    #[test]
    fn reservations_outlive_a_reconfigure_but_not_the_limiter() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 1, Duration::from_secs(1));
        l.try_acquire(t0).unwrap();
        let b = l.reserve(t0).unwrap();
        l.reconfigure(
            RateLimitConfig {
                rate: 100.0,
                burst: 1,
                max_wait: Duration::from_secs(1),
                ..RateLimitConfig::default()
            },
            t0,
        );
        assert!((l.tokens(t0) + 1.0).abs() < 1e-9);
        assert_eq!(l.release(b, t0), 1.0, "one token of the new size");
        assert_eq!(l.try_acquire(t0), Ok(Some(ms(10))));
        // a limiter built anew (the rate limit removed and set again) owes nothing
        let mut other = limiter(10.0, 1, Duration::from_secs(1));
        let foreign = other.reserve(t0).unwrap();
        assert_eq!(l.release(foreign, t0), 0.0);
        assert!((l.tokens(t0) + 1.0).abs() < 1e-9);
    }

    /// Differential model: random reservations (some of which give up, always before or at
    /// their turn), time, penalties and reconfigurations are applied to one limiter, and the
    /// same history without the calls that gave up to another. Afterwards the two buckets
    /// hold the same tokens and answer the next callers alike: the hand-backs left no trace.
    /// (The bucket itself is checked against an independent model in
    /// `tests/ratelimit_model.rs`.)
    #[test]
    fn release_leaves_the_bucket_as_if_the_call_never_asked() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        #[derive(Debug, Clone)]
        enum Op {
            Reserve {
                gives_up: bool,
            },
            /// thousandths of the interval
            Advance(u64),
            /// now + offset (thousandths of the interval, may be past), factor in millionths
            Penalize(i64, u32),
            /// new rate ×1 / ×2 / ×0.5, new burst
            Reconfigure(u8, u32),
            /// the waiters that give up do so now
            GiveUp,
        }
        let op = (0u8..10, 0u64..4_000, 0u32..=1_000_000).prop_map(|(w, x, y)| match w {
            0..=3 => Op::Reserve {
                gives_up: x % 2 == 0,
            },
            4 | 5 => Op::Advance(x % 1_500),
            6 => Op::Penalize(
                x as i64 - 1_000,
                [0, 500_000, 1_000_000, y][(y % 4) as usize],
            ),
            7 => Op::Reconfigure((x % 3) as u8, 1 + y % 6),
            _ => Op::GiveUp,
        });
        let params = (
            prop_oneof![Just(10.0), Just(3.0), Just(1_000.0), 0.5..500.0f64],
            1u32..6,
        );
        let mut runner = TestRunner::new(Config {
            cases: 2_000,
            ..Config::default()
        });
        runner
            .run(
                &(params, proptest::collection::vec(op, 1..60)),
                |((rate, burst), ops)| {
                    let config = |rate: f64, burst: u32| RateLimitConfig {
                        rate,
                        burst,
                        // long enough that the queue rarely refuses
                        max_wait: Duration::from_secs_f64(40.0 / rate),
                        ..RateLimitConfig::default()
                    };
                    let interval = |rate: f64| Duration::from_secs_f64(1.0 / rate);
                    let t0 = Instant::now();
                    let mut now = t0;
                    let (mut rate, mut reconfigured) = (rate, false);
                    let mut asked = RateLimiter::new(config(rate, burst));
                    let mut never = RateLimiter::new(config(rate, burst));
                    // both seen from t0 (a reconfigure refills a limiter never used to the new
                    // burst, one in use keeps its count)
                    asked.refill(t0);
                    never.refill(t0);
                    // reservations that will give up, with their turn
                    let mut waiting: Vec<(Reservation, Instant)> = Vec::new();
                    let give_up = |asked: &mut RateLimiter,
                                   waiting: &mut Vec<(Reservation, Instant)>,
                                   now: Instant,
                                   by: Option<Instant>| {
                        let (leave, stay) = std::mem::take(waiting)
                            .into_iter()
                            .partition(|(_, turn)| by.is_none_or(|by| *turn <= by));
                        *waiting = stay;
                        for (reservation, turn) in leave {
                            assert!(turn >= now);
                            asked.release(reservation, now);
                        }
                    };
                    for op in ops {
                        match op {
                            Op::Reserve { gives_up } => {
                                // a refused call never asked, in either history
                                let Ok(reservation) = asked.reserve(now) else {
                                    continue;
                                };
                                if gives_up {
                                    let turn = now + reservation.wait().unwrap_or_default();
                                    waiting.push((reservation, turn));
                                } else {
                                    prop_assert!(never.reserve(now).is_ok());
                                }
                            }
                            Op::Advance(milli) => {
                                let to = now + interval(rate).mul_f64(milli as f64 / 1e3);
                                // whoever's turn would pass gives up before it
                                give_up(&mut asked, &mut waiting, now, Some(to));
                                now = to;
                            }
                            Op::Penalize(offset, factor) => {
                                let offset =
                                    interval(rate).mul_f64(offset.unsigned_abs() as f64 / 1e3);
                                let until = if offset.is_zero() || factor % 2 == 0 {
                                    now + offset
                                } else {
                                    now.checked_sub(offset).unwrap_or(now)
                                };
                                let factor = f64::from(factor) / 1e6;
                                asked.penalize(now, until, factor);
                                never.penalize(now, until, factor);
                            }
                            Op::Reconfigure(which, burst) => {
                                rate *= [1.0, 2.0, 0.5][usize::from(which)];
                                reconfigured = true;
                                asked.reconfigure(config(rate, burst), now);
                                never.reconfigure(config(rate, burst), now);
                            }
                            Op::GiveUp => give_up(&mut asked, &mut waiting, now, None),
                        }
                    }
                    give_up(&mut asked, &mut waiting, now, None);
                    // reconfigure converts the count through f64: allow its rounding there
                    let slack = if reconfigured { 1e-6 } else { 0.0 };
                    let (a, n) = (asked.tokens(now), never.tokens(now));
                    prop_assert!((a - n).abs() <= slack, "tokens {a} vs {n}");
                    for step in 0..4u32 {
                        let at = now + interval(rate).mul_f64(f64::from(step) * 0.37);
                        let (a, n) = (asked.try_acquire(at), never.try_acquire(at));
                        let close = match (a, n) {
                            (Ok(Some(x)), Ok(Some(y)))
                            | (
                                Err(RateLimited { retry_after: x }),
                                Err(RateLimited { retry_after: y }),
                            ) => x.abs_diff(y) <= Duration::from_nanos(u64::from(reconfigured)),
                            (Ok(None), Ok(Some(x))) | (Ok(Some(x)), Ok(None)) => {
                                reconfigured && x <= Duration::from_nanos(1)
                            }
                            (x, y) => x == y,
                        };
                        prop_assert!(close, "next caller {step}: {a:?} vs {n:?}");
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn a_call_keeping_tokens_goes_only_above_them_and_never_waits() {
        let t0 = Instant::now();
        let mut l = limiter(10.0, 4, ms(1_000));
        // A full bucket of 4: one keeping 2 goes while 3 are left, then no more.
        assert_eq!(l.reserve_keeping(t0, 2).map(|r| r.wait()), Ok(None));
        assert_eq!(l.reserve_keeping(t0, 2).map(|r| r.wait()), Ok(None));
        let refused = l.reserve_keeping(t0, 2).unwrap_err();
        // 2 tokens left, 3 needed: one interval (100 ms) away.
        assert_eq!(refused.retry_after, ms(100));
        // A call keeping nothing takes the reserve, then queues.
        assert_eq!(l.reserve_keeping(t0, 0).map(|r| r.wait()), Ok(None));
        assert_eq!(l.reserve_keeping(t0, 0).map(|r| r.wait()), Ok(None));
        assert_eq!(
            l.reserve_keeping(t0, 0).map(|r| r.wait()),
            Ok(Some(ms(100)))
        );
        assert!(l.reserve_keeping(t0, 1).is_err());
    }
}
