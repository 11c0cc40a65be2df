//! `cargo run --example http_dependency`: a real HTTP dependency on loopback, called with
//! `reqwest` through a warden supervisor, while the server switches between healthy, a client
//! error (404), failing with 503, rate-limiting with 429 + `Retry-After`, slow, and down
//! (connection refused). The classifier decides what is retried and what counts against the
//! breaker; the timeline shows each attempt, and the server counts what really reached it.
//!
//! Real sockets, real time: the whole run takes a few seconds.

mod app;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use app::timeline::{self, human, Style, Timeline, Tone};
use app::{FaultyServer, ItemsClient, Mode, Timings};
use warden::ServiceSupervisor;

fn say(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stdout().lock(), "{}", line.as_ref());
}

/// One step of the tour: a server mode, the calls made in it, and what it shows.
struct Phase {
    mode: Mode,
    paths: &'static [&'static str],
    shows: &'static str,
}

#[actix::main]
async fn main() -> ExitCode {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let style = Style { colour };
    match run(style).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(style: Style) -> Result<(), Box<dyn std::error::Error>> {
    let server = FaultyServer::start().await?;
    let timings = Timings {
        timeout: Duration::from_millis(300),
        backoff: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        open_for: Duration::from_secs(2),
    };
    let handle = ServiceSupervisor::builder("items-api")
        .config(app::supervisor_config(timings))
        .start()?;
    let timeline = Timeline::start().with_sink(move |entry| say(timeline::render(entry, style)));
    timeline.follow(&handle).await;
    let client = ItemsClient::new(server.url(""), handle.clone(), timeline.clone());

    say("");
    say(style.paint(
        Tone::Bold,
        &format!(
            "━━ http_dependency ━ items-api on http://{} through a supervisor ━━━━━━━━━━━━━━━━━━━━━━",
            server.addr()
        ),
    ));
    say("");
    for line in [
        "timeout 300ms · 3 attempts, exponential backoff from 100ms (a server hint up to 2s wins)",
        "breaker: 5 failures in a row, open 2s · classifier: 429/503 + hint → retry after the",
        "hint · other 5xx, connection refused → retry · other 4xx → ignored (not retried)",
    ] {
        say(format!("  {}", style.paint(Tone::Dim, line)));
    }
    say("");

    let phases = [
        Phase {
            mode: Mode::Healthy,
            paths: &["/items/1"],
            shows: "one request, one answer",
        },
        Phase {
            mode: Mode::Healthy,
            paths: &["/items/unknown"],
            shows: "404: the caller's mistake, not retried",
        },
        Phase {
            mode: Mode::Failing(503),
            paths: &["/items/2"],
            shows: "503: retried, 3 attempts, then given up",
        },
        Phase {
            mode: Mode::RateLimited {
                every: Duration::from_secs(1),
            },
            paths: &["/items/3"],
            shows: "429: retried after its Retry-After",
        },
        Phase {
            mode: Mode::Slow(Duration::from_secs(1)),
            paths: &["/items/4"],
            shows: "each attempt cut off at 300ms",
        },
        Phase {
            mode: Mode::Healthy,
            paths: &["/items/5"],
            shows: "a success resets the failure count",
        },
        Phase {
            mode: Mode::Down,
            paths: &["/items/6", "/items/7", "/items/8"],
            shows: "refused: breaker opens, stops calling",
        },
    ];

    let mut rows = Vec::new();
    for phase in &phases {
        if phase.mode != server.mode() || rows.is_empty() {
            server.set_mode(phase.mode).await?;
            timeline.note("server", "mode", phase.mode.to_string());
        }
        server.take_requests();
        let mut answers = Vec::new();
        for path in phase.paths {
            answers.push(client.get(path).await.answer);
        }
        rows.push(row(
            phase.mode,
            phase.paths,
            &answers,
            server.take_requests(),
            phase.shows,
        ));
    }

    // Recovery: the server comes back; the breaker lets one probe through when its open
    // period is over, and closes when the probe succeeds.
    server.set_mode(Mode::Healthy).await?;
    timeline.note("server", "mode", "healthy again");
    let status = handle.breaker_status().await?;
    if let Some(wait) = status.retry_after {
        timeline.note(
            "items-api",
            "wait",
            format!("the breaker lets a probe through in {}", human(wait)),
        );
        tokio::time::sleep(wait).await;
    }
    let probe = client.get("/items/9").await.answer;
    let after = client.get("/items/10").await.answer;
    rows.push(row(
        Mode::Healthy,
        &["/items/9", "/items/10"],
        &[probe, after],
        server.take_requests(),
        "probe succeeds, breaker closes",
    ));

    say("");
    say(format!(
        "  {}",
        style.paint(Tone::Bold, "what reached the server")
    ));
    let headers = ["server mode", "calls", "answers", "requests", "shows"];
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        timeline::table(&headers, &rows, style)
    );
    let counts = handle.counts().await?;
    let requests: u32 = rows
        .iter()
        .filter_map(|row| row[3].parse::<u32>().ok())
        .sum();
    say(format!(
        "    {}",
        style.paint(
            Tone::Info,
            &format!(
                "{} calls made {} attempts; {} requests reached the server (the others found \
                 no listener).",
                counts.total(),
                counts.attempts,
                requests
            )
        )
    ));
    Ok(())
}

fn row(
    mode: Mode,
    paths: &[&str],
    answers: &[timeline::Answer],
    requests: u32,
    shows: &str,
) -> Vec<String> {
    let mode = match mode {
        Mode::Healthy => "healthy".to_string(),
        Mode::Slow(delay) => format!("slow ({})", human(delay)),
        Mode::Failing(code) => format!("failing ({code})"),
        Mode::RateLimited { .. } => "rate-limited (429)".to_string(),
        Mode::Down => "down".to_string(),
        Mode::Brownout {
            failing_per_mille, ..
        } => format!("brownout ({failing_per_mille}‰ 503)"),
    };
    let answers: Vec<&str> = answers
        .iter()
        .map(|answer| match answer.error_kind() {
            None => "ok",
            Some(timeline::ErrorKind::Failed) => "failed",
            Some(timeline::ErrorKind::RetriesExhausted) => "exhausted",
            Some(timeline::ErrorKind::TimedOut) => "timed out",
            Some(timeline::ErrorKind::Open) => "refused",
            Some(timeline::ErrorKind::RetryRefused) => "retry refused",
            Some(timeline::ErrorKind::RetryDeferred) => "deferred",
            Some(_) => "error",
        })
        .collect();
    vec![
        mode,
        paths.len().to_string(),
        answers.join(", "),
        requests.to_string(),
        shows.to_string(),
    ]
}
