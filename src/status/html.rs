//! [`render_html`]: the page, rendered on the server from a [`StatusView`] (so it is complete
//! without its script), with its CSS and script embedded. `page.js` renders the same rows from
//! `/status.json`; keep the two in step.

use std::fmt::Write as _;

use super::view::{HistoryPoint, ServiceStatus, StatusView, TransitionView};
use crate::breaker::BreakerState;
use crate::health::HealthStatus;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Sparkline size, in CSS pixels (`page.js` uses the same).
const SPARK_WIDTH: f64 = 120.0;
const SPARK_HEIGHT: f64 = 28.0;

/// The whole page for `view`: one self-contained HTML document (no external asset).
pub fn render_html(view: &StatusView) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>warden status</title><style>{CSS}</style></head>\n\
         <body data-history-len=\"{}\" data-sample-every-ms=\"{}\">\n<header><h1>warden status</h1>\
         <p id=\"summary\" role=\"status\" aria-live=\"polite\">{}</p></header>\n<main>\n",
        view.history_len,
        view.sample_every_ms.unwrap_or(0),
        summary(view),
    );
    let _ = write!(
        html,
        "<div class=\"scroll\"><table id=\"services\"><caption>Dependencies: breaker, health and latency over each \
         supervisor's window; history of the {}</caption>\n<thead><tr>\
         <th scope=\"col\">Service</th><th scope=\"col\">Breaker</th><th scope=\"col\">Health</th>\
         <th scope=\"col\">Success rate</th><th scope=\"col\">p50 / p95 / p99</th>\
         <th scope=\"col\">Calls/s</th><th scope=\"col\">In flight / limit</th>\
         <th scope=\"col\">History: success rate, p95</th><th scope=\"col\">Last transition</th>\
         </tr></thead>\n<tbody>",
        history_span(view)
    );
    if view.services.is_empty() {
        html.push_str("<tr><td colspan=\"9\">No service registered.</td></tr>");
    }
    for service in &view.services {
        row(&mut html, service, view.history_len);
    }
    html.push_str("</tbody></table></div>\n");
    keyed(&mut html, view);
    html.push_str(
        "<section aria-labelledby=\"transitions-title\">\
         <h2 id=\"transitions-title\">Recent breaker transitions</h2>\
         <table id=\"transitions\"><thead><tr><th scope=\"col\">Time (UTC)</th>\
         <th scope=\"col\">Service</th><th scope=\"col\">Change</th><th scope=\"col\">Reason</th>\
         <th scope=\"col\">Breaker window</th></tr></thead>\n<tbody>",
    );
    let mut all: Vec<(&str, &TransitionView)> = view
        .services
        .iter()
        .flat_map(|s| s.transitions.iter().map(move |t| (s.name.as_str(), t)))
        .collect();
    all.sort_by_key(|(_, t)| std::cmp::Reverse(t.at_unix_ms));
    if all.is_empty() {
        html.push_str("<tr><td colspan=\"5\">No transition yet.</td></tr>");
    }
    for (service, transition) in all {
        let window = &transition.window;
        let _ = write!(
            html,
            "<tr><td><time>{}</time></td><th scope=\"row\">{}</th><td>{}</td><td>{}</td>\
             <td>{}, {} failed, {} in a row</td></tr>",
            clock(transition.at_unix_ms),
            escape(service),
            change(transition),
            escape(&transition.summary),
            count(window.calls as usize, "call", "calls"),
            window.failures,
            window.consecutive_failures,
        );
    }
    let _ = write!(
        html,
        "</tbody></table></section>\n</main>\n<footer><p>Read-only. Shows states, counts, rates, \
         latencies and the breaker's reasons; never an operation's error. JSON: \
         <a href=\"status.json\">status.json</a>, readiness: <a href=\"health\">health</a>, \
         Prometheus: <a href=\"metrics\">metrics</a>.</p><noscript><p>Scripts are off: reload \
         the page to refresh it.</p></noscript></footer>\n<script>{SCRIPT}</script>\n</body></html>\n"
    );
    html
}

