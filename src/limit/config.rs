//! [`ConcurrencyLimitConfig`]: which algorithm, its bounds and its parameters.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::ConfigError;
use crate::mode::PolicyMode;

/// Settings of one adaptive concurrency limit: the algorithm and its parameters.
///
/// In TOML the algorithm is the `algorithm` key, the other keys are its parameters (missing
/// ones take their defaults):
///
/// ```toml
/// limit = { algorithm = "aimd", initial_limit = 10, max_limit = 100, backoff_ratio = 0.8 }
/// # or
/// limit = { algorithm = "gradient", min_limit = 5, max_limit = 500, queue_size = "sqrt" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum ConcurrencyLimitConfig {
    /// Additive increase, multiplicative decrease ([`Aimd`](super::Aimd)).
    Aimd(AimdConfig),
    /// Netflix gradient2 ([`Gradient`](super::Gradient)).
    Gradient(GradientConfig),
}

impl Default for ConcurrencyLimitConfig {
    /// AIMD with its defaults.
    fn default() -> Self {
        ConcurrencyLimitConfig::Aimd(AimdConfig::default())
    }
}

impl ConcurrencyLimitConfig {
    /// The bounds shared by both algorithms: `(initial_limit, min_limit, max_limit)`.
    pub fn bounds(&self) -> (u32, u32, u32) {
        match self {
            ConcurrencyLimitConfig::Aimd(c) => (c.initial_limit, c.min_limit, c.max_limit),
            ConcurrencyLimitConfig::Gradient(c) => (c.initial_limit, c.min_limit, c.max_limit),
        }
    }

    /// Whether the limit is enforced or only observed ([`PolicyMode`]).
    pub fn mode(&self) -> PolicyMode {
        match self {
            ConcurrencyLimitConfig::Aimd(c) => c.mode,
            ConcurrencyLimitConfig::Gradient(c) => c.mode,
        }
    }

    /// The same limit, enforced or only observed ([`PolicyMode`]).
    pub fn with_mode(mut self, mode: PolicyMode) -> Self {
        match &mut self {
            ConcurrencyLimitConfig::Aimd(c) => c.mode = mode,
            ConcurrencyLimitConfig::Gradient(c) => c.mode = mode,
        }
        self
    }

    /// The same limit, only observed: computed and published as configured, but a call above
    /// it is not refused ([`PolicyMode::Observe`]).
    pub fn observe(self) -> Self {
        self.with_mode(PolicyMode::Observe)
    }

    /// Whether `other` is this limit but for its `mode` (a reload that only switches the mode
    /// keeps what the limit learned).
    pub(crate) fn same_but_mode(&self, other: &ConcurrencyLimitConfig) -> bool {
        *self == other.clone().with_mode(self.mode())
    }

    /// Checks every field of the chosen algorithm; the error names the first offending one
    /// (`min_limit`, `max_limit`, `initial_limit`, `backoff_ratio`, `smoothing`, ...).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            ConcurrencyLimitConfig::Aimd(c) => c.validate(),
            ConcurrencyLimitConfig::Gradient(c) => c.validate(),
        }
    }
}

/// Parameters of [`Aimd`](super::Aimd).
///
/// ```toml
/// initial_limit = 20
/// min_limit = 1
/// max_limit = 200
/// backoff_ratio = 0.9
/// latency_threshold = "5s"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AimdConfig {
    /// Limit before the first sample, within `[min_limit, max_limit]`. Default 20.
    pub initial_limit: u32,
    /// Lowest limit, at least 1. Default 1.
    pub min_limit: u32,
    /// Highest limit, at least `min_limit`. Default 200.
    pub max_limit: u32,
    /// A drop or slow sample multiplies the limit by this (rounded down); in `[0.5, 1)`, used
    /// with a precision of 1e-6. Default 0.9.
    pub backoff_ratio: f64,
    /// A sample slower than this lowers the limit like a drop. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub latency_threshold: Duration,
    /// `enforce` (the default) or `observe`: the limit is computed and published as
    /// configured, but the bulkhead admits up to `max_in_flight`; a call above the limit runs,
    /// counted `would_reject{reason="overloaded"}`, and is not a sample of the limit (see
    /// [`PolicyMode`]).
    #[serde(skip_serializing_if = "crate::mode::is_enforce")]
    pub mode: PolicyMode,
}

