//! Deadlines that travel: one budget for a whole chain of calls.
//!
//! # Why
//!
//! A service that calls a service that calls a database bounds each hop with its own timeout,
//! and each hop on its own is right: the database call gives up after 2 s, the service call
//! after 5 s, and the edge after 300 ms. Together they are wrong. When the edge's caller has
//! given up at 300 ms, the middle hop still waits for the database, the database still
//! works, and every retry below stacks on the last one, all for an answer nobody will read.
//! Finagle's deadlines and gRPC's `grpc-timeout` fix this by handing the *time left* down the
//! chain with the request; warden does the same, inside a process and across processes.
//!
//! # How it works
//!
//! - A [`Deadline`] is an instant ([`tokio::time::Instant`], so a paused test clock moves it).
//!   [`Deadline::current`] is the deadline of the call the code runs in, if any.
//! - Every warden call has an *effective deadline*: the sooner of its supervisor's configured
//!   [`deadline`](crate::SupervisorConfig::deadline) (from the call's start) and the deadline
//!   it inherits, [`Deadline::current`] where the call is made. The smaller always wins: an
//!   inner call can shorten the budget, never extend it.
//! - Each attempt (and hedge) of a call runs inside the scope of the moment it will be cut
//!   off: the call's effective deadline, or sooner its per-attempt `timeout`. That is what its
//!   operation reads from [`Deadline::current`], and what any warden call it makes inherits:
//!   work below an attempt never outlives the attempt.
//! - No attempt, retry, hedge or backoff starts that cannot end before the deadline: a call
//!   whose deadline has passed before an attempt is answered at once with
//!   [`CallError::DeadlineExceeded`](crate::CallError::DeadlineExceeded) (with the last
//!   attempt's error, if there was one) and its operation does not run again; a backoff that
//!   would end at or after the deadline is not slept.
//! - Set one yourself with [`Deadline::scope`] (e.g. from an incoming request's header, as
//!   [`WardenLayer::deadline_header`] does), and send what is left on with an outgoing
//!   request ([`DeadlineHeader::current`], or [`format_grpc_timeout`] of
//!   [`Deadline::remaining`]).
//!
//! ```
//! use std::time::Duration;
//! use warden::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let db = ServiceSupervisor::builder("database")
//!     .timeout(Duration::from_secs(2))
//!     .start()
//!     .expect("valid configuration");
//! // The handler of a request that must be answered within 300 ms.
//! let rows = Deadline::after(Duration::from_millis(300))
//!     .scope(async {
//!         db.call(|| async {
//!             // The call's operation sees the budget it was handed (300 ms, not 2 s).
//!             let left = Deadline::current().expect("inherited").remaining();
//!             assert!(left <= Duration::from_millis(300));
//!             Ok::<_, std::io::Error>(7)
//!         })
//!         .await
//!     })
//!     .await;
//! assert_eq!(rows.unwrap(), 7);
//! # }
//! ```
//!
//! The scope is a task-local: a task spawned inside it does not inherit it (capture
//! `Deadline::current()` and [`scope`](Deadline::scope) the spawned future with it), and a
//! [`Call`](crate::messages::Call) sent to a supervisor's *address* runs in the supervisor's
//! task, outside the sender's scope. Calls made through a [`ServiceHandle`] run in the caller's
//! task and always inherit.
//!
//! The `grpc-timeout` format (`<at most 8 digits><unit>`, units `H` `M` `S` `m` `u` `n`) is
//! read by [`parse_grpc_timeout`] and written by [`format_grpc_timeout`], so a warden service
//! and tonic/gRPC peers understand each other.
//!
//! [`WardenLayer::deadline_header`]: crate::tower::WardenLayer::deadline_header
//! [`DeadlineHeader::current`]: DeadlineHeader::current
//! [`ServiceHandle`]: crate::ServiceHandle

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::ambient;

// The header both HTTP integrations share: read by the tower layer, written by the reqwest
// middleware (and by hand, with `DeadlineHeader::current`).
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod header;
#[cfg(any(feature = "tower", feature = "reqwest"))]
pub use header::DeadlineHeader;

std::thread_local! {
    /// The deadline of the code running in this task, set by [`Deadline::scope`] and by each
    /// attempt of a call (around each poll, so it follows the task: [`ambient`]).
    static CURRENT: Cell<Option<Deadline>> = const { Cell::new(None) };
}

/// The moment by which a call (and everything it calls) must be done. See the
/// [module docs](self).
///
/// Ordered by instant: `a.min(b)` is the sooner of two deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

/// How far ahead [`Deadline::after`] puts a deadline too far to represent (30 years).
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

