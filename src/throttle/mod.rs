//! Client-side adaptive throttling (Google SRE book, "Handling Overload").
//!
//! A [`Throttle`] lets a client shed its own load when the backend starts refusing it, before
//! the requests reach the wire. Over a sliding time window it counts
//!
//! - **requests**: attempts the client wanted to send, counted by [`Throttle::admit`], whether
//!   the throttle let them through or not (the SRE book counts locally rejected requests too);
//! - **accepts**: attempts the backend accepted, counted by [`Throttle::record`] with
//!   `accepted = true`.
//!
//! and rejects each new request locally with probability
//!
//! ```text
//! p = min(max_reject_probability, max(0, (requests − k × accepts) / (requests + 1)))
//! ```
//!
//! (0 while the window holds fewer than `minimum_requests` requests). With `k = 2` the client
//! sends up to about twice what the backend accepts: a healthy backend sees no throttling, and a
//! backend accepting half the requests of a brownout keeps receiving them instead of being cut
//! off entirely as an open breaker would.
//!
//! # What counts as an accept
//!
//! An attempt is **accepted** when the outcome the breaker would record for it is
//! [`OutcomeKind::Success`](crate::breaker::OutcomeKind::Success) or
//! [`OutcomeKind::Ignored`](crate::breaker::OutcomeKind::Ignored) (the backend answered, or the
//! result says nothing about the backend, e.g. the caller gave up or the classifier ignores the
//! error). An attempt the breaker counts as a
//! [`OutcomeKind::Failure`](crate::breaker::OutcomeKind::Failure) (timeout, overload, 5xx, ...)
//! is not accepted; reporting it with `record(now, false)` is allowed and changes nothing,
//! because the request was already counted by `admit`. An admitted attempt that is never sent
//! (another local gate refused it) should be reported as accepted, so it does not look like a
//! backend refusal.
//!
//! The core is pure: time comes in as `now: Instant`, randomness from a seeded
//! [`rand::rngs::SmallRng`]. The window semantics are in [`ThrottleConfig`].

mod config;
#[allow(clippy::module_inception)] // `throttle::throttle` holds the `Throttle` type itself
mod throttle;
mod window;

pub use config::ThrottleConfig;
pub use throttle::{Throttle, ThrottleSnapshot, Throttled};