impl Default for AimdConfig {
    fn default() -> Self {
        AimdConfig {
            initial_limit: 20,
            min_limit: 1,
            max_limit: 200,
            backoff_ratio: 0.9,
            latency_threshold: Duration::from_secs(5),
            mode: PolicyMode::Enforce,
        }
    }
}

impl AimdConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_bounds(self.initial_limit, self.min_limit, self.max_limit)?;
        if !(self.backoff_ratio.is_finite() && (0.5..1.0).contains(&self.backoff_ratio)) {
            return Err(ConfigError::invalid(
                "backoff_ratio",
                "must be at least 0.5 and less than 1.0",
            ));
        }
        if self.latency_threshold.is_zero() {
            return Err(ConfigError::invalid(
                "latency_threshold",
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// Parameters of [`Gradient`](super::Gradient).
///
/// ```toml
/// initial_limit = 20
/// min_limit = 1
/// max_limit = 200
/// smoothing = 0.2
/// rtt_tolerance = 1.5
/// long_window = 600
/// short_window = 10
/// queue_size = "sqrt"   # or a number, e.g. 4
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradientConfig {
    /// Limit before the first sample, within `[min_limit, max_limit]`. Default 20.
    pub initial_limit: u32,
    /// Lowest limit, at least 1. Default 1.
    pub min_limit: u32,
    /// Highest limit, at least `min_limit`. Default 200.
    pub max_limit: u32,
    /// Weight of each new limit against the current one, in `(0, 1]`. Default 0.2.
    pub smoothing: f64,
    /// How much slower than the long-term RTT the short-term RTT may be before the limit
    /// shrinks: finite, at least 1.0. Default 1.5 (1.0 is the bare `long / short` gradient).
    pub rtt_tolerance: f64,
    /// Samples the long-term RTT average spans, greater than `short_window`. Default 600.
    pub long_window: u32,
    /// Samples the short-term RTT average spans, at least 1 (1 is the last sample alone).
    /// Default 10.
    pub short_window: u32,
    /// Calls the limit may grow by per step when there is no queueing. Default `sqrt`.
    pub queue_size: QueueSize,
    /// `enforce` (the default) or `observe`: the limit is computed and published as
    /// configured, but the bulkhead admits up to `max_in_flight`; a call above the limit runs,
    /// counted `would_reject{reason="overloaded"}`, and is not a sample of the limit (see
    /// [`PolicyMode`]).
    #[serde(skip_serializing_if = "crate::mode::is_enforce")]
    pub mode: PolicyMode,
}

impl Default for GradientConfig {
    fn default() -> Self {
        GradientConfig {
            initial_limit: 20,
            min_limit: 1,
            max_limit: 200,
            smoothing: 0.2,
            rtt_tolerance: 1.5,
            long_window: 600,
            short_window: 10,
            queue_size: QueueSize::Sqrt,
            mode: PolicyMode::Enforce,
        }
    }
}

impl GradientConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_bounds(self.initial_limit, self.min_limit, self.max_limit)?;
        if !(self.smoothing.is_finite() && self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(ConfigError::invalid(
                "smoothing",
                "must be greater than zero and at most 1.0",
            ));
        }
        if !(self.rtt_tolerance.is_finite() && self.rtt_tolerance >= 1.0) {
            return Err(ConfigError::invalid(
                "rtt_tolerance",
                "must be a finite number of at least 1.0",
            ));
        }
        if self.short_window == 0 {
            return Err(ConfigError::invalid(
                "short_window",
                "must be greater than zero",
            ));
        }
        if self.long_window <= self.short_window {
            return Err(ConfigError::invalid(
                "long_window",
                "must be greater than short_window",
            ));
        }
        Ok(())
    }
}

fn validate_bounds(initial: u32, min: u32, max: u32) -> Result<(), ConfigError> {
    if min == 0 {
        return Err(ConfigError::invalid("min_limit", "must be at least 1"));
    }
    if max < min {
        return Err(ConfigError::invalid(
            "max_limit",
            "must be greater than or equal to min_limit",
        ));
    }
    if !(min..=max).contains(&initial) {
        return Err(ConfigError::invalid(
            "initial_limit",
            "must be between min_limit and max_limit",
        ));
    }
    Ok(())
}

/// How much the gradient limit may grow per step when there is no queueing.
///
/// In TOML: `queue_size = "sqrt"` or a whole number, e.g. `queue_size = 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueSize {
    /// The square root of the current limit (grows fast from small limits, slowly from large).
    #[default]
    Sqrt,
    /// A fixed number of calls.
    Fixed(u32),
}

