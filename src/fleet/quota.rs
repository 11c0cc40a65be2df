//! [`FleetQuota`]: a replica's view of the fleet's rate limit — tokens leased from the store
//! and handed to calls from memory, or a local share while the store is away.
//!
//! # Semantics
//!
//! The fleet's limit is `rate` tokens a second with a `burst`, kept in the store (GCRA, see
//! [`store`](super::store)). A replica leases `lease_tokens = ceil(rate / expected_replicas ×
//! lease)` tokens at a time (at least 1, at most the burst) and asks for the next lease when
//! it holds half of one or less and a call has asked since the last lease, so a busy replica
//! rarely waits for the store and an idle one stops leasing. A leased token unused for
//! [`LEASE_TTL`] is dropped (the fleet counted it when it was leased).
//!
//! [`try_acquire`](FleetQuota::try_acquire) at `now`:
//!
//! - a leased token in hand: [`Take::Go`];
//! - none, and the store is shared: [`Take::Lease`] when the call may wait (`max_wait > 0`):
//!   it waits for the next lease up to `max_wait`; otherwise refused with `retry_after` = the
//!   time until the store has a token again (or one lease round trip when unknown);
//! - the store away: the local token bucket of `rate / expected_replicas` (and `burst /
//!   expected_replicas`, at least 1) decides, with [`RateLimiter`]'s exact rule.
//!
//! The store's answers and failures come in through [`granted`](FleetQuota::granted) and
//! [`failed`](FleetQuota::failed); [`poll`](FleetQuota::poll) tells the driver what to do next.
//! After a failure the store is tried again after `reconnect_min`, doubling up to
//! `reconnect_max`; the first lease granted makes the quota shared again.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::{FleetConfig, Grant};
use crate::criticality::Shares;
use crate::ratelimit::{RateLimitConfig, RateLimited, RateLimiter, Reservation};

/// How long a leased token may wait for a call before it is dropped.
pub const LEASE_TTL: Duration = Duration::from_secs(1);

/// Exponential backoff between tries of an unreachable store.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait before the next try, doubling the one after it.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A token a call took; handed back with [`FleetQuota::release`] when the call is not sent.
#[derive(Debug, PartialEq, Eq)]
pub enum FleetToken {
    /// A leased token.
    Leased,
    /// A token of the local share (the store away): go after its wait.
    Local(Reservation),
}

impl FleetToken {
    /// How long the call must wait before it goes (only a local share reserves ahead).
    pub fn wait(&self) -> Option<Duration> {
        match self {
            FleetToken::Leased => None,
            FleetToken::Local(reservation) => reservation.wait(),
        }
    }

    /// The same token, to be used at once instead of after its wait (see
    /// [`Reservation::without_wait`]).
    pub(crate) fn without_wait(self) -> FleetToken {
        match self {
            FleetToken::Local(reservation) => FleetToken::Local(reservation.without_wait()),
            token => token,
        }
    }
}

/// What [`FleetQuota::try_acquire`] answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// Go (after the token's [`wait`](FleetToken::wait), if any).
    Go(FleetToken),
    /// No token in hand: wait for the next lease, up to `max_wait`, then ask again.
    Lease,
    /// Refused.
    Refused(RateLimited),
}

/// What the driver should do next ([`FleetQuota::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ask the store for this many tokens, then report with `granted` or `failed`.
    Ask(u32),
    /// Nothing before this instant (or before a call asks, whichever is first).
    Sleep(Instant),
    /// Nothing until a call asks (or an answer comes).
    Idle,
}

/// One replica's share of the fleet's rate limit. See the module docs.
#[derive(Debug, Clone)]
pub struct FleetQuota {
    interval: Duration,
    burst: u32,
    max_wait: Duration,
    lease_tokens: u32,
    /// Leased tokens in hand, and when they are dropped.
    stock: u32,
    stock_until: Option<Instant>,
    shared: bool,
    /// The local share, deciding while the store is away.
    local: RateLimiter,
    /// A lease is being asked for.
    asking: bool,
    /// A call asked since the last lease.
    demand: bool,
    /// The store has no token before this.
    next_token: Option<Instant>,
    /// While the store is away: when to try it again.
    retry_store: Option<Instant>,
    backoff: Backoff,
    /// The store round trip last seen (the `retry_after` when nothing better is known).
    round_trip: Duration,
    /// The spread of the next ask after a short grant (see [`granted`](Self::granted)).
    spread: Duration,
    rng: SmallRng,
}

