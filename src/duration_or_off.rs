//! Serde helper for optional durations: a human-readable duration (`"500ms"`, `"30s"`) turns the
//! setting on, `false` or `"off"` turns it off (TOML has no null, so `None` is written and read
//! as `false`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// `None` as `false`, `Some(d)` as humantime text.
pub(crate) fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => s.serialize_str(&humantime::format_duration(*duration).to_string()),
        None => s.serialize_bool(false),
    }
}

/// Accepts `"500ms"`-style text, `false`, `"off"`, or a missing/null value (`None`).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationOrOff)
}

struct DurationOrOff;

impl<'de> Visitor<'de> for DurationOrOff {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"500ms\", or false (or \"off\") to turn it off")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if v {
            Err(E::invalid_value(de::Unexpected::Bool(true), &self))
        } else {
            Ok(None)
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        humantime::parse_duration(v)
            .map(Some)
            .map_err(|e| E::custom(format!("invalid duration {v:?}: {e}")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(DurationOrOff)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        #[serde(default, with = "super")]
        limit: Option<Duration>,
    }

    #[test]
    fn reads_durations_false_and_off() {
        let read = |text: &str| toml::from_str::<Probe>(text).map(|p| p.limit);
        assert_eq!(
            read("limit = \"250ms\"").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(read("limit = false").unwrap(), None);
        assert_eq!(read("limit = \"off\"").unwrap(), None);
        assert_eq!(read("").unwrap(), None);
        assert!(read("limit = true").is_err());
        assert!(read("limit = \"5 parsecs\"").is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        for limit in [None, Some(Duration::from_millis(1500))] {
            let text = toml::to_string(&Probe { limit }).unwrap();
            assert_eq!(
                toml::from_str::<Probe>(&text).unwrap().limit,
                limit,
                "{text}"
            );
        }
    }
}
