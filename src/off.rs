//! Serde helpers for settings that can be switched off. Off is spelled one way everywhere in
//! configuration: `"off"` (TOML has no null, so `None` is written and read as `"off"`). A
//! missing value is off too where the field has no other default.
//!
//! Three shapes: a duration (`timeout = "2s"` or `"off"`), a count (`consecutive_failures = 5`
//! or `"off"`) and a rate (`failure_rate_threshold = 0.5` or `"off"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// The word that switches a setting off.
const OFF: &str = "off";

/// A value as written in configuration.
enum Raw {
    Off,
    Integer(i128),
    Float(f64),
    Text(String),
}

struct RawVisitor(&'static str);

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, or \"off\" to turn it off", self.0)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Err(E::invalid_value(de::Unexpected::Bool(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Integer(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Integer(i128::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        if v.eq_ignore_ascii_case(OFF) {
            Ok(Raw::Off)
        } else {
            Ok(Raw::Text(v.to_owned()))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Off)
    }

    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Off)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(self)
    }
}

fn unexpected<E: de::Error>(raw: &Raw, expected: &'static str) -> E {
    let unexpected = match raw {
        Raw::Integer(_) => de::Unexpected::Other("an integer"),
        Raw::Float(f) => de::Unexpected::Float(*f),
        Raw::Text(text) => de::Unexpected::Str(text),
        Raw::Off => de::Unexpected::Other("\"off\""),
    };
    E::invalid_value(unexpected, &RawVisitor(expected))
}

/// `Option<Duration>`: `"500ms"`-style text, or `"off"`.
pub(crate) mod duration {
    use super::*;

    const EXPECTED: &str = "a duration such as \"500ms\"";

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => s.serialize_str(&humantime::format_duration(*duration).to_string()),
            None => s.serialize_str(OFF),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match d.deserialize_any(RawVisitor(EXPECTED))? {
            Raw::Off => Ok(None),
            Raw::Text(text) => humantime::parse_duration(&text)
                .map(Some)
                .map_err(|e| de::Error::custom(format!("invalid duration {text:?}: {e}"))),
            other => Err(unexpected(&other, EXPECTED)),
        }
    }
}

/// `Option<u32>` counts (`consecutive_failures`).
pub(crate) mod count {
    use super::*;

    const EXPECTED: &str = "a count between 0 and 4294967295";

    pub(crate) fn serialize<S: Serializer>(value: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(n) => s.serialize_u32(*n),
            None => s.serialize_str(OFF),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match d.deserialize_any(RawVisitor(EXPECTED))? {
            Raw::Off => Ok(None),
            Raw::Integer(n) => u32::try_from(n).map(Some).map_err(|_| {
                de::Error::invalid_value(
                    de::Unexpected::Other("out-of-range integer"),
                    &RawVisitor(EXPECTED),
                )
            }),
            other => Err(unexpected(&other, EXPECTED)),
        }
    }
}

/// `Option<f64>` rates (`failure_rate_threshold`, `slow_call_rate_threshold`).
pub(crate) mod rate {
    use super::*;

    const EXPECTED: &str = "a number";

    pub(crate) fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(x) => s.serialize_f64(*x),
            None => s.serialize_str(OFF),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match d.deserialize_any(RawVisitor(EXPECTED))? {
            Raw::Off => Ok(None),
            Raw::Integer(n) => Ok(Some(n as f64)),
            Raw::Float(x) => Ok(Some(x)),
            other => Err(unexpected(&other, EXPECTED)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        #[serde(default, with = "super::duration")]
        limit: Option<Duration>,
        #[serde(default, with = "super::count")]
        count: Option<u32>,
        #[serde(default, with = "super::rate")]
        rate: Option<f64>,
    }

    fn read(text: &str) -> Result<Probe, toml::de::Error> {
        toml::from_str::<Probe>(text)
    }

    #[test]
    fn reads_values_and_off() {
        let probe = read("limit = \"250ms\"\ncount = 3\nrate = 0.5").unwrap();
        assert_eq!(probe.limit, Some(Duration::from_millis(250)));
        assert_eq!(probe.count, Some(3));
        assert_eq!(probe.rate, Some(0.5));
        let off = read("limit = \"off\"\ncount = \"off\"\nrate = \"OFF\"").unwrap();
        assert_eq!((off.limit, off.count, off.rate), (None, None, None));
        assert_eq!(read("").unwrap().limit, None);
        assert_eq!(read("rate = 1").unwrap().rate, Some(1.0));
    }

    #[test]
    fn off_has_one_spelling() {
        for text in [
            "limit = false",
            "limit = true",
            "count = false",
            "rate = false",
        ] {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains("\"off\""), "{text}: {error}");
        }
        assert!(read("limit = \"5 parsecs\"").is_err());
        assert!(read("count = -1").is_err());
        assert!(read("count = 1.5").is_err());
        assert!(read("count = \"five\"").is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        for (limit, count, rate) in [
            (None, None, None),
            (Some(Duration::from_millis(1500)), Some(4), Some(0.25)),
        ] {
            let probe = Probe { limit, count, rate };
            let text = toml::to_string(&probe).unwrap();
            assert_eq!(read(&text).unwrap(), probe, "{text}");
        }
    }
}
