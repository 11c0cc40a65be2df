//! Configuration of the window over which failure and slow-call rates are computed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Which calls the failure and slow-call rates are computed over.
///
/// In TOML: `window = { kind = "count", size = 100 }` or
/// `window = { kind = "time", duration = "10s" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SlidingWindow {
    /// The last `size` recorded calls.
    Count {
        /// Number of calls kept.
        size: u32,
    },
    /// The calls recorded during the last `duration`, kept in 10 buckets of
    /// `duration / 10` (at least 1 ms): a call stops counting between 0.9 × `duration` and
    /// `duration` after it was recorded.
    Time {
        /// How far back calls count.
        #[serde(with = "humantime_serde")]
        duration: Duration,
    },
}

impl Default for SlidingWindow {
    /// The last 100 calls.
    fn default() -> Self {
        SlidingWindow::Count { size: 100 }
    }
}

impl SlidingWindow {
    /// Check the window; field names are relative (`size`, `duration`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            SlidingWindow::Count { size: 0 } => {
                Err(ConfigError::invalid("size", "must be greater than zero"))
            }
            SlidingWindow::Time { duration } if duration.is_zero() => Err(ConfigError::invalid(
                "duration",
                "must be greater than zero",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_windows() {
        let err = SlidingWindow::Count { size: 0 }.validate().unwrap_err();
        assert_eq!(err.field(), Some("size"));
        let err = SlidingWindow::Time {
            duration: Duration::ZERO,
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field(), Some("duration"));
        assert!(SlidingWindow::default().validate().is_ok());
    }
}
