//! [`KeyedConfig`]: how many keys a keyed service keeps, for how long, and how many of them may
//! be open at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The bounds of a keyed service (see [`keyed`](crate::keyed)). In TOML, a
/// `[services.NAME.keyed]` table:
///
/// ```toml
/// [services.hosts.keyed]
/// max_keys = 1000          # live keys at most; a new key beyond them shares the overflow
/// idle_after = "5m"        # a key without calls this long is dropped
/// max_open_share = 0.5     # at most half the keys open at once (at least one)
/// labeled_keys = 32        # keys with their own metric series; the rest are key="_other"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyedConfig {
    /// Keys with a supervisor of their own, at most. A new key when all are taken (and none is
    /// idle) runs under the shared overflow supervisor. At least 1; default 1 024.
    pub max_keys: u32,
    /// A key with no call in flight and none started for this long is dropped with its state
    /// (breaker, health window, limits) and its metric series. At least 1 ms; default 5 min.
    #[serde(with = "humantime_serde")]
    pub idle_after: Duration,
    /// Share of the live keys whose breaker may be open at once (Envoy's
    /// `max_ejection_percent`): a key that would trip beyond it stays closed, so a client never
    /// ejects all of its hosts. One key may always open. In `(0, 1]`; default 0.5.
    pub max_open_share: f64,
    /// Keys with their own per-key metric series (`warden_key_*{key="…"}`), at most; the others
    /// are summed under `key="_other"`. Default 32 (0: every key under `_other`); only live
    /// keys can be labeled, so never more than `max_keys`.
    pub labeled_keys: u32,
}

impl Default for KeyedConfig {
    fn default() -> Self {
        KeyedConfig {
            max_keys: 1024,
            idle_after: Duration::from_secs(300),
            max_open_share: 0.5,
            labeled_keys: 32,
        }
    }
}

impl KeyedConfig {
    /// At most `max_keys` live keys.
    pub fn max_keys(mut self, max_keys: u32) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Keys idle this long are dropped.
    pub fn idle_after(mut self, idle_after: Duration) -> Self {
        self.idle_after = idle_after;
        self
    }

    /// At most this share of the keys open at once.
    pub fn max_open_share(mut self, share: f64) -> Self {
        self.max_open_share = share;
        self
    }

    /// At most this many keys with their own metric series.
    pub fn labeled_keys(mut self, keys: u32) -> Self {
        self.labeled_keys = keys;
        self
    }

    /// How many of `live` keys may be open at once: the share, rounded down, and at least one.
    pub fn open_cap(&self, live: usize) -> usize {
        ((live as f64 * self.max_open_share).floor() as usize).max(1)
    }

    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_keys == 0 {
            return Err(ConfigError::invalid(
                "max_keys",
                "must be greater than zero",
            ));
        }
        if self.idle_after < Duration::from_millis(1) {
            return Err(ConfigError::invalid("idle_after", "must be at least 1ms"));
        }
        if !(self.max_open_share > 0.0 && self.max_open_share <= 1.0) {
            return Err(ConfigError::invalid(
                "max_open_share",
                "must be greater than 0 and at most 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_bad_field_is_named() {
        assert_eq!(KeyedConfig::default().validate(), Ok(()));
        let field = |config: KeyedConfig| config.validate().unwrap_err().field().map(String::from);
        let base = KeyedConfig::default;
        assert_eq!(field(base().max_keys(0)).as_deref(), Some("max_keys"));
        assert_eq!(
            field(base().idle_after(Duration::ZERO)).as_deref(),
            Some("idle_after")
        );
        for share in [0.0, -0.5, 1.5, f64::NAN] {
            assert_eq!(
                field(base().max_open_share(share)).as_deref(),
                Some("max_open_share")
            );
        }
        assert_eq!(base().max_keys(4).labeled_keys(5).validate(), Ok(()));
    }

    #[test]
    fn one_key_may_always_open() {
        let config = KeyedConfig::default().max_open_share(0.5);
        assert_eq!(config.open_cap(0), 1);
        assert_eq!(config.open_cap(1), 1);
        assert_eq!(config.open_cap(10), 5);
        assert_eq!(config.open_cap(11), 5);
        assert_eq!(KeyedConfig::default().max_open_share(1.0).open_cap(7), 7);
    }

    #[test]
    fn reads_from_toml() {
        let config: KeyedConfig =
            toml::from_str("max_keys = 10\nidle_after = \"30s\"\nlabeled_keys = 2").unwrap();
        assert_eq!(config.max_keys, 10);
        assert_eq!(config.idle_after, Duration::from_secs(30));
        assert_eq!(config.labeled_keys, 2);
        assert!(toml::from_str::<KeyedConfig>("max_key = 3").is_err());
    }
}
