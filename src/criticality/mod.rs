//! Criticality: which calls are shed first when a dependency is overloaded.
//!
//! Under overload every load control of a supervisor refuses some calls. Which ones should not
//! be chance: a checkout matters more than a recommendation prefetch. Google's RPC stack tags
//! each request with a criticality and sheds sheddable work first; warden does the same with
//! three classes, [`Criticality::Critical`], [`Criticality::Default`] and
//! [`Criticality::Sheddable`].
//!
//! # Where a call's criticality comes from
//!
//! - set on the call: [`Call::criticality`](crate::messages::Call::criticality);
//! - else inherited, like a [`Deadline`](crate::deadline::Deadline): inside [`Criticality::scope`], and
//!   inside any warden call's operation, so a call made while serving a critical call is
//!   critical too;
//! - over HTTP, in a header (`x-warden-criticality: critical`; `CriticalityHeader`, features
//!   `tower` or `reqwest`): the tower layer reads it from an incoming request when told to
//!   (`WardenLayer::criticality_header`), and the reqwest middleware sends the current one on
//!   (a default call sends none), so the class travels from the edge to the last hop;
//! - else [`Criticality::Default`].
//!
//! # How each load control sheds by criticality
//!
//! | control | rule |
//! |---|---|
//! | adaptive **throttle** | the share of calls it refuses is the same; the refusals fall on sheddable calls first, then default ones, critical ones last ([`shed_order`]) |
//! | **bulkhead** and adaptive **concurrency limit** | a sheddable call may take a slot while fewer than `(1 − reserved_for_critical − reserved_for_default) × limit` are taken, a default call below `(1 − reserved_for_critical) × limit`, a critical call up to the limit |
//! | **rate limit** | the same shares of the burst: a sheddable call takes a token only when the bucket keeps `reserved_for_critical + reserved_for_default` of its burst (in whole tokens) afterwards, a default call when it keeps `reserved_for_critical`; neither waits for a token, only critical calls queue up to `max_wait` |
//!
//! The reserves are set by [`CriticalityConfig`] (the `criticality` section of a supervisor's
//! configuration); without it nothing is reserved and only the throttle's order applies (which
//! costs nothing when every call is default). A fleet quota ([`fleet`](crate::fleet)) keeps the
//! same shares of the leased tokens in hand (and of its local share while the store is away),
//! and only critical calls wait for a lease ([`FleetQuota::try_acquire_keeping`](crate::fleet::FleetQuota::try_acquire_keeping)).
//!
//! ```
//! use warden::prelude::*;
//! use warden::Criticality;
//!
//! # #[actix::main(crate = "actix")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = RegistryHandle::start()?;
//! let db = registry.spawn("db", SupervisorConfig::database()).await?;
//! // A checkout is critical, and so is every warden call made while serving it.
//! let order: Result<u32, CallError<std::io::Error>> = Criticality::Critical
//!     .scope(async {
//!         assert_eq!(Criticality::current(), Criticality::Critical);
//!         db.call(|| async { Ok(42) }).await
//!     })
//!     .await;
//! assert_eq!(order?, 42);
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use serde::{Deserialize, Serialize};

use crate::ambient;

mod config;
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod header;
mod shares;

pub use self::config::CriticalityConfig;
#[cfg(any(feature = "tower", feature = "reqwest"))]
pub use self::header::{CriticalityHeader, DEFAULT_CRITICALITY_HEADER};
pub use self::shares::shed_order;
pub(crate) use self::shares::Shares;

/// How much a call matters when there is not room for every call. See the
/// [module docs](self).
///
/// Ordered from least to most critical: `Sheddable < Default < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// Work that may be dropped first: prefetches, batch jobs, retries of best-effort work.
    Sheddable,
    /// Ordinary work: what a call is when nothing says otherwise.
    #[default]
    Default,
    /// Work the service exists for: shed last, and the only work that may use the reserved
    /// share of each capacity.
    Critical,
}

std::thread_local! {
    /// The criticality of the code running in this task, set by [`Criticality::scope`] and by
    /// each attempt of a call with a criticality of its own (around each poll, so it follows
    /// the task: [`ambient`]).
    static CURRENT: Cell<Option<Criticality>> = const { Cell::new(None) };
}

