//! Metric handles of one fleet service: whether its quota and its budget are on their own
//! share (the store away), and how often they fell back. Registered only for services with a
//! [fleet](crate::fleet), so a plain service pays nothing.

use metrics::{counter, gauge, Counter, Gauge};

use super::names::*;
use crate::fleet::FleetPart;

/// Pre-registered handles for one fleet service.
#[derive(Debug)]
pub(crate) struct FleetMetrics {
    fallback: [Gauge; 2],
    fallbacks: [Counter; 2],
}

const PARTS: [FleetPart; 2] = [FleetPart::Quota, FleetPart::Budget];

impl FleetMetrics {
    /// Registers the series of the fleet service `service` (both parts on the fleet's store).
    pub(crate) fn register(service: &str) -> Self {
        let fallback = PARTS.map(|part| {
            gauge!(FLEET_FALLBACK, LABEL_SERVICE => service.to_string(), LABEL_PART => part.as_str())
        });
        let fallbacks = PARTS.map(|part| {
            counter!(FLEET_FALLBACKS_TOTAL, LABEL_SERVICE => service.to_string(), LABEL_PART => part.as_str())
        });
        for gauge in &fallback {
            gauge.set(0.0);
        }
        FleetMetrics {
            fallback,
            fallbacks,
        }
    }

    /// `part` is on the fleet's store (`shared`) or on its own share.
    pub(crate) fn shared(&self, part: FleetPart, shared: bool) {
        let i = part as usize;
        self.fallback[i].set(if shared { 0.0 } else { 1.0 });
        if !shared {
            self.fallbacks[i].increment(1);
        }
    }
}
