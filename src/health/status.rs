//! [`HealthStatus`]: the three-level verdict on a dependency's health.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How healthy a dependency is, ordered from best to worst (`Healthy < Degraded < Unhealthy`),
/// so the worse of two verdicts is their [`Ord::max`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Calls succeed and are fast enough, or there is not enough evidence to say otherwise.
    Healthy,
    /// Calls mostly work but the success rate or the p95 latency crossed the degraded threshold.
    Degraded,
    /// The breaker is open, or the success rate or the p95 latency crossed the unhealthy
    /// threshold.
    Unhealthy,
}

impl HealthStatus {
    /// Every status, from best to worst (index equals [`HealthStatus::as_u8`]).
    pub const ALL: [HealthStatus; 3] = [
        HealthStatus::Healthy,
        HealthStatus::Degraded,
        HealthStatus::Unhealthy,
    ];

    /// The snake_case name, as used in serialized form and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// True for [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Healthy)
    }

    /// True for [`HealthStatus::Degraded`].
    pub fn is_degraded(&self) -> bool {
        matches!(self, HealthStatus::Degraded)
    }

    /// True for [`HealthStatus::Unhealthy`].
    pub fn is_unhealthy(&self) -> bool {
        matches!(self, HealthStatus::Unhealthy)
    }

    /// Compact encoding for atomics and gauges: 0 healthy, 1 degraded, 2 unhealthy.
    pub fn as_u8(&self) -> u8 {
        match self {
            HealthStatus::Healthy => 0,
            HealthStatus::Degraded => 1,
            HealthStatus::Unhealthy => 2,
        }
    }

    /// Inverse of [`HealthStatus::as_u8`]; `None` for any other value.
    pub fn from_u8(value: u8) -> Option<HealthStatus> {
        HealthStatus::ALL.get(usize::from(value)).copied()
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_round_trips_and_rejects_unknown_values() {
        for (index, status) in HealthStatus::ALL.iter().enumerate() {
            assert_eq!(usize::from(status.as_u8()), index);
            assert_eq!(HealthStatus::from_u8(status.as_u8()), Some(*status));
        }
        assert_eq!(HealthStatus::from_u8(3), None);
        assert_eq!(HealthStatus::from_u8(u8::MAX), None);
    }

    #[test]
    fn predicates_names_and_ordering() {
        assert!(HealthStatus::Healthy.is_healthy());
        assert!(!HealthStatus::Healthy.is_degraded());
        assert!(HealthStatus::Degraded.is_degraded());
        assert!(!HealthStatus::Degraded.is_unhealthy());
        assert!(HealthStatus::Unhealthy.is_unhealthy());
        assert!(!HealthStatus::Unhealthy.is_healthy());
        let names: Vec<&str> = HealthStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["healthy", "degraded", "unhealthy"]);
        assert_eq!(HealthStatus::Degraded.to_string(), "degraded");
        assert!(HealthStatus::Healthy < HealthStatus::Degraded);
        assert!(HealthStatus::Degraded < HealthStatus::Unhealthy);
    }

    #[test]
    fn serializes_as_snake_case_string() {
        assert_eq!(
            serde_json::to_string(&HealthStatus::Unhealthy)
                .ok()
                .as_deref(),
            Some("\"unhealthy\"")
        );
        let parsed: Result<HealthStatus, _> = serde_json::from_str("\"degraded\"");
        assert_eq!(parsed.ok(), Some(HealthStatus::Degraded));
    }
}
