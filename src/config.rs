//! [`SupervisorConfig`]: everything one supervisor needs, built in code or loaded from TOML,
//! validated before use, with presets for common kinds of dependency.
//!
//! ```
//! use warden::SupervisorConfig;
//!
//! let file: warden::ServicesFile = toml::from_str(r#"
//!     [services.database]
//!     timeout = "2s"
//!     max_in_flight = 32
//!     [services.database.breaker]
//!     consecutive_failures = 3
//!     open_duration = { base = "30s", max = "5m", multiplier = 2.0, jitter = 0.1 }
//! "#).unwrap();
//! file.validate().unwrap();
//! assert_eq!(file.services["database"].max_in_flight, 32);
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::{BreakerConfig, OpenDuration, SlidingWindow};
use crate::chaos::FaultConfig;
use crate::criticality::CriticalityConfig;
use crate::error::ConfigError;
use crate::fleet::FleetConfig;
use crate::health::HealthConfig;
use crate::hedge::HedgeConfig;
use crate::keyed::KeyedConfig;
use crate::limit::ConcurrencyLimitConfig;
use crate::ratelimit::RateLimitConfig;
use crate::retry::{Backoff, BudgetConfig, RetryConfig};
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

    /// Checks every field; the error names the first invalid one by its dotted path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::invalid("timeout", "must be greater than zero"));
        }
        if let Some(deadline) = self.deadline {
            if deadline.is_zero() {
                return Err(ConfigError::invalid(
                    "deadline",
                    "must be greater than zero",
                ));
            }
            if self.timeout.is_some_and(|t| t > deadline) {
                return Err(ConfigError::invalid(
                    "deadline",
                    "must not be shorter than `timeout`",
                ));
            }
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "max_in_flight",
                "must be greater than zero",
            ));
        }
        if self.mailbox_capacity == 0 {
            return Err(ConfigError::invalid(
                "mailbox_capacity",
                "must be greater than zero",
            ));
        }
        self.breaker.validate().map_err(|e| e.within("breaker"))?;
        self.retry.validate().map_err(|e| e.within("retry"))?;
        self.health.validate().map_err(|e| e.within("health"))?;
        if let Some(throttle) = &self.throttle {
            throttle.validate().map_err(|e| e.within("throttle"))?;
        }
        if let Some(rate) = &self.rate_limit {
            rate.validate().map_err(|e| e.within("rate_limit"))?;
        }
        if let Some(criticality) = &self.criticality {
            criticality
                .validate()
                .map_err(|e| e.within("criticality"))?;
        }
        if let Some(keyed) = &self.keyed {
            keyed.validate().map_err(|e| e.within("keyed"))?;
        }
        if let Some(limit) = &self.concurrency_limit {
            limit
                .validate()
                .map_err(|e| e.within("concurrency_limit"))?;
        }
        if let Some(hedge) = &self.hedge {
            hedge.validate().map_err(|e| e.within("hedge"))?;
        }
        if let Some(faults) = &self.faults {
            self.check_faults(faults)?;
        }
        if let Some(fleet) = &self.fleet {
            fleet.validate().map_err(|e| e.within("fleet"))?;
            if fleet.quota && self.rate_limit.is_none() {
                return Err(ConfigError::invalid(
                    "fleet.quota",
                    "needs a `rate_limit` to share (or `quota = false`)",
                ));
            }
            if fleet.budget && !self.retry.budget.enabled {
                return Err(ConfigError::invalid(
                    "fleet.budget",
                    "needs a retry budget to share (or `budget = false`)",
                ));
            }
        }
        Ok(())
    }

    /// Whether a supervisor of this configuration may inject `faults`: the cargo feature
    /// `fault-injection` is on, the fields are valid, and a hang can end (a timeout or a
    /// deadline is set). Errors name `faults` or `faults.FIELD`.
    pub(crate) fn check_faults(&self, faults: &FaultConfig) -> Result<(), ConfigError> {
        check_faults(faults, self.timeout, self.deadline)
    }

    /// Preset for brownouts: retries (3 attempts, 50 ms full-jitter backoff) capped at 25 % of
    /// calls by the budget, with no per-second floor, so a brownout never multiplies the load
    /// by more than 1.25; adaptive throttling with k = 5 that sheds load only once the
    /// dependency accepts less than a fifth of what it is sent (below that, retries cannot
    /// pay for themselves); and a breaker that opens only on an outage (95 % of the last 50
    /// calls failing, at least 20). From a cold start, over real HTTP, it keeps 0.989, 0.614
    /// and 0.364 of the calls in 20, 50 and 70 % brownouts — 97–100 % of what 3 attempts at
    /// 1.25 × load allow — and sends fewer attempts than calls in a 90 % one (BENCHMARKS.md,
    /// "Brownouts that cannot flatter").
    ///
    /// | field | value |
    /// |---|---|
    /// | throttle | k 5.0, window 2 min, min 20 requests, at most 90 % refused |
    /// | breaker | 95 % of the last 50 (min 20), open 5 s ×2 up to 1 min |
    /// | retry | 3 attempts, exponential 50 ms full jitter, budget 25 % of calls, no floor |
    pub fn adaptive() -> Self {
        SupervisorConfig {
            throttle: Some(ThrottleConfig {
                k: 5.0,
                ..ThrottleConfig::default()
            }),
            breaker: BreakerConfig {
                consecutive_failures: None,
                failure_rate_threshold: Some(0.95),
                window: SlidingWindow::Count { size: 50 },
                minimum_calls: 20,
                open_duration: OpenDuration::exponential(
                    Duration::from_secs(5),
                    Duration::from_secs(60),
                    2.0,
                ),
                ..BreakerConfig::default()
            },
            retry: RetryConfig {
                budget: BudgetConfig {
                    ratio: 0.25,
                    min_per_second: 0,
                    ..BudgetConfig::default()
                },
                ..RetryConfig::exponential(3, Duration::from_millis(50)).full_jitter()
            },
            ..SupervisorConfig::default()
        }
    }

    /// Preset for a database: short retries with full jitter, a breaker
    /// tripping on 3 consecutive failures (30 s recovery, growing to 5 min on failed probes) or a 50 %
    /// failure rate over the last 50 calls, 32 calls in flight (a pool's worth), degraded above
    /// 500 ms p95.
    ///
    /// | field | value |
    /// |---|---|
    /// | timeout | 5 s |
    /// | retry | 3 attempts, full jitter from 100 ms, max delay 2 s |
    /// | breaker | 3 consecutive failures or 50 % of 50 calls (min 10); open 30 s → 5 min |
    /// | max_in_flight | 32 |
    /// | health | degraded p95 > 500 ms, unhealthy p95 > 2 s |
    pub fn database() -> Self {
        SupervisorConfig {
            timeout: Some(Duration::from_secs(5)),
            max_in_flight: 32,
            retry: RetryConfig {
                max_attempts: 3,
                backoff: Backoff::FullJitter {
                    base: Duration::from_millis(100),
                },
                max_delay: Duration::from_secs(2),
                budget: BudgetConfig::default(),
            },
            breaker: BreakerConfig {
                consecutive_failures: Some(3),
                failure_rate_threshold: Some(0.5),
                window: SlidingWindow::Count { size: 50 },
                minimum_calls: 10,
                open_duration: OpenDuration {
                    base: Duration::from_secs(30),
                    max: Duration::from_secs(300),
                    multiplier: 2.0,
                    jitter: 0.1,
                },
                ..BreakerConfig::default()
            },
            health: HealthConfig {
                degraded_latency: Some(Duration::from_millis(500)),
                unhealthy_latency: Some(Duration::from_secs(2)),
                ..HealthConfig::default()
            },
            ..SupervisorConfig::default()
        }
    }

    /// Preset for an external HTTP API: decorrelated-jitter retries that honour `Retry-After`,
    /// an overall deadline, and a breaker over a 30 s time window that also trips on slow calls.
    ///
    /// | field | value |
    /// |---|---|
    /// | timeout / deadline | 10 s per attempt / 30 s overall |
    /// | retry | 3 attempts, decorrelated jitter from 200 ms, max delay 5 s |
    /// | breaker | 5 consecutive failures, or 50 % failures or 50 % calls ≥ 5 s over 30 s (min 20); open 15 s → 2 min |
    /// | max_in_flight | 100 |
    /// | health | degraded p95 > 1 s, unhealthy p95 > 5 s |
    pub fn http_api() -> Self {
        SupervisorConfig {
            timeout: Some(Duration::from_secs(10)),
            deadline: Some(Duration::from_secs(30)),
            max_in_flight: 100,
            retry: RetryConfig {
                max_attempts: 3,
                backoff: Backoff::DecorrelatedJitter {
                    base: Duration::from_millis(200),
                },
                max_delay: Duration::from_secs(5),
                budget: BudgetConfig::default(),
            },
            breaker: BreakerConfig {
                consecutive_failures: Some(5),
                failure_rate_threshold: Some(0.5),
                slow_call_rate_threshold: Some(0.5),
                slow_call_duration: Duration::from_secs(5),
                window: SlidingWindow::Time {
                    duration: Duration::from_secs(30),
                },
                minimum_calls: 20,
                open_duration: OpenDuration {
                    base: Duration::from_secs(15),
                    max: Duration::from_secs(120),
                    multiplier: 2.0,
                    jitter: 0.1,
                },
                ..BreakerConfig::default()
            },
            health: HealthConfig {
                degraded_latency: Some(Duration::from_secs(1)),
                unhealthy_latency: Some(Duration::from_secs(5)),
                ..HealthConfig::default()
            },
            ..SupervisorConfig::default()
        }
    }

    /// Preset for a cache: a cache miss is cheaper than waiting, so a 100 ms timeout, one quick
    /// retry, a breaker that opens fast and recovers fast, and tight latency thresholds.
    ///
    /// | field | value |
    /// |---|---|
    /// | timeout | 100 ms |
    /// | retry | 2 attempts, constant 10 ms |
    /// | breaker | 5 consecutive failures or 50 % of 100 calls (min 20); open 5 s → 30 s |
    /// | max_in_flight | 512 |
    /// | health | degraded p95 > 20 ms, unhealthy p95 > 100 ms |
    pub fn cache() -> Self {
        SupervisorConfig {
            timeout: Some(Duration::from_millis(100)),
            max_in_flight: 512,
            retry: RetryConfig {
                max_attempts: 2,
                backoff: Backoff::Constant {
                    delay: Duration::from_millis(10),
                },
                max_delay: Duration::from_millis(100),
                budget: BudgetConfig::default(),
            },
            breaker: BreakerConfig {
                consecutive_failures: Some(5),
                failure_rate_threshold: Some(0.5),
                window: SlidingWindow::Count { size: 100 },
                minimum_calls: 20,
                open_duration: OpenDuration {
                    base: Duration::from_secs(5),
                    max: Duration::from_secs(30),
                    multiplier: 2.0,
                    jitter: 0.1,
                },
                ..BreakerConfig::default()
            },
            health: HealthConfig {
                degraded_latency: Some(Duration::from_millis(20)),
                unhealthy_latency: Some(Duration::from_millis(100)),
                ..HealthConfig::default()
            },
            ..SupervisorConfig::default()
        }
    }
}