impl FleetQuota {
    /// The fleet quota of `limit` for `fleet` (both assumed validated). Shared from the start
    /// (its first lease is asked for at once); falls back on the first failure.
    pub fn new(limit: &RateLimitConfig, fleet: &FleetConfig, seed: u64) -> Self {
        let replicas = f64::from(fleet.expected_replicas.max(1));
        let share = limit.rate / replicas;
        let lease_tokens = (share * fleet.lease.as_secs_f64())
            .ceil()
            .clamp(1.0, f64::from(limit.burst));
        let local = RateLimitConfig {
            rate: share,
            burst: (f64::from(limit.burst) / replicas).ceil().max(1.0) as u32,
            ..limit.clone()
        };
        let interval = Duration::from_secs_f64(1.0 / limit.rate);
        FleetQuota {
            interval,
            spread: interval.saturating_mul(fleet.expected_replicas.max(1)),
            rng: SmallRng::seed_from_u64(seed),
            burst: limit.burst,
            max_wait: limit.max_wait,
            lease_tokens: lease_tokens as u32,
            stock: 0,
            stock_until: None,
            shared: true,
            local: RateLimiter::new(local),
            asking: false,
            demand: true,
            next_token: None,
            retry_store: None,
            backoff: Backoff::new(fleet.reconnect_min, fleet.reconnect_max),
            round_trip: Duration::from_millis(1),
        }
    }

    /// When to ask a starved store again: its next token, plus a random part of the time the
    /// fleet takes to use one token per replica, so replicas waiting for the same token do
    /// not all ask at its instant (the first to ask would win every time).
    fn next_ask(&mut self, now: Instant, retry_after: Duration) -> Instant {
        let spread = self.spread.as_nanos().min(u128::from(u64::MAX)) as u64;
        let jitter = if spread == 0 {
            0
        } else {
            self.rng.random_range(0..spread)
        };
        now + retry_after + Duration::from_nanos(jitter)
    }

    /// The fleet's interval between tokens and its burst (what a lease asks the store with).
    pub fn limit(&self) -> (Duration, u32) {
        (self.interval, self.burst)
    }

    /// Tokens asked for in one lease.
    pub fn lease_tokens(&self) -> u32 {
        self.lease_tokens
    }

    /// Whether the store decides (it answered the last lease).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Leased tokens in hand at `now`.
    pub fn stock(&mut self, now: Instant) -> u32 {
        if self.stock_until.is_some_and(|until| now >= until) {
            self.stock = 0;
            self.stock_until = None;
        }
        self.stock
    }

    /// A token for a call at `now` (see the module docs).
    pub fn try_acquire(&mut self, now: Instant) -> Take {
        self.demand = true;
        if self.stock(now) > 0 {
            self.stock -= 1;
            return Take::Go(FleetToken::Leased);
        }
        if !self.shared {
            return match self.local.reserve(now.into_std()) {
                Ok(reservation) => Take::Go(FleetToken::Local(reservation)),
                Err(limited) => Take::Refused(limited),
            };
        }
        if !self.max_wait.is_zero() {
            return Take::Lease;
        }
        let retry_after = self
            .next_token
            .map_or(self.round_trip, |at| at.saturating_duration_since(now))
            .max(Duration::from_nanos(1));
        Take::Refused(RateLimited { retry_after })
    }

    /// [`try_acquire`](Self::try_acquire) for a call that must leave `reserved` (in units of
    /// 2^-16) of the tokens for more critical calls ([`criticality`](crate::criticality)): it
    /// takes a leased token only while more than that share of a lease stays in hand, and a
    /// local share's token only while that share of the local burst stays in the bucket
    /// ([`RateLimiter::reserve_keeping`]); it never waits for a lease. A call with nothing to
    /// leave (`reserved` 0, or a share that rounds down to no token) is
    /// [`try_acquire`](Self::try_acquire)'s.
    pub fn try_acquire_keeping(&mut self, now: Instant, reserved: u32) -> Take {
        let keep = |capacity: u32| capacity - Shares::usable(reserved, capacity);
        let (keep_leased, keep_local) = (
            keep(self.lease_tokens.max(1)),
            keep(self.local.config().burst.max(1)),
        );
        if keep_leased == 0 && (self.shared || keep_local == 0) {
            return self.try_acquire(now);
        }
        self.demand = true;
        if self.stock(now) > keep_leased {
            self.stock -= 1;
            return Take::Go(FleetToken::Leased);
        }
        if !self.shared {
            return match self.local.reserve_keeping(now.into_std(), keep_local) {
                Ok(reservation) => Take::Go(FleetToken::Local(reservation)),
                Err(limited) => Take::Refused(limited),
            };
        }
        let retry_after = self
            .next_token
            .map_or(self.round_trip, |at| at.saturating_duration_since(now))
            .max(Duration::from_nanos(1));
        Take::Refused(RateLimited { retry_after })
    }

