//! [`ServicesFile`]: several services' configurations in one TOML file, parsed and validated.
//!
//! A file is written by hand, so its errors must point at the text: a parse error carries the
//! line and the key's path (a duplicate key included, which the TOML parser reports before any
//! path exists), and an invalid value names `services.NAME.field`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::supervisor::SupervisorConfig;
use super::validate::validate_service_name;
use crate::error::ConfigError;

/// Several services' configurations, as loaded from one TOML file:
///
/// ```toml
/// [services.database]
/// timeout = "2s"
///
/// [services.database.retry]
/// max_attempts = 3
/// backoff = { kind = "full_jitter", base = "100ms" }
///
/// [services.cache]
/// timeout = "50ms"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesFile {
    /// Service name → its configuration.
    pub services: BTreeMap<String, SupervisorConfig>,
}

impl ServicesFile {
    /// Parses and validates TOML text. Syntax errors, unknown keys, wrong types, negative
    /// numbers and wrong duration units are [`ConfigError::Parse`] with the line and the key's
    /// path; invalid values are [`ConfigError::Invalid`] naming `services.NAME.field`.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let parse_error = |error: toml::de::Error, path: Option<String>| {
            let span = error.span();
            let mut message = error.message().to_string();
            // A duplicate key is found while parsing, before any path exists: name it from
            // the text its span points at.
            let field = path.or_else(|| {
                if error.message() != "duplicate key" {
                    return None;
                }
                let key = span.as_ref().and_then(|span| duplicate_key(text, span))?;
                message = format!("{message} `{key}`");
                Some(key)
            });
            ConfigError::Parse {
                line: span.map(|span| line_of(text, span.start)),
                field: field.filter(|f| !f.is_empty() && f != "."),
                message,
            }
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| parse_error(e, None))?;
        let file: ServicesFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            parse_error(e.into_inner(), Some(path))
        })?;
        file.validate()?;
        Ok(file)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml_str(&text)
    }

    /// Validates every service (names must be non-empty and printable).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, config) in &self.services {
            validate_service_name(name).map_err(|e| e.within("services"))?;
            config
                .validate()
                .map_err(|e| e.within(&format!("services.{name}")))?;
        }
        Ok(())
    }
}

/// The key a "duplicate key" error's span points at: the whole header for a table
/// (`[services.db]` → `services.db`), the key itself otherwise.
fn duplicate_key(text: &str, span: &std::ops::Range<usize>) -> Option<String> {
    let key = text.get(span.clone())?.trim();
    let line_start = text.get(..span.start)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?.trim();
    let header = line
        .strip_prefix("[[")
        .and_then(|l| l.split("]]").next())
        .or_else(|| line.strip_prefix('[').and_then(|l| l.split(']').next()));
    let name = header.unwrap_or(key).trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// 1-based line number of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_counts_newlines_before_offset() {
        let text = "a\nbb\nccc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 5), 3);
        assert_eq!(line_of(text, 100), 3);
    }
}