impl Deadline {
    /// The deadline at `instant`.
    pub fn at(instant: Instant) -> Deadline {
        Deadline { at: instant }
    }

    /// The deadline `duration` from now (far in the future if that cannot be represented).
    pub fn after(duration: Duration) -> Deadline {
        let now = Instant::now();
        Deadline {
            at: now
                .checked_add(duration)
                .unwrap_or_else(|| now + FAR.min(duration)),
        }
    }

    /// The deadline of the code running now, if any: inside an attempt of a warden call, the
    /// moment that attempt will be cut off (the call's deadline, or sooner its per-attempt
    /// timeout); inside [`Deadline::scope`], that scope's deadline (or a sooner one it is
    /// nested in). `None` outside any deadline.
    #[inline]
    pub fn current() -> Option<Deadline> {
        ambient::get(&CURRENT)
    }

    /// The instant of the deadline.
    pub fn instant(self) -> Instant {
        self.at
    }

    /// The time left before the deadline; zero once it has passed.
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The deadline has passed: nothing started now can end before it.
    pub fn has_passed(self) -> bool {
        Instant::now() >= self.at
    }

    /// Runs `future` with this deadline as [`Deadline::current`], for it and for every warden
    /// call made inside it (in the same task). Nested in a sooner deadline, the sooner one
    /// stays: a scope can shorten the budget, never extend it (the outer deadline is read at
    /// the first poll, where the future runs).
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            deadline: self,
            joined: false,
            future,
        }
    }
}

pin_project! {
    /// A future run inside a [`Deadline`]'s scope ([`Deadline::scope`]).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        deadline: Deadline,
        // The deadline it runs in was joined with the outer one (at the first poll).
        joined: bool,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !*this.joined {
            *this.joined = true;
            if let Some(outer) = Deadline::current() {
                *this.deadline = (*this.deadline).min(outer);
            }
        }
        let future = this.future;
        ambient::scope(&CURRENT, *this.deadline, move || future.poll(cx))
    }
}

/// The effective deadline of a call starting at `started` under a supervisor configured with
/// `configured`: the sooner of the two and the deadline it inherits.
#[inline]
pub(crate) fn call_deadline(configured: Option<Duration>, started: Instant) -> Option<Instant> {
    let own = configured.map(|d| started.checked_add(d).unwrap_or(started + FAR.min(d)));
    let inherited = Deadline::current().map(Deadline::instant);
    match (own, inherited) {
        (Some(own), Some(inherited)) => Some(own.min(inherited)),
        (own, inherited) => own.or(inherited),
    }
}

/// Runs `f` with `deadline` (if any) as the current deadline: how an attempt's operation is
/// invoked and polled. `deadline` is never later than the one it runs in (the call's deadline
/// includes the inherited one).
#[inline]
pub(crate) fn within<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    match deadline {
        Some(at) => ambient::scope(&CURRENT, Deadline { at }, f),
        None => f(),
    }
}

/// Reads a `grpc-timeout` value: at most 8 ASCII digits and one unit, `H` (hours), `M`
/// (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) or `n` (nanoseconds), as
/// in `"300m"` or `"1S"`. Surrounding whitespace is ignored; anything else is `None`.
///
/// ```
/// use std::time::Duration;
/// use warden::deadline::parse_grpc_timeout;
///
/// assert_eq!(parse_grpc_timeout("300m"), Some(Duration::from_millis(300)));
/// assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
/// assert_eq!(parse_grpc_timeout("123456789n"), None); // more than 8 digits
/// ```
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if !value.is_ascii() || value.len() < 2 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Writes `duration` as a `grpc-timeout` value: the finest unit whose count fits in 8 digits,
/// rounded down (the receiver is never promised more time than is left). Durations beyond
/// 99 999 999 hours are written as that.
///
/// ```
/// use std::time::Duration;
/// use warden::deadline::format_grpc_timeout;
///
/// assert_eq!(format_grpc_timeout(Duration::from_millis(300)), "300000u");
/// assert_eq!(format_grpc_timeout(Duration::from_secs(3600)), "3600000m");
/// assert_eq!(format_grpc_timeout(Duration::ZERO), "0n");
/// ```
pub fn format_grpc_timeout(duration: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = duration.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (per, unit) in units {
        let count = nanos / per;
        if count <= MAX {
            return format!("{count}{unit}");
        }
    }
    format!("{MAX}H")
}

/// Reads a deadline header in whole milliseconds (e.g. `x-warden-deadline-ms: 250`): ASCII
/// digits, surrounding whitespace ignored.
pub fn parse_millis(value: &str) -> Option<Duration> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().map(Duration::from_millis)
}