    /// Whether a call that took [`Take::Lease`] at `since` should stop waiting at `now`, and
    /// with which `retry_after`: `None` to keep waiting.
    pub fn wait_over(&self, since: Instant, now: Instant) -> Option<RateLimited> {
        (now >= since + self.max_wait).then(|| RateLimited {
            retry_after: self
                .next_token
                .map_or(self.round_trip, |at| at.saturating_duration_since(now))
                .max(Duration::from_nanos(1)),
        })
    }

    /// The longest a call may wait for a lease.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Hands back the token of a call that was not sent.
    pub fn release(&mut self, token: FleetToken, now: Instant) {
        match token {
            FleetToken::Leased => {
                if self.stock_until.is_some_and(|until| now < until) {
                    self.stock += 1;
                }
            }
            FleetToken::Local(reservation) => {
                self.local.release(reservation, now.into_std());
            }
        }
    }

    /// What the driver should do at `now`.
    pub fn poll(&mut self, now: Instant) -> Next {
        if self.asking {
            return Next::Idle;
        }
        if !self.shared {
            return match self.retry_store {
                Some(at) if now < at => Next::Sleep(at),
                _ => self.ask(),
            };
        }
        let stock = self.stock(now);
        if !self.demand || stock > self.lease_tokens / 2 {
            return match self.stock_until {
                Some(until) if self.stock > 0 => Next::Sleep(until),
                _ => Next::Idle,
            };
        }
        match self.next_token {
            Some(at) if now < at => Next::Sleep(at),
            _ => self.ask(),
        }
    }

    fn ask(&mut self) -> Next {
        self.asking = true;
        self.demand = false;
        Next::Ask(self.lease_tokens)
    }

    /// The store granted `grant` at `now`, `round_trip` after it was asked. Returns `true`
    /// when this made the quota shared again.
    pub fn granted(&mut self, now: Instant, grant: Grant, round_trip: Duration) -> bool {
        self.asking = false;
        self.round_trip = round_trip.max(Duration::from_micros(1));
        if grant.tokens > 0 {
            self.stock(now);
            self.stock += grant.tokens;
            self.stock_until = Some(now + LEASE_TTL);
        }
        self.next_token =
            (grant.tokens < self.lease_tokens).then(|| self.next_ask(now, grant.retry_after));
        if grant.tokens < self.lease_tokens {
            // Still hungry: the next ask waits for the store's next token.
            self.demand = true;
        }
        self.backoff.reset();
        self.retry_store = None;
        let restored = !self.shared;
        self.shared = true;
        restored
    }

