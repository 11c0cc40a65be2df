//! Fault injection ("chaos") for tests and game days: a supervisor can be told to delay, fail
//! or hang a share of its attempts on purpose, to check that timeouts, retries, the breaker,
//! fallbacks and alerts do what they should before a real outage does it for you.
//!
//! **Off by default, and impossible to turn on by accident.** Injection is compiled in only
//! with the cargo feature `fault-injection` (not a default feature). Without it the types here
//! still exist, so code and configuration files compile and parse either way, but a
//! supervisor refuses them: a `[services.NAME.faults]` section, [`SupervisorBuilder::faults`]
//! and [`ServiceHandle::inject_faults`] all answer a [`ConfigError`](crate::ConfigError)
//! naming the `faults` field and telling you to enable the feature.
//!
//! With the feature, faults come from a [`FaultConfig`] — in TOML, or at run time with
//! [`ServiceHandle::inject_faults`] and [`ServiceHandle::clear_faults`] — and each attempt
//! draws at most one [`Fault`] from a seeded [`FaultInjector`]:
//!
//! - **latency**: the attempt waits `latency`, then runs the real operation; the wait counts
//!   against the attempt's timeout, so a latency above the timeout is a timeout;
//! - **error**: the attempt fails without calling the operation (warden cannot build your
//!   error type, so the call's answer is [`CallError::Injected`](crate::CallError::Injected)
//!   when it ends on such a failure); it is a transient breaker failure: retried, recorded by
//!   the breaker and the health window like any failure;
//! - **hang**: the attempt never completes, so its timeout (or the call's deadline) fires:
//!   a real timeout, counted and retried as one. A hang needs a `timeout` or `deadline`.
//!
//! Every injected fault goes through the same path as a real one (timeout, health, breaker,
//! retry, throttle, counts), is counted in `warden_faults_injected_total{service, kind}`,
//! logged (`tracing`, "fault injected", with its `kind`) and published to subscribers as
//! [`EventKind::FaultInjected`](crate::messages::EventKind::FaultInjected).
//!
//! The decision core ([`FaultInjector`]) is pure: `now` comes in as an argument, randomness
//! from a seeded generator, so the same seed injects the same faults into the same sequence of
//! attempts.
//!
//! [`SupervisorBuilder::faults`]: crate::SupervisorBuilder::faults
//! [`ServiceHandle::inject_faults`]: crate::ServiceHandle::inject_faults
//! [`ServiceHandle::clear_faults`]: crate::ServiceHandle::clear_faults

mod config;
mod injector;

pub use crate::outcome::FaultKind;
pub use config::FaultConfig;
pub use injector::{Fault, FaultInjector};

/// Whether fault injection is compiled in (the cargo feature `fault-injection`).
pub const ENABLED: bool = cfg!(feature = "fault-injection");