impl QueueSize {
    /// The queue allowance at `limit`.
    pub fn at(self, limit: u32) -> f64 {
        match self {
            QueueSize::Sqrt => f64::from(limit).sqrt(),
            QueueSize::Fixed(n) => f64::from(n),
        }
    }
}

impl Serialize for QueueSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            QueueSize::Sqrt => s.serialize_str("sqrt"),
            QueueSize::Fixed(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for QueueSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(QueueSizeVisitor)
    }
}

struct QueueSizeVisitor;

impl Visitor<'_> for QueueSizeVisitor {
    type Value = QueueSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"sqrt\" or a whole number of calls")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<QueueSize, E> {
        if v == "sqrt" {
            Ok(QueueSize::Sqrt)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<QueueSize, E> {
        u32::try_from(v)
            .map(QueueSize::Fixed)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<QueueSize, E> {
        u32::try_from(v)
            .map(QueueSize::Fixed)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aimd() -> AimdConfig {
        AimdConfig::default()
    }

    fn gradient() -> GradientConfig {
        GradientConfig::default()
    }

    #[test]
    fn defaults_are_documented_values_and_valid() {
        let a = aimd();
        assert_eq!(
            (a.initial_limit, a.min_limit, a.max_limit, a.backoff_ratio),
            (20, 1, 200, 0.9)
        );
        assert_eq!(a.latency_threshold, Duration::from_secs(5));
        let g = gradient();
        assert_eq!((g.initial_limit, g.min_limit, g.max_limit), (20, 1, 200));
        assert_eq!((g.smoothing, g.rtt_tolerance), (0.2, 1.5));
        assert_eq!((g.long_window, g.short_window), (600, 10));
        assert_eq!(g.queue_size, QueueSize::Sqrt);
        assert_eq!(ConcurrencyLimitConfig::default().validate(), Ok(()));
        assert_eq!(
            ConcurrencyLimitConfig::Gradient(gradient()).validate(),
            Ok(())
        );
        assert_eq!(ConcurrencyLimitConfig::default().bounds(), (20, 1, 200));
    }

    #[test]
    fn validate_names_each_invalid_field() {
        use ConcurrencyLimitConfig::{Aimd, Gradient};
        let cases: Vec<(ConcurrencyLimitConfig, &str)> = vec![
            (
                Aimd(AimdConfig {
                    min_limit: 0,
                    initial_limit: 0,
                    ..aimd()
                }),
                "min_limit",
            ),
            (
                Aimd(AimdConfig {
                    min_limit: 10,
                    max_limit: 9,
                    ..aimd()
                }),
                "max_limit",
            ),
            (
                Aimd(AimdConfig {
                    initial_limit: 201,
                    ..aimd()
                }),
                "initial_limit",
            ),
            (
                Gradient(GradientConfig {
                    initial_limit: 0,
                    ..gradient()
                }),
                "initial_limit",
            ),
            (
                Aimd(AimdConfig {
                    backoff_ratio: 1.0,
                    ..aimd()
                }),
                "backoff_ratio",
            ),
            (
                Aimd(AimdConfig {
                    backoff_ratio: 0.49,
                    ..aimd()
                }),
                "backoff_ratio",
            ),
            (
                Aimd(AimdConfig {
                    backoff_ratio: f64::NAN,
                    ..aimd()
                }),
                "backoff_ratio",
            ),
            (
                Aimd(AimdConfig {
                    latency_threshold: Duration::ZERO,
                    ..aimd()
                }),
                "latency_threshold",
            ),
            (
                Gradient(GradientConfig {
                    smoothing: 0.0,
                    ..gradient()
                }),
                "smoothing",
            ),
            (
                Gradient(GradientConfig {
                    smoothing: 1.5,
                    ..gradient()
                }),
                "smoothing",
            ),
            (
                Gradient(GradientConfig {
                    rtt_tolerance: 0.9,
                    ..gradient()
                }),
                "rtt_tolerance",
            ),
            (
                Gradient(GradientConfig {
                    rtt_tolerance: f64::INFINITY,
                    ..gradient()
                }),
                "rtt_tolerance",
            ),
            (
                Gradient(GradientConfig {
                    short_window: 0,
                    ..gradient()
                }),
                "short_window",
            ),
            (
                Gradient(GradientConfig {
                    long_window: 10,
                    ..gradient()
                }),
                "long_window",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().expect_err(field);
            assert_eq!(err.field(), Some(field), "{err}");
        }
        let edge = Aimd(AimdConfig {
            initial_limit: 1,
            min_limit: 1,
            max_limit: 1,
            backoff_ratio: 0.5,
            ..aimd()
        });
        assert_eq!(edge.validate(), Ok(()));
    }

    #[test]
    fn toml_is_tagged_by_algorithm_and_fills_defaults() {
        #[derive(Debug, Deserialize, Serialize, PartialEq)]
        struct Wrapper {
            limit: ConcurrencyLimitConfig,
        }
        let w: Wrapper = toml::from_str(
            r#"limit = { algorithm = "aimd", max_limit = 100, latency_threshold = "250ms" }"#,
        )
        .expect("parses");
        assert_eq!(
            w.limit,
            ConcurrencyLimitConfig::Aimd(AimdConfig {
                max_limit: 100,
                latency_threshold: Duration::from_millis(250),
                ..aimd()
            })
        );
        let w: Wrapper = toml::from_str(
            r#"limit = { algorithm = "gradient", queue_size = 4, short_window = 1 }"#,
        )
        .expect("parses");
        assert_eq!(
            w.limit,
            ConcurrencyLimitConfig::Gradient(GradientConfig {
                queue_size: QueueSize::Fixed(4),
                short_window: 1,
                ..gradient()
            })
        );
        let w: Wrapper = toml::from_str(r#"limit = { algorithm = "gradient" }"#).unwrap();
        assert_eq!(w.limit, ConcurrencyLimitConfig::Gradient(gradient()));
        for text in [
            r#"limit = { algorithm = "vegas" }"#,
            r#"limit = { max_limit = 10 }"#,
            r#"limit = { algorithm = "aimd", smoothing = 0.2 }"#,
            r#"limit = { algorithm = "gradient", queue_size = "log" }"#,
            r#"limit = { algorithm = "gradient", queue_size = -1 }"#,
            r#"limit = { algorithm = "gradient", queue_size = 2.5 }"#,
        ] {
            assert!(toml::from_str::<Wrapper>(text).is_err(), "{text}");
        }
        for limit in [
            ConcurrencyLimitConfig::default(),
            ConcurrencyLimitConfig::Gradient(gradient()),
            ConcurrencyLimitConfig::Gradient(GradientConfig {
                queue_size: QueueSize::Fixed(3),
                ..gradient()
            }),
        ] {
            let w = Wrapper { limit };
            let text = toml::to_string(&w).expect("serializes");
            assert_eq!(toml::from_str::<Wrapper>(&text).unwrap(), w, "{text}");
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(serde_json::from_str::<Wrapper>(&json).unwrap(), w, "{json}");
        }
    }

    #[test]
    fn queue_size_at_a_limit() {
        assert_eq!(QueueSize::Sqrt.at(16), 4.0);
        assert_eq!(QueueSize::Fixed(3).at(16), 3.0);
    }
}
