//! [`FleetConfig`]: where the fleet's shared quota and budget live, and how a replica uses it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The fleet a service belongs to (see [`fleet`](crate::fleet)). In TOML, a
/// `[services.NAME.fleet]` table beside the service's `rate_limit` and `retry.budget`:
///
/// ```toml
/// [services.payments.fleet]
/// redis = "redis://127.0.0.1:6379"  # the shared store (cargo feature `redis`)
/// expected_replicas = 4             # a replica's share when the store is away
/// quota = true                      # share `rate_limit` across the fleet
/// budget = true                     # share `retry.budget` across the fleet
/// timeout = "50ms"                  # each store operation, at most
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// The Redis server the fleet shares, as a `redis://` (or `rediss://`, `redis+unix://`)
    /// URL. Needs the cargo feature `redis`; empty with a store given in code
    /// ([`SupervisorBuilder::fleet_store`](crate::SupervisorBuilder::fleet_store)).
    pub redis: String,
    /// The name of the fleet's quota and budget in the store; default: the service's name.
    /// Replicas that share a key share the quota and the budget.
    pub key: Option<String>,
    /// Replicas expected to share the quota: while the store is away each one allows
    /// `rate / expected_replicas` (and a burst of `burst / expected_replicas`, at least 1).
    /// At least 1; default 1.
    pub expected_replicas: u32,
    /// Share the service's `rate_limit` across the fleet. Default true (needs a `rate_limit`).
    pub quota: bool,
    /// Share the service's retry budget across the fleet. Default true (needs a budget that is
    /// not `"off"`).
    pub budget: bool,
    /// Longest a store operation may take before the replica falls back. Default 50 ms.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How much of its share of the rate a replica leases at once: `rate / expected_replicas ×
    /// lease` tokens (at least 1, at most the burst). Shorter leases follow shifting traffic
    /// more closely and cost more store round trips. Default 50 ms.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often a replica syncs its budget counts with the store. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub sync_every: Duration,
    /// First wait before trying an unreachable store again; doubles up to `reconnect_max`.
    /// Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Longest wait between tries of an unreachable store. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            redis: String::new(),
            key: None,
            expected_replicas: 1,
            quota: true,
            budget: true,
            timeout: Duration::from_millis(50),
            lease: Duration::from_millis(50),
            sync_every: Duration::from_millis(100),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

impl FleetConfig {
    /// A fleet sharing the Redis server at `url`, of `expected_replicas` replicas.
    pub fn redis(url: impl Into<String>, expected_replicas: u32) -> Self {
        FleetConfig {
            redis: url.into(),
            expected_replicas,
            ..FleetConfig::default()
        }
    }

    /// Names the quota and budget in the store.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Shares the rate limit (or not).
    pub fn quota(mut self, quota: bool) -> Self {
        self.quota = quota;
        self
    }

    /// Shares the retry budget (or not).
    pub fn budget(mut self, budget: bool) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the longest store operation.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long a lease of tokens lasts at a replica's share of the rate.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets how often the budget counts are synced.
    pub fn sync_every(mut self, sync_every: Duration) -> Self {
        self.sync_every = sync_every;
        self
    }

    /// Sets the reconnect backoff's bounds.
    pub fn reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max;
        self
    }

    /// The store key of a service named `service`.
    pub fn key_of<'a>(&'a self, service: &'a str) -> &'a str {
        self.key.as_deref().unwrap_or(service)
    }

    /// Checks every field; the error names it (`expected_replicas`, `timeout`, …).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.expected_replicas == 0 {
            return Err(ConfigError::invalid(
                "expected_replicas",
                "must be at least 1",
            ));
        }
        if self.key.as_deref() == Some("") {
            return Err(ConfigError::invalid("key", "must not be empty"));
        }
        for (field, value) in [
            ("timeout", self.timeout),
            ("lease", self.lease),
            ("sync_every", self.sync_every),
            ("reconnect_min", self.reconnect_min),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(field, "must be greater than zero"));
            }
        }
        if self.reconnect_max < self.reconnect_min {
            return Err(ConfigError::invalid(
                "reconnect_max",
                "must not be shorter than `reconnect_min`",
            ));
        }
        if !self.redis.is_empty() {
            check_url(&self.redis)?;
        }
        Ok(())
    }
}

#[cfg(feature = "redis")]
fn check_url(url: &str) -> Result<(), ConfigError> {
    ::redis::Client::open(url)
        .map(drop)
        .map_err(|e| ConfigError::invalid("redis", format!("not a redis url: {e}")))
}

#[cfg(not(feature = "redis"))]
fn check_url(_: &str) -> Result<(), ConfigError> {
    Err(ConfigError::invalid(
        "redis",
        "needs the cargo feature `redis` (warden was built without it)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_fields_are_named() {
        FleetConfig::default().validate().unwrap();
        let bad = FleetConfig {
            expected_replicas: 0,
            ..FleetConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().field(),
            Some("expected_replicas")
        );
        let bad = FleetConfig::default().timeout(Duration::ZERO);
        assert_eq!(bad.validate().unwrap_err().field(), Some("timeout"));
        let bad = FleetConfig::default().reconnect(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(bad.validate().unwrap_err().field(), Some("reconnect_max"));
        let bad = FleetConfig::default().key("");
        assert_eq!(bad.validate().unwrap_err().field(), Some("key"));
    }

    #[test]
    fn toml_spells_durations_and_refuses_unknown_fields() {
        let config: FleetConfig =
            toml::from_str("expected_replicas = 4\ntimeout = \"20ms\"\nbudget = false").unwrap();
        assert_eq!(config.expected_replicas, 4);
        assert_eq!(config.timeout, Duration::from_millis(20));
        assert!(config.quota && !config.budget);
        assert!(toml::from_str::<FleetConfig>("replicas = 4").is_err());
    }
}
