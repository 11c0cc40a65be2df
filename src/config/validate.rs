//! Checking a configuration before a supervisor is built from it: every field of a
//! [`SupervisorConfig`], the fault injection it asks for, and the service's name.
//!
//! A configuration is checked whole and up front (by a builder, a registry, a reload) so that a
//! bad value is refused with the dotted path of the field that holds it, never found later as
//! a supervisor that misbehaves; a reload applies nothing of an invalid file.

use std::time::Duration;

use super::supervisor::SupervisorConfig;
use crate::chaos::FaultConfig;
use crate::error::ConfigError;

impl SupervisorConfig {
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
    fn nested_errors_name_the_full_path() {
        let mut config = SupervisorConfig::default();
        config.breaker.half_open_probes = 0;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field(), Some("breaker.half_open_probes"));
    }
}
