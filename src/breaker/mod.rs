//! Pure circuit breaker state machine.
//!
//! A [`Breaker`] knows nothing of actors or runtimes: every method that depends on time takes
//! `now: Instant`, and the only randomness (open-duration jitter) comes from a seeded RNG. The
//! owner asks [`Breaker::try_acquire`] before a call, reports the result with
//! [`Breaker::record`] (or [`Breaker::release`] when the call produced nothing), wakes up at
//! [`Breaker::next_deadline`] to [`Breaker::poll`], and publishes
//! [`Breaker::drain_transitions`].
//!
//! States follow the usual model (Closed → Open → HalfOpen → Closed/Open) plus two manual
//! states, [`BreakerState::ForcedOpen`] and [`BreakerState::Disabled`], left only by
//! [`Breaker::reset`].

#[allow(clippy::module_inception)] // `breaker::breaker` holds the `Breaker` type itself
mod breaker;
mod config;
mod count_window;
mod open_duration;
mod outcome;
mod sliding_window;
mod state;
mod time_window;
mod totals;
mod transition;
mod window;

pub use breaker::{Breaker, Permit, Rejected};
pub use config::BreakerConfig;
pub use open_duration::OpenDuration;
pub use outcome::{Outcome, OutcomeKind};
pub use sliding_window::SlidingWindow;
pub use state::BreakerState;
pub use totals::WindowSnapshot;
pub use transition::{Transition, TransitionReason};