/// Several services' configurations, as loaded from one TOML file:
///
/// ```toml
/// [services.database]
/// timeout = "2s"
///
/// [services.database.retry]
/// max_attempts = 3
/// backoff = { kind = "full_jitter", base = "100ms" }
///
/// [services.cache]
/// timeout = "50ms"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesFile {
    /// Service name → its configuration.
    pub services: BTreeMap<String, SupervisorConfig>,
}

impl ServicesFile {
    /// Parses and validates TOML text. Syntax errors, unknown keys, wrong types, negative
    /// numbers and wrong duration units are [`ConfigError::Parse`] with the line and the key's
    /// path; invalid values are [`ConfigError::Invalid`] naming `services.NAME.field`.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let parse_error = |error: toml::de::Error, path: Option<String>| {
            let span = error.span();
            let mut message = error.message().to_string();
            // A duplicate key is found while parsing, before any path exists: name it from
            // the text its span points at.
            let field = path.or_else(|| {
                if error.message() != "duplicate key" {
                    return None;
                }
                let key = span.as_ref().and_then(|span| duplicate_key(text, span))?;
                message = format!("{message} `{key}`");
                Some(key)
            });
            ConfigError::Parse {
                line: span.map(|span| line_of(text, span.start)),
                field: field.filter(|f| !f.is_empty() && f != "."),
                message,
            }
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| parse_error(e, None))?;
        let file: ServicesFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            parse_error(e.into_inner(), Some(path))
        })?;
        file.validate()?;
        Ok(file)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml_str(&text)
    }

    /// Validates every service (names must be non-empty and printable).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, config) in &self.services {
            validate_service_name(name).map_err(|e| e.within("services"))?;
            config
                .validate()
                .map_err(|e| e.within(&format!("services.{name}")))?;
        }
        Ok(())
    }
}

