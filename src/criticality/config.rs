//! [`CriticalityConfig`]: the shares of each capacity kept for the more critical calls.

use serde::{Deserialize, Serialize};

use super::Criticality;
use crate::error::ConfigError;

/// The shares of each load control's capacity (bulkhead slots, the adaptive limit, the rate
/// limit's burst) that less critical calls may not use. See the [module docs](super).
///
/// ```toml
/// [criticality]
/// reserved_for_critical = 0.1   # only critical calls use the last 10 %
/// reserved_for_default = 0.2    # sheddable calls stop at 70 %
/// ```
///
/// Shares are taken in whole slots (or tokens), rounded down: a reserve of 10 % of a limit of 5
/// keeps nothing back, so a small limit never starves a class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CriticalityConfig {
    /// The share only critical calls may use. Default 0.1.
    pub reserved_for_critical: f64,
    /// The share, below the critical one, that default and critical calls may use and
    /// sheddable calls may not. Default 0.2.
    pub reserved_for_default: f64,
}

impl Default for CriticalityConfig {
    fn default() -> Self {
        CriticalityConfig {
            reserved_for_critical: 0.1,
            reserved_for_default: 0.2,
        }
    }
}

impl CriticalityConfig {
    /// Sets the share only critical calls may use.
    pub fn reserved_for_critical(mut self, share: f64) -> Self {
        self.reserved_for_critical = share;
        self
    }

    /// Sets the share sheddable calls may not use, on top of the critical one.
    pub fn reserved_for_default(mut self, share: f64) -> Self {
        self.reserved_for_default = share;
        self
    }

    /// The share of a capacity a call of `criticality` must leave to the more critical ones.
    pub fn reserved_above(&self, criticality: Criticality) -> f64 {
        match criticality {
            Criticality::Critical => 0.0,
            Criticality::Default => self.reserved_for_critical,
            Criticality::Sheddable => self.reserved_for_critical + self.reserved_for_default,
        }
    }

    /// Checks every field; the error names the first offending one (`reserved_for_critical`,
    /// `reserved_for_default`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, share) in [
            ("reserved_for_critical", self.reserved_for_critical),
            ("reserved_for_default", self.reserved_for_default),
        ] {
            if !(share.is_finite() && (0.0..1.0).contains(&share)) {
                return Err(ConfigError::invalid(
                    field,
                    "must be a finite number in [0, 1)",
                ));
            }
        }
        if self.reserved_for_critical + self.reserved_for_default >= 1.0 {
            return Err(ConfigError::invalid(
                "reserved_for_default",
                "together with reserved_for_critical must leave sheddable calls a share (sum below 1)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_shares_name_their_field() {
        assert_eq!(CriticalityConfig::default().validate(), Ok(()));
        let field = |config: CriticalityConfig| match config.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        let config = CriticalityConfig::default();
        assert_eq!(
            field(config.reserved_for_critical(1.0)),
            "reserved_for_critical"
        );
        assert_eq!(
            field(config.reserved_for_default(f64::NAN)),
            "reserved_for_default"
        );
        assert_eq!(
            field(config.reserved_for_critical(0.5).reserved_for_default(0.5)),
            "reserved_for_default"
        );
        assert_eq!(config.reserved_above(Criticality::Critical), 0.0);
        assert_eq!(config.reserved_above(Criticality::Default), 0.1);
        assert!((config.reserved_above(Criticality::Sheddable) - 0.3).abs() < 1e-12);
    }
}
