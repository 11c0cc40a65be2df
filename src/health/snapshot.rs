//! [`HealthSnapshot`]: the serializable health report of one dependency.

use serde::{Deserialize, Serialize};

use super::{HealthStats, HealthStatus};
use crate::breaker::BreakerState;
use crate::fleet::FleetStatus;

/// A point-in-time health report for one service, as exposed over HTTP or logs.
///
/// Serializes flat, with durations human-readable:
/// `{"service":"db","status":"degraded","breaker":"closed","calls":20,"failures":2,
/// "success_rate":0.9,"p50":"12ms","p95":"40ms","p99":"40ms"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// The dependency's name.
    pub service: String,
    /// The health verdict.
    pub status: HealthStatus,
    /// The circuit breaker's state (serialized as its name, e.g. `"closed"`).
    pub breaker: BreakerState,
    /// The window's stats the verdict was computed from.
    #[serde(flatten)]
    pub stats: HealthStats,
    /// For one replica of a [fleet](crate::fleet): whether its quota and budget are shared
    /// through the fleet's store now, or on the replica's own share. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStatus>,
}

impl HealthSnapshot {
    /// True when the status is [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        self.status.is_healthy()
    }

    /// True when the status is [`HealthStatus::Degraded`].
    pub fn is_degraded(&self) -> bool {
        self.status.is_degraded()
    }

    /// True when the status is [`HealthStatus::Unhealthy`].
    pub fn is_unhealthy(&self) -> bool {
        self.status.is_unhealthy()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn degraded_snapshot() -> HealthSnapshot {
        HealthSnapshot {
            service: "db".to_owned(),
            status: HealthStatus::Degraded,
            breaker: BreakerState::Closed,
            stats: HealthStats {
                calls: 20,
                failures: 2,
                success_rate: Some(0.9),
                p50: Some(Duration::from_millis(12)),
                p95: Some(Duration::from_millis(1500)),
                p99: Some(Duration::from_secs(2)),
            },
            fleet: None,
        }
    }

    #[test]
    fn serializes_flat_json_with_human_readable_durations() {
        let json = serde_json::to_string(&degraded_snapshot()).expect("serializes");
        assert_eq!(
            json,
            r#"{"service":"db","status":"degraded","breaker":"closed","calls":20,"failures":2,"success_rate":0.9,"p50":"12ms","p95":"1s 500ms","p99":"2s"}"#
        );
        let back: HealthSnapshot = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, degraded_snapshot());
    }

    #[test]
    fn empty_stats_serialize_as_null_and_round_trip() {
        let snapshot = HealthSnapshot {
            service: "cache".to_owned(),
            status: HealthStatus::Unhealthy,
            breaker: BreakerState::Open,
            stats: HealthStats::EMPTY,
            fleet: None,
        };
        let json = serde_json::to_string(&snapshot).expect("serializes");
        assert_eq!(
            json,
            r#"{"service":"cache","status":"unhealthy","breaker":"open","calls":0,"failures":0,"success_rate":null,"p50":null,"p95":null,"p99":null}"#
        );
        let back: HealthSnapshot = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, snapshot);
    }

    #[test]
    fn predicates_follow_status() {
        let mut snapshot = degraded_snapshot();
        assert!(snapshot.is_degraded() && !snapshot.is_healthy() && !snapshot.is_unhealthy());
        snapshot.status = HealthStatus::Healthy;
        assert!(snapshot.is_healthy() && !snapshot.is_degraded());
        snapshot.status = HealthStatus::Unhealthy;
        assert!(snapshot.is_unhealthy() && !snapshot.is_healthy());
    }
}