/// Checks a service name: non-empty, at most 128 characters, no control characters. Names
/// become metric label values, so they must stay short and printable.
pub fn validate_service_name(name: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() {
        return Err(ConfigError::invalid("name", "must not be empty"));
    }
    if name.chars().count() > 128 {
        return Err(ConfigError::invalid(
            "name",
            "must be at most 128 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The key a "duplicate key" error's span points at: the whole header for a table
/// (`[services.db]` → `services.db`), the key itself otherwise.
fn duplicate_key(text: &str, span: &std::ops::Range<usize>) -> Option<String> {
    let key = text.get(span.clone())?.trim();
    let line_start = text.get(..span.start)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?.trim();
    let header = line
        .strip_prefix("[[")
        .and_then(|l| l.split("]]").next())
        .or_else(|| line.strip_prefix('[').and_then(|l| l.split(']').next()));
    let name = header.unwrap_or(key).trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// 1-based line number of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Whether `faults` may be injected into a supervisor with this timeout and deadline: the
/// feature is compiled in, the config is valid, and a hang has something to end it.
pub(crate) fn check_faults(
    faults: &FaultConfig,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
) -> Result<(), ConfigError> {
    if !crate::chaos::ENABLED {
        return Err(ConfigError::invalid(
            "faults",
            "fault injection is not compiled in: enable the cargo feature `fault-injection`",
        ));
    }
    faults.validate().map_err(|e| e.within("faults"))?;
    if faults.hang_probability > 0.0 && timeout.is_none() && deadline.is_none() {
        return Err(ConfigError::invalid(
            "faults.hang_probability",
            "needs a `timeout` or a `deadline`: a hung attempt would never end",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_presets_are_valid() {
        SupervisorConfig::default().validate().unwrap();
        SupervisorConfig::database().validate().unwrap();
        SupervisorConfig::http_api().validate().unwrap();
        SupervisorConfig::cache().validate().unwrap();
    }

    #[test]
    fn line_of_counts_newlines_before_offset() {
        let text = "a\nbb\nccc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 5), 3);
        assert_eq!(line_of(text, 100), 3);
    }

    #[test]
    fn nested_errors_name_the_full_path() {
        let mut config = SupervisorConfig::default();
        config.breaker.half_open_probes = 0;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field(), Some("breaker.half_open_probes"));
    }
}