/// One table per keyed service: its keys, the open ones, and its top keys.
fn keyed(html: &mut String, view: &StatusView) {
    for service in &view.keyed {
        let _ = write!(
            html,
            "<section class=\"keyed\"><h2>{}: {} of {} keys, {} open</h2>\
             <table><thead><tr><th scope=\"col\">Key</th><th scope=\"col\">Breaker</th>\
             <th scope=\"col\">Succeeded</th><th scope=\"col\">Failed</th>\
             <th scope=\"col\">Refused</th></tr></thead>\n<tbody>",
            escape(&service.service),
            service.keys,
            service.max_keys,
            service.open_keys,
        );
        if service.top.is_empty() {
            html.push_str("<tr><td colspan=\"5\">No key yet.</td></tr>");
        }
        for key in &service.top {
            let _ = write!(
                html,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&key.key),
                breaker_badge(key.state),
                key.success,
                key.failure,
                key.rejected,
            );
        }
        let [success, failure, rejected] = service.other;
        let _ = writeln!(
            html,
            "<tr><th scope=\"row\">other keys and overflow</th><td>{}</td><td>{success}</td>\
             <td>{failure}</td><td>{rejected}</td></tr></tbody></table></section>",
            breaker_badge(service.overflow_state),
        );
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary(view: &StatusView) -> String {
    let open = view
        .services
        .iter()
        .filter(|s| s.breaker != BreakerState::Closed)
        .count();
    format!(
        "{} · {} · {} · updated <time>{}</time> UTC",
        if view.ready { "Ready" } else { "NOT READY" },
        count(view.services.len(), "service", "services"),
        count(open, "breaker not closed", "breakers not closed"),
        clock(view.generated_at_unix_ms)
    )
}

/// "last 5 min" or "last 60 samples".
fn history_span(view: &StatusView) -> String {
    match view.sample_every_ms {
        Some(every) if every > 0 => {
            let seconds = every * view.history_len as u64 / 1000;
            if seconds >= 120 {
                format!("last {} min", seconds / 60)
            } else {
                format!("last {seconds} s")
            }
        }
        _ => format!("last {} samples", view.history_len),
    }
}

fn row(html: &mut String, service: &ServiceStatus, capacity: usize) {
    let name = escape(&service.name);
    let _ = write!(
        html,
        "\n<tr data-service=\"{name}\" data-breaker=\"{}\" data-health=\"{}\"><th scope=\"row\">{name}{}{}</th>",
        service.breaker.as_str(),
        service.health.as_str(),
        if service.critical {
            " <small class=\"tag\">critical</small>"
        } else {
            ""
        },
        observing(service),
    );
    let mut probe = match service.retry_after_ms {
        Some(ms) => format!("<br><small>probe in {}</small>", seconds(ms as f64)),
        None => String::new(),
    };
    if let Some(fleet) = service.fleet {
        // A fleet replica: say which of its parts decide on their own share (store away).
        let local: Vec<&str> = [
            ("quota", fleet.quota_shared),
            ("budget", fleet.budget_shared),
        ]
        .into_iter()
        .filter(|(_, shared)| *shared == Some(false))
        .map(|(part, _)| part)
        .collect();
        probe.push_str(&if local.is_empty() {
            "<br><small class=\"tag\">fleet: shared</small>".to_string()
        } else {
            format!(
                "<br><small class=\"tag\">fleet store away: {} on the local share</small>",
                local.join(", ")
            )
        });
    }
    let _ = write!(
        html,
        "<td>{}{probe}</td><td>{}</td>",
        breaker_badge(service.breaker),
        health_badge(service.health)
    );
    let _ = write!(
        html,
        "<td class=\"num\">{}<br><small>{} of {} failed</small></td>\
         <td class=\"num\">{} / {} / {}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{} / {}</td>",
        percent(service.success_rate),
        service.window_failures,
        service.window_calls,
        millis(service.p50_ms),
        millis(service.p95_ms),
        millis(service.p99_ms),
        rate(service.calls_per_sec),
        service.in_flight,
        match service.observed_limit {
            Some(observed) => format!(
                "{}<br><small>limit {observed} observed</small>",
                service.limit
            ),
            None => service.limit.to_string(),
        },
    );
    let _ = write!(
        html,
        "<td class=\"spark\">{}{}</td><td>{}</td></tr>",
        sparkline(&service.history, capacity, Series::SuccessRate),
        sparkline(&service.history, capacity, Series::P95),
        match service.transitions.first() {
            Some(last) => format!(
                "{}<br><small>{} · <time>{}</time></small>",
                change(last),
                escape(&last.summary),
                clock(last.at_unix_ms)
            ),
            None => "—".to_string(),
        }
    );
}

/// For a service with policies that only observe: which, and what they would have refused.
fn observing(service: &ServiceStatus) -> String {
    if service.observing.is_empty() {
        return String::new();
    }
    let totals = &service.totals;
    let reasons: Vec<String> = [
        ("open", totals.would_reject_open),
        ("throttled", totals.would_reject_throttled),
        ("rate limited", totals.would_reject_rate_limited),
        ("overloaded", totals.would_reject_overloaded),
    ]
    .into_iter()
    .filter(|(_, calls)| *calls > 0)
    .map(|(reason, calls)| format!("{calls} {reason}"))
    .collect();
    format!(
        " <small class=\"tag\">observe: {}</small><br><small>would have refused {}{}</small>",
        service.observing.join(", ").replace('_', " "),
        totals.would_reject(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    )
}

fn breaker_badge(state: BreakerState) -> String {
    let symbol = match state {
        BreakerState::Closed => "●",
        BreakerState::HalfOpen => "◐",
        BreakerState::Open | BreakerState::ForcedOpen => "○",
        BreakerState::Disabled => "–",
    };
    format!(
        "<span class=\"badge b-{0}\"><span aria-hidden=\"true\">{symbol}</span> {1}</span>",
        state.as_str(),
        state.as_str().replace('_', " ")
    )
}

fn health_badge(status: HealthStatus) -> String {
    let symbol = match status {
        HealthStatus::Healthy => "✔",
        HealthStatus::Degraded => "▲",
        HealthStatus::Unhealthy => "✖",
    };
    format!(
        "<span class=\"badge h-{0}\"><span aria-hidden=\"true\">{symbol}</span> {0}</span>",
        status.as_str()
    )
}

fn change(transition: &TransitionView) -> String {
    format!(
        "{} → {}",
        transition.from.as_str().replace('_', " "),
        transition.to.as_str().replace('_', " ")
    )
}

#[derive(Clone, Copy)]
enum Series {
    SuccessRate,
    P95,
}

/// An inline SVG line of the last `capacity` samples, newest at the right; gaps where a
/// sample had no value.
fn sparkline(history: &[HistoryPoint], capacity: usize, series: Series) -> String {
    let values: Vec<Option<f64>> = history
        .iter()
        .map(|point| match series {
            Series::SuccessRate => point.success_rate,
            Series::P95 => point.p95_ms,
        })
        .collect();
    let max = match series {
        Series::SuccessRate => 1.0,
        Series::P95 => values.iter().flatten().fold(1.0_f64, |a, &b| a.max(b)),
    };
    let slots = capacity.max(2) - 1;
    let offset = capacity.saturating_sub(values.len());
    let mut path = String::new();
    let mut pen_down = false;
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(value) => {
                let x = (offset + i) as f64 * SPARK_WIDTH / slots as f64;
                let y = 1.0 + (1.0 - (value / max).clamp(0.0, 1.0)) * (SPARK_HEIGHT - 2.0);
                // A segment starts with a zero-length line: its round cap shows a lone point.
                let _ = match pen_down {
                    true => write!(path, "L{x:.1} {y:.1} "),
                    false => write!(path, "M{x:.1} {y:.1} h0 "),
                };
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let last = values.iter().rev().flatten().next().copied();
    let (class, label) = match series {
        Series::SuccessRate => ("ok", format!("success rate, now {}", percent(last))),
        Series::P95 => (
            "p95",
            format!("p95, now {} (max {})", millis(last), millis(Some(max))),
        ),
    };
    format!(
        "<svg class=\"{class}\" width=\"{SPARK_WIDTH}\" height=\"{SPARK_HEIGHT}\" \
         viewBox=\"0 0 {SPARK_WIDTH} {SPARK_HEIGHT}\" role=\"img\" aria-label=\"{label}\">\
         <title>{label}</title><path d=\"{}\"/></svg>",
        path.trim_end()
    )
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_string(), |rate| format!("{:.1}%", rate * 100.0))
}

fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "—".to_string(),
        Some(ms) if ms >= 1000.0 => seconds(ms),
        Some(ms) if ms >= 10.0 => format!("{ms:.0} ms"),
        Some(ms) if ms >= 1.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{:.0} µs", ms * 1000.0),
    }
}

fn seconds(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

fn rate(per_sec: Option<f64>) -> String {
    per_sec.map_or_else(|| "—".to_string(), |rate| format!("{rate:.1}"))
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
fn clock(unix_ms: u64) -> String {
    let secs = unix_ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock((86_400 + 3_661) * 1000 + 999), "01:01:01");
    }

    #[test]
    fn sparkline_breaks_at_gaps_and_aligns_right() {
        let point = |rate| HistoryPoint {
            at_unix_ms: 0,
            success_rate: rate,
            p95_ms: None,
            calls_per_sec: None,
        };
        let svg = sparkline(
            &[point(Some(1.0)), point(None), point(Some(0.0))],
            5,
            Series::SuccessRate,
        );
        assert!(svg.contains("d=\"M60.0 1.0 h0 M120.0 27.0 h0\""), "{svg}");
    }
}
