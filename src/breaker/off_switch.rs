//! Serde helpers for optional trip policies: a number turns the policy on, `false` turns it
//! off (TOML has no null, so `None` is written and read as `false`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// A policy value as written in configuration.
enum Raw {
    Off,
    Integer(i128),
    Float(f64),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, or false to turn the policy off")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        if v {
            Err(E::invalid_value(de::Unexpected::Bool(true), &self))
        } else {
            Ok(Raw::Off)
        }
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

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Off)
    }

    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Off)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// `Option<u32>` count policies (`consecutive_failures`).
pub(crate) mod count {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(n) => s.serialize_u32(*n),
            None => s.serialize_bool(false),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match d.deserialize_any(RawVisitor)? {
            Raw::Off => Ok(None),
            Raw::Integer(n) => u32::try_from(n).map(Some).map_err(|_| {
                de::Error::invalid_value(
                    de::Unexpected::Other("out-of-range integer"),
                    &"a count between 0 and 4294967295, or false",
                )
            }),
            Raw::Float(f) => Err(de::Error::invalid_type(
                de::Unexpected::Float(f),
                &"a whole number, or false",
            )),
        }
    }
}

/// `Option<f64>` rate policies (`failure_rate_threshold`, `slow_call_rate_threshold`).
pub(crate) mod rate {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(x) => s.serialize_f64(*x),
            None => s.serialize_bool(false),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(match d.deserialize_any(RawVisitor)? {
            Raw::Off => None,
            Raw::Integer(n) => Some(n as f64),
            Raw::Float(x) => Some(x),
        })
    }
}