impl Criticality {
    /// All values, in label order (least critical first).
    pub const ALL: [Criticality; 3] = [
        Criticality::Sheddable,
        Criticality::Default,
        Criticality::Critical,
    ];

    /// The label value (and header value): `"sheddable"`, `"default"` or `"critical"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Criticality::Sheddable => "sheddable",
            Criticality::Default => "default",
            Criticality::Critical => "critical",
        }
    }

    /// Its index in [`Criticality::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The criticality of the code running now: inside [`Criticality::scope`] (or an attempt
    /// of a call with a criticality of its own), that one; [`Criticality::Default`] outside.
    #[inline]
    pub fn current() -> Criticality {
        ambient::get(&CURRENT).unwrap_or_default()
    }

    /// Runs `future` with this criticality as [`Criticality::current`], for it and for every
    /// warden call made inside it (in the same task) that does not set its own. A task spawned
    /// inside does not inherit it: capture `Criticality::current()` and scope the spawned future.
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            criticality: self,
            future,
        }
    }
}

/// Runs `f` with `criticality` (if any) as the current criticality: how an attempt of a call
/// with a criticality of its own is invoked and polled.
#[inline]
pub(crate) fn within<R>(criticality: Option<Criticality>, f: impl FnOnce() -> R) -> R {
    match criticality {
        Some(criticality) => ambient::scope(&CURRENT, criticality, f),
        None => f(),
    }
}

pin_project! {
    /// A future run with a [`Criticality`] ([`Criticality::scope`]).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        criticality: Criticality,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        ambient::scope(&CURRENT, *this.criticality, move || future.poll(cx))
    }
}

impl fmt::Display for Criticality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that is not a criticality (see [`Criticality::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown criticality {0:?} (expected \"critical\", \"default\" or \"sheddable\")")]
pub struct UnknownCriticality(pub String);

impl FromStr for Criticality {
    type Err = UnknownCriticality;

    /// Reads `critical`, `default` or `sheddable`, in any case, surrounding whitespace ignored;
    /// also Google's names (`CRITICAL_PLUS` and `CRITICAL` are critical, `SHEDDABLE_PLUS`
    /// default, `SHEDDABLE` sheddable).
    ///
    /// ```
    /// use warden::Criticality;
    ///
    /// assert_eq!("Critical".parse(), Ok(Criticality::Critical));
    /// assert_eq!("SHEDDABLE_PLUS".parse(), Ok(Criticality::Default));
    /// assert!("urgent".parse::<Criticality>().is_err());
    /// ```
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        let known = [
            ("critical", Criticality::Critical),
            ("critical_plus", Criticality::Critical),
            ("default", Criticality::Default),
            ("sheddable_plus", Criticality::Default),
            ("sheddable", Criticality::Sheddable),
        ];
        known
            .into_iter()
            .find(|(name, _)| value.eq_ignore_ascii_case(name))
            .map(|(_, criticality)| criticality)
            .ok_or_else(|| UnknownCriticality(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_labels_and_parsing_agree() {
        assert!(Criticality::Sheddable < Criticality::Default);
        assert!(Criticality::Default < Criticality::Critical);
        for (index, criticality) in Criticality::ALL.into_iter().enumerate() {
            assert_eq!(criticality.index(), index);
            assert_eq!(criticality.as_str().parse(), Ok(criticality));
            assert_eq!(criticality.to_string(), criticality.as_str());
        }
        assert_eq!(" critical_plus ".parse(), Ok(Criticality::Critical));
        assert_eq!(
            "".parse::<Criticality>(),
            Err(UnknownCriticality(String::new()))
        );
    }

    #[tokio::test]
    async fn a_scope_sets_the_current_criticality_and_a_nested_one_replaces_it() {
        assert_eq!(Criticality::current(), Criticality::Default);
        Criticality::Critical
            .scope(async {
                assert_eq!(Criticality::current(), Criticality::Critical);
                Criticality::Sheddable
                    .scope(async { assert_eq!(Criticality::current(), Criticality::Sheddable) })
                    .await;
                assert_eq!(Criticality::current(), Criticality::Critical);
                within(Some(Criticality::Default), || {
                    assert_eq!(Criticality::current(), Criticality::Default)
                });
            })
            .await;
    }
}