    /// The store failed (or timed out) at `now`. Returns `true` when this made the quota fall
    /// back to the local share.
    pub fn failed(&mut self, now: Instant) -> bool {
        self.asking = false;
        self.next_token = None;
        self.retry_store = Some(now + self.backoff.next_delay());
        let fell = self.shared;
        self.shared = false;
        fell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn quota(max_wait: Duration) -> FleetQuota {
        // 100/s over 4 replicas: a share of 25/s, leases of 50 ms → 2 tokens.
        let limit = RateLimitConfig::per_second(100.0)
            .burst(10)
            .max_wait(max_wait);
        FleetQuota::new(&limit, &FleetConfig::redis("", 4), 7)
    }

    #[tokio::test(start_paused = true)]
    async fn leased_tokens_go_and_the_next_lease_is_asked_at_half() {
        let mut q = quota(Duration::ZERO);
        let now = Instant::now();
        assert_eq!(q.lease_tokens(), 2);
        assert_eq!(q.poll(now), Next::Ask(2), "the first lease at once");
        assert_eq!(q.poll(now), Next::Idle, "one ask at a time");
        let grant = Grant {
            tokens: 2,
            retry_after: Duration::ZERO,
        };
        assert!(!q.granted(now, grant, MS));
        assert_eq!(
            q.poll(now),
            Next::Sleep(now + LEASE_TTL),
            "no call asked since"
        );
        assert_eq!(q.try_acquire(now), Take::Go(FleetToken::Leased));
        assert_eq!(q.poll(now), Next::Ask(2), "at half a lease, the next one");
        assert_eq!(q.try_acquire(now), Take::Go(FleetToken::Leased));
        // Empty, no wait allowed: refused for one round trip.
        assert_eq!(
            q.try_acquire(now),
            Take::Refused(RateLimited { retry_after: MS })
        );
        // The store has one token, the next in 10 ms.
        q.granted(
            now,
            Grant {
                tokens: 1,
                retry_after: 10 * MS,
            },
            MS,
        );
        assert_eq!(q.try_acquire(now), Take::Go(FleetToken::Leased));
        // The next ask: at the store's next token, spread over up to 4 × 10 ms after it.
        let Take::Refused(limited) = q.try_acquire(now + 4 * MS) else {
            panic!("refused")
        };
        assert!(
            (6 * MS..46 * MS).contains(&limited.retry_after),
            "{limited:?}"
        );
        let at = now + 4 * MS + limited.retry_after;
        assert_eq!(q.poll(now + 4 * MS), Next::Sleep(at));
        assert_eq!(q.poll(at), Next::Ask(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_may_wait_waits_for_the_lease() {
        let mut q = quota(20 * MS);
        let now = Instant::now();
        assert_eq!(q.try_acquire(now), Take::Lease);
        assert_eq!(q.wait_over(now, now + 19 * MS), None);
        assert!(q.wait_over(now, now + 20 * MS).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn leased_tokens_expire_and_released_ones_come_back() {
        let mut q = quota(Duration::ZERO);
        let now = Instant::now();
        q.poll(now);
        q.granted(
            now,
            Grant {
                tokens: 2,
                retry_after: Duration::ZERO,
            },
            MS,
        );
        let Take::Go(token) = q.try_acquire(now) else {
            panic!("a token")
        };
        q.release(token, now);
        assert_eq!(q.stock(now), 2);
        assert_eq!(q.stock(now + LEASE_TTL), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_store_falls_back_to_the_local_share_and_backs_off() {
        let mut q = quota(Duration::ZERO);
        let now = Instant::now();
        assert_eq!(q.poll(now), Next::Ask(2));
        assert!(q.failed(now), "fell back");
        // The local share: 25/s with a burst of ceil(10 / 4) = 3.
        for _ in 0..3 {
            assert!(matches!(q.try_acquire(now), Take::Go(FleetToken::Local(_))));
        }
        assert!(matches!(q.try_acquire(now), Take::Refused(_)));
        assert!(matches!(
            q.try_acquire(now + 40 * MS),
            Take::Go(FleetToken::Local(_))
        ));
        // Tried again after 100 ms, then 200 ms.
        assert_eq!(q.poll(now), Next::Sleep(now + 100 * MS));
        let t1 = now + 100 * MS;
        assert_eq!(q.poll(t1), Next::Ask(2));
        assert!(!q.failed(t1));
        assert_eq!(q.poll(t1), Next::Sleep(t1 + 200 * MS));
        let t2 = t1 + 200 * MS;
        assert_eq!(q.poll(t2), Next::Ask(2));
        let grant = Grant {
            tokens: 2,
            retry_after: Duration::ZERO,
        };
        assert!(q.granted(t2, grant, MS), "shared again");
        assert_eq!(q.try_acquire(t2), Take::Go(FleetToken::Leased));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_must_leave_a_reserve_stops_short_of_it_and_never_waits() {
        // 100/s over 1 replica, leases of 50 ms: 5 tokens; half of them reserved.
        const HALF: u32 = 1 << 15;
        let limit = RateLimitConfig::per_second(100.0)
            .burst(10)
            .max_wait(20 * MS);
        let mut q = FleetQuota::new(&limit, &FleetConfig::redis("", 1), 7);
        let now = Instant::now();
        assert_eq!(q.lease_tokens(), 5);
        q.poll(now);
        q.granted(
            now,
            Grant {
                tokens: 5,
                retry_after: Duration::ZERO,
            },
            MS,
        );
        // 5 in hand, 2 to keep (5 − floor(5 × ½) = 3 usable): three go, the fourth is
        // refused at once, not sent to wait for a lease.
        let taken: Vec<Take> = (0..4).map(|_| q.try_acquire_keeping(now, HALF)).collect();
        for take in &taken[..3] {
            assert_eq!(*take, Take::Go(FleetToken::Leased));
        }
        assert!(matches!(taken[3], Take::Refused(_)), "{:?}", taken[3]);
        // A call with nothing to keep takes the rest, then may wait.
        assert_eq!(q.try_acquire_keeping(now, 0), Take::Go(FleetToken::Leased));
        assert_eq!(q.try_acquire_keeping(now, 0), Take::Go(FleetToken::Leased));
        assert_eq!(q.try_acquire_keeping(now, 0), Take::Lease);
        assert!(matches!(q.try_acquire_keeping(now, HALF), Take::Refused(_)));
    }
}