/// Writes `duration` in whole milliseconds, rounded down.
pub fn format_millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grpc_timeout_reads_every_unit() {
        for (value, expected) in [
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("3S", Duration::from_secs(3)),
            ("300m", ms(300)),
            ("250u", Duration::from_micros(250)),
            ("99n", Duration::from_nanos(99)),
            ("0m", Duration::ZERO),
            ("00000001S", Duration::from_secs(1)),
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
            (" 5m ", ms(5)),
        ] {
            assert_eq!(parse_grpc_timeout(value), Some(expected), "{value:?}");
        }
    }

    #[test]
    fn grpc_timeout_refuses_what_the_format_does_not_allow() {
        for value in [
            "",
            "m",
            "5",
            "5s",
            "5ms",
            "-5m",
            "+5m",
            "5.0S",
            "123456789m",
            "5 m",
            "5mm",
            "m5",
            "٣m",
            "5é",
        ] {
            assert_eq!(parse_grpc_timeout(value), None, "{value:?}");
        }
    }

    #[test]
    fn grpc_timeout_is_written_in_the_finest_unit_that_fits_rounded_down() {
        for (duration, expected) in [
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(99_999_999), "99999999n"),
            (Duration::from_nanos(100_000_000), "100000u"),
            (Duration::from_nanos(299_999_999), "299999u"),
            (ms(300), "300000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(100_000), "100000S"),
            (Duration::from_secs(100_000_000), "1666666M"),
            (Duration::from_secs(6_000_000_000), "1666666H"),
            (Duration::MAX, "99999999H"),
        ] {
            assert_eq!(format_grpc_timeout(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn a_written_grpc_timeout_reads_back_as_at_most_the_duration() {
        for nanos in [
            0u64,
            1,
            999,
            123_456_789,
            300_000_000,
            59_999_999_999,
            u64::MAX,
        ] {
            let duration = Duration::from_nanos(nanos);
            let read = parse_grpc_timeout(&format_grpc_timeout(duration)).expect("readable");
            assert!(read <= duration, "{duration:?} → {read:?}");
            // A coarser unit is only chosen for at least 10⁵ of it: within 10⁻⁵ of the duration.
            assert!(
                duration - read <= duration / 100_000,
                "{duration:?} → {read:?}"
            );
        }
    }

    #[test]
    fn millis_read_and_written() {
        assert_eq!(parse_millis("250"), Some(ms(250)));
        assert_eq!(parse_millis(" 0 "), Some(Duration::ZERO));
        for value in ["", "-1", "1.5", "10ms", "1e3"] {
            assert_eq!(parse_millis(value), None, "{value:?}");
        }
        assert_eq!(format_millis(Duration::from_micros(250_999)), "250");
    }

    #[tokio::test(start_paused = true)]
    async fn a_scope_sets_the_current_deadline_and_a_nested_one_only_shortens_it() {
        assert_eq!(Deadline::current(), None);
        let outer = Deadline::after(ms(300));
        outer
            .scope(async move {
                assert_eq!(Deadline::current(), Some(outer));
                tokio::time::sleep(ms(100)).await;
                assert_eq!(Deadline::current().unwrap().remaining(), ms(200));
                // A longer nested deadline does not extend the outer one; a shorter one wins.
                Deadline::after(ms(1000))
                    .scope(async move { assert_eq!(Deadline::current(), Some(outer)) })
                    .await;
                let inner = Deadline::after(ms(50));
                inner
                    .scope(async move { assert_eq!(Deadline::current(), Some(inner)) })
                    .await;
                assert_eq!(Deadline::current(), Some(outer));
                tokio::time::sleep(ms(250)).await;
                assert!(outer.has_passed());
                assert_eq!(outer.remaining(), Duration::ZERO);
            })
            .await;
        assert_eq!(Deadline::current(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_calls_deadline_is_the_sooner_of_its_own_and_the_inherited_one() {
        let now = Instant::now();
        assert_eq!(call_deadline(None, now), None);
        assert_eq!(call_deadline(Some(ms(500)), now), Some(now + ms(500)));
        let inherited = Deadline::after(ms(200));
        inherited
            .scope(async move {
                assert_eq!(call_deadline(None, now), Some(inherited.instant()));
                assert_eq!(call_deadline(Some(ms(500)), now), Some(inherited.instant()));
                assert_eq!(call_deadline(Some(ms(100)), now), Some(now + ms(100)));
            })
            .await;
        assert_eq!(call_deadline(Some(Duration::MAX), now), Some(now + FAR));
    }
}
