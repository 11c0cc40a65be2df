//! [`SupervisorConfig`] itself: the fields one supervisor is built from, and their defaults.
//!
//! The type alone, so that its shape — every field a services file may set, with the meaning
//! and default of each — reads in one place; checking it ([`SupervisorConfig::validate`]), the
//! presets and the services file are written against it in modules of their own.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::BreakerConfig;
use crate::chaos::FaultConfig;
use crate::criticality::CriticalityConfig;
use crate::fleet::FleetConfig;
use crate::health::HealthConfig;
use crate::hedge::HedgeConfig;
use crate::keyed::KeyedConfig;
use crate::limit::ConcurrencyLimitConfig;
use crate::ratelimit::RateLimitConfig;
use crate::retry::RetryConfig;
use crate::throttle::ThrottleConfig;

/// Configuration of one supervisor (one dependency).
///
/// Defaults: 5 s per-attempt timeout, no overall deadline, 256 calls in flight, a mailbox of
/// 1 024 messages, and the defaults of [`BreakerConfig`], [`RetryConfig`] and [`HealthConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// Time limit of one attempt; the attempt's future is dropped (cancelled) when it passes.
    /// `None` disables the per-attempt timeout (the deadline, if any, still applies).
    #[serde(with = "crate::off::duration")]
    pub timeout: Option<Duration>,
    /// Time limit of the whole call across all attempts and retry delays. `None` = no limit.
    #[serde(with = "crate::off::duration")]
    pub deadline: Option<Duration>,
    /// Calls in flight (admitted and not yet answered) allowed at once; excess calls are
    /// answered [`CallError::Overloaded`](crate::CallError::Overloaded) at once (bulkhead).
    pub max_in_flight: u32,
    /// Capacity of the supervisor's mailbox.
    pub mailbox_capacity: usize,
    /// Circuit breaker policy.
    pub breaker: BreakerConfig,
    /// Retry policy, backoff and budget.
    pub retry: RetryConfig,
    /// Health window and thresholds.
    pub health: HealthConfig,
    /// Client-side adaptive throttling (off when `None`, the default): refuse calls locally in
    /// proportion to how many the dependency has stopped accepting, instead of all or nothing.
    /// It composes with the breaker, which still opens on an outage; give the breaker trip
    /// thresholds for outages only (see [`SupervisorConfig::adaptive`]).
    pub throttle: Option<ThrottleConfig>,
    /// An adaptive concurrency limit (off when `None`, the default): the calls allowed in
    /// flight follow the dependency's latency (AIMD or gradient), never above
    /// `max_in_flight`. In TOML: `concurrency_limit = { algorithm = "aimd", max_limit = 100 }`.
    pub concurrency_limit: Option<ConcurrencyLimitConfig>,
    /// A token-bucket rate limit on calls (off when `None`, the default): a call past the rate
    /// waits for a token up to `max_wait`, or is answered
    /// [`CallError::RateLimited`](crate::CallError::RateLimited). A dependency's retry-after
    /// hint lowers the rate until it ends.
    pub rate_limit: Option<RateLimitConfig>,
    /// Hedged requests (off when `None`, the default): after the hedge delay without an answer,
    /// another attempt of an idempotent call starts and the first value wins. In TOML: a
    /// `[services.NAME.hedge]` table.
    pub hedge: Option<HedgeConfig>,
    /// Faults to inject into the attempts on purpose, for tests and game days (off when
    /// `None`, the default; see [`chaos`](crate::chaos)). Refused unless the cargo feature
    /// `fault-injection` is on. In TOML: a `[services.NAME.faults]` table.
    pub faults: Option<FaultConfig>,
    /// Seed of the supervisor's random number generator (jitter). `None` draws one at start;
    /// set it to make a supervisor's delays reproducible.
    pub seed: Option<u64>,
    /// The bounds of a [keyed service](crate::keyed) (one supervisor per key), read by
    /// [`RegistryHandle::spawn_keyed`](crate::RegistryHandle::spawn_keyed) and by a services
    /// file, which spawns a service with a `[services.NAME.keyed]` table keyed. Ignored by a
    /// plain supervisor.
    pub keyed: Option<KeyedConfig>,
    /// The [fleet](crate::fleet) this service is one replica of: its rate limit (`quota`)
    /// and retry budget (`budget`) shared with the other replicas through a store. Default
    /// none. In TOML: a `[services.NAME.fleet]` table; not changed by a reload.
    pub fleet: Option<FleetConfig>,
    /// The shares of each capacity kept for more [critical](crate::criticality) calls
    /// (bulkhead and adaptive limit slots, rate-limit burst). Default none: nothing is
    /// reserved, and only the throttle's order (sheddable calls refused first) applies. In
    /// TOML: a `[services.NAME.criticality]` table; reloadable.
    pub criticality: Option<CriticalityConfig>,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            timeout: Some(Duration::from_secs(5)),
            deadline: None,
            max_in_flight: 256,
            mailbox_capacity: 1024,
            breaker: BreakerConfig::default(),
            retry: RetryConfig::default(),
            health: HealthConfig::default(),
            throttle: None,
            concurrency_limit: None,
            rate_limit: None,
            hedge: None,
            faults: None,
            seed: None,
            keyed: None,
            fleet: None,
            criticality: None,
        }
    }
}

impl SupervisorConfig {
    /// Calls allowed in flight before any sample: the adaptive limit's initial value, or
    /// `max_in_flight`, whichever is lower.
    pub(crate) fn initial_limit(&self) -> u32 {
        self.concurrency_limit
            .as_ref()
            .map_or(self.max_in_flight, |limit| limit.bounds().0)
            .min(self.max_in_flight)
    }
}
