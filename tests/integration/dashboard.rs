//! Every expression of the Grafana dashboard names only metrics the crate exports.

use std::collections::BTreeSet;

use warden::observe::METRIC_FAMILIES;

/// Collects every `expr` and template `query` string in the dashboard JSON.
fn expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => expressions(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

/// Metric names in a PromQL expression: identifiers starting with `warden_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("warden_") {
        let start = i + pos;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |n| start + n);
        if boundary {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

#[test]
fn every_dashboard_expression_names_an_exported_metric() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/warden.json"
    ))
    .expect("dashboard present");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "{exprs:?}");

    let families: BTreeSet<&str> = METRIC_FAMILIES.iter().map(|(name, _)| *name).collect();
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "expression names no warden metric: {expr}"
        );
        for name in names {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|f| families.contains(f)))
                .unwrap_or(&name)
                .to_string();
            assert!(
                families.contains(family.as_str()),
                "{name} in `{expr}` is not exported"
            );
            used.insert(family);
        }
    }
    // The dashboard covers every family.
    let unused: Vec<_> = families.iter().filter(|f| !used.contains(**f)).collect();
    assert!(unused.is_empty(), "families without a panel: {unused:?}");
}

#[test]
fn metric_name_extraction() {
    assert_eq!(
        metric_names("histogram_quantile(0.5, sum by (le) (rate(warden_call_duration_seconds_bucket[5m]))) / xwarden_no"),
        ["warden_call_duration_seconds_bucket"]
    );
}
