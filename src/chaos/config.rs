//! [`FaultConfig`]: which faults to inject, how often, for how long.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Which faults a supervisor injects into its attempts (see the [module docs](super)).
///
/// Each attempt gets at most one fault: with probability `hang_probability` it hangs, else with
/// `error_probability` it fails, else with `latency_probability` it is delayed by `latency`,
/// else it runs untouched. The three probabilities must add up to at most 1.
///
/// ```toml
/// [services.database.faults]
/// error_probability = 0.1      # one attempt in ten fails without reaching the database
/// latency_probability = 0.2    # one in five waits 300 ms first
/// latency = "300ms"
/// hang_probability = 0.01      # one in a hundred never answers (its timeout fires)
/// expires_after = "15m"        # the game day ends by itself
/// seed = 7                     # the same faults on the same attempts, run after run
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Share of attempts that fail without calling the operation, in `[0, 1]`. Default 0.
    pub error_probability: f64,
    /// Share of attempts delayed by [`latency`](Self::latency) before the operation runs, in
    /// `[0, 1]`. Default 0.
    pub latency_probability: f64,
    /// The delay of a delayed attempt (it counts against the attempt's timeout). Default
    /// 100 ms; must be greater than zero when `latency_probability` is.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Share of attempts that never complete (the timeout or deadline ends them), in `[0, 1]`.
    /// Default 0. Needs a `timeout` or a `deadline` on the supervisor.
    pub hang_probability: f64,
    /// Injection stops by itself this long after it was switched on (`None`, `"off"` in TOML:
    /// until cleared). Default `None`.
    #[serde(with = "crate::off::duration")]
    pub expires_after: Option<Duration>,
    /// Seed of the draws; `None` derives one from the supervisor's seed (or draws one).
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            error_probability: 0.0,
            latency_probability: 0.0,
            latency: Duration::from_millis(100),
            hang_probability: 0.0,
            expires_after: None,
            seed: None,
        }
    }
}

impl FaultConfig {
    /// Injects nothing until the builders below add faults (as [`Default`]).
    pub fn new() -> Self {
        FaultConfig::default()
    }

    /// Fails this share of attempts without calling the operation.
    pub fn errors(mut self, probability: f64) -> Self {
        self.error_probability = probability;
        self
    }

    /// Delays this share of attempts by `latency` before the operation runs.
    pub fn latency(mut self, probability: f64, latency: Duration) -> Self {
        self.latency_probability = probability;
        self.latency = latency;
        self
    }

    /// Hangs this share of attempts (their timeout fires).
    pub fn hangs(mut self, probability: f64) -> Self {
        self.hang_probability = probability;
        self
    }

    /// Stops injecting this long after injection starts.
    pub fn expires_after(mut self, after: Duration) -> Self {
        self.expires_after = Some(after);
        self
    }

    /// Seeds the draws, for the same faults on the same attempts run after run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks every field; the error names the first invalid one. Whether injection is
    /// compiled in at all, and whether the supervisor can end a hang, are checked when a
    /// supervisor is given the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, p) in [
            ("error_probability", self.error_probability),
            ("latency_probability", self.latency_probability),
            ("hang_probability", self.hang_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::invalid(field, "must be a number in [0, 1]"));
            }
        }
        // A little room for decimal fractions that add up to 1 (0.7 + 0.2 + 0.1).
        if self.error_probability + self.latency_probability + self.hang_probability > 1.0 + 1e-9 {
            return Err(ConfigError::invalid(
                "error_probability",
                "error_probability + latency_probability + hang_probability must not exceed 1 \
                 (an attempt gets at most one fault)",
            ));
        }
        if self.latency_probability > 0.0 && self.latency.is_zero() {
            return Err(ConfigError::invalid(
                "latency",
                "must be greater than zero when latency_probability is",
            ));
        }
        if self.expires_after == Some(Duration::ZERO) {
            return Err(ConfigError::invalid(
                "expires_after",
                "must be greater than zero (or \"off\": until cleared)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_defaults() {
        let c = FaultConfig::new();
        assert_eq!(c, FaultConfig::default());
        assert_eq!(c.validate(), Ok(()));
        let c = FaultConfig::new()
            .errors(0.1)
            .latency(0.2, Duration::from_millis(300))
            .hangs(0.05)
            .expires_after(Duration::from_secs(60))
            .seed(3);
        assert_eq!(
            (
                c.error_probability,
                c.latency_probability,
                c.hang_probability
            ),
            (0.1, 0.2, 0.05)
        );
        assert_eq!(c.latency, Duration::from_millis(300));
        assert_eq!(c.expires_after, Some(Duration::from_secs(60)));
        assert_eq!(c.seed, Some(3));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            FaultConfig::new()
                .errors(0.7)
                .latency(0.2, Duration::from_millis(1))
                .hangs(0.1)
                .validate(),
            Ok(())
        );
    }

    #[test]
    fn validate_names_each_invalid_field() {
        for p in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
            let field = |c: FaultConfig| c.validate().unwrap_err().field().map(str::to_string);
            assert_eq!(
                field(FaultConfig::new().errors(p)).as_deref(),
                Some("error_probability")
            );
            assert_eq!(
                field(FaultConfig::new().latency(p, Duration::from_millis(1))).as_deref(),
                Some("latency_probability")
            );
            assert_eq!(
                field(FaultConfig::new().hangs(p)).as_deref(),
                Some("hang_probability")
            );
        }
        let err = FaultConfig::new()
            .errors(0.6)
            .hangs(0.6)
            .validate()
            .unwrap_err();
        assert_eq!(err.field(), Some("error_probability"));
        assert!(err.to_string().contains("must not exceed 1"), "{err}");
        let err = FaultConfig::new()
            .latency(0.5, Duration::ZERO)
            .validate()
            .unwrap_err();
        assert_eq!(err.field(), Some("latency"));
        let err = FaultConfig::new()
            .expires_after(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert_eq!(err.field(), Some("expires_after"));
    }

    #[test]
    fn toml_round_trips_and_rejects_unknown_keys() {
        let c: FaultConfig = toml::from_str(
            "error_probability = 0.1\nlatency_probability = 0.2\nlatency = \"300ms\"\n\
             hang_probability = 0.01\nexpires_after = \"15m\"\nseed = 7",
        )
        .unwrap();
        assert_eq!(
            c,
            FaultConfig::new()
                .errors(0.1)
                .latency(0.2, Duration::from_millis(300))
                .hangs(0.01)
                .expires_after(Duration::from_secs(900))
                .seed(7)
        );
        let back: FaultConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let off: FaultConfig = toml::from_str("expires_after = \"off\"").unwrap();
        assert_eq!(off.expires_after, None);
        for text in ["error_rate = 0.1", "latency = 5", "seed = -1"] {
            assert!(toml::from_str::<FaultConfig>(text).is_err(), "{text}");
        }
    }
}
