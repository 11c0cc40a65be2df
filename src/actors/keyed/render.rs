//! The per-key series of keyed services (`warden_key_calls_total`, `warden_key_open`) in the
//! Prometheus text format.
//!
//! They are rendered here from the live table, not recorded through the `metrics` recorder,
//! because a key's series must disappear with the key when it is dropped, which a series
//! registered with the recorder does not: warden's `/metrics` routes append this text to the
//! recorder's output.

use std::fmt::Write as _;

use super::KeyedHandle;
use crate::breaker::BreakerState;
use crate::observe::{
    KEY_CALLS_TOTAL, KEY_OPEN, LABEL_KEY, LABEL_OUTCOME, LABEL_SERVICE, METRIC_FAMILIES, OTHER_KEYS,
};

impl KeyedHandle {
    /// Appends this service's per-key series (`warden_key_*`, see
    /// [`KEY_CALLS_TOTAL`](crate::observe::KEY_CALLS_TOTAL)) to `out` in the Prometheus text
    /// format, without their `# HELP`/`# TYPE` lines ([`render_key_series`] writes those).
    fn render_series(&self, calls: &mut String, open: &mut String) {
        let inner = &self.inner;
        let service = escape(&inner.name);
        let mut write_calls = |key: &str, counts: [u64; 3]| {
            for (outcome, n) in ["success", "failure", "rejected"].iter().zip(counts) {
                let _ = writeln!(
                    calls,
                    "{KEY_CALLS_TOTAL}{{{LABEL_SERVICE}=\"{service}\",{LABEL_KEY}=\"{}\",\
                     {LABEL_OUTCOME}=\"{outcome}\"}} {n}",
                    escape(key)
                );
            }
        };
        let table = inner.read_table();
        for (key, entry) in table.iter().filter(|(_, entry)| entry.labeled) {
            write_calls(key, entry.value.counts.get());
            let is_open = entry.value.state() != BreakerState::Closed
                && entry.value.state() != BreakerState::Disabled;
            let _ = writeln!(
                open,
                "{KEY_OPEN}{{{LABEL_SERVICE}=\"{service}\",{LABEL_KEY}=\"{}\"}} {}",
                escape(key),
                u8::from(is_open)
            );
        }
        write_calls(OTHER_KEYS, inner.other_counts(&table));
    }
}

/// The `# HELP`/`# TYPE` lines and the per-key series of `services`, in the Prometheus text
/// format: what warden's `/metrics` routes append to the recorder's output.
pub fn render_key_series(services: &[KeyedHandle]) -> String {
    let (mut calls, mut open) = (String::new(), String::new());
    for service in services {
        service.render_series(&mut calls, &mut open);
    }
    let mut out = String::new();
    if services.is_empty() {
        return out;
    }
    let help = |name: &str| {
        METRIC_FAMILIES
            .iter()
            .find(|(family, _)| *family == name)
            .map_or("", |(_, help)| help)
    };
    let _ = writeln!(out, "# HELP {KEY_CALLS_TOTAL} {}", help(KEY_CALLS_TOTAL));
    let _ = writeln!(out, "# TYPE {KEY_CALLS_TOTAL} counter");
    out.push_str(&calls);
    if !open.is_empty() {
        let _ = writeln!(out, "# HELP {KEY_OPEN} {}", help(KEY_OPEN));
        let _ = writeln!(out, "# TYPE {KEY_OPEN} gauge");
        out.push_str(&open);
    }
    out
}

/// A label value in the Prometheus text format.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
