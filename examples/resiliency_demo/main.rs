//! `cargo run --example resiliency_demo`: every resilience pattern of warden at work, one
//! scenario per pattern against a simulated dependency with seeded failures, then all of them
//! together under a brownout.
//!
//! The scenarios run on tokio's paused clock inside the actix system: a 30 s open breaker
//! passes instantly, timestamps are simulated (`t=+31.500s`), and the same `--seed` always
//! prints the same timeline. See `--help` for the flags.

mod scenarios;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use scenarios::timeline::{self, human, Style, Timeline, Tone};
use scenarios::{Report, Scenario};

/// Every resilience pattern of warden at work: retry, circuit breaker, timeout and health,
/// one scenario each against a simulated dependency with seeded failures, then all combined
/// under a brownout.
///
/// The scenarios run on a simulated clock, so a 30 s open breaker takes no time and the same
/// seed always gives the same timeline. Each line of the timeline is one event: simulated
/// time, service, event, and the service's breaker state and health after it.
#[derive(Debug, Parser)]
#[command(name = "resiliency_demo", version)]
struct Args {
    /// Run only this scenario (default: all five, in this order)
    #[arg(long, value_enum, value_name = "NAME")]
    scenario: Option<Scenario>,

    /// Seed of the simulated failures and of the supervisors' jitter; the same seed prints the
    /// same timeline
    #[arg(long, value_name = "N", default_value_t = 42)]
    seed: u64,

    /// Serve Prometheus metrics on this address while the demo runs, e.g. 127.0.0.1:9464
    /// (scrape http://ADDR/metrics)
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,

    /// After the scenarios, keep serving metrics for SECS seconds of real time so Prometheus
    /// can scrape the final values (needs --metrics-addr)
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        requires = "metrics_addr"
    )]
    linger: u64,

    /// Print one line per scenario instead of the timelines and tables
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let style = Style { colour };
    scenarios::paused_system().block_on(demo(args, style))
}

/// Starts the Prometheus exporter on `addr`. Must run before any supervisor starts: a
/// supervisor registers its metrics with the recorder installed when it starts.
fn start_exporter(addr: SocketAddr) -> Result<(), String> {
    warden::observe::serve_metrics(addr)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// Writes one line to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn say(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stdout().lock(), "{}", line.as_ref());
}

async fn demo(args: Args, style: Style) -> ExitCode {
    // The clock is paused (see `paused_system`): simulated time, while `wall` is real time.
    let wall = Instant::now();
    if let Some(addr) = args.metrics_addr {
        match start_exporter(addr) {
            Ok(()) => say(format!(
                "serving Prometheus metrics on http://{addr}/metrics"
            )),
            Err(error) => {
                eprintln!("error: cannot serve metrics on {addr}: {error}");
                return ExitCode::from(2);
            }
        }
    }

    let chosen: Vec<Scenario> = match args.scenario {
        Some(one) => vec![one],
        None => Scenario::ALL.to_vec(),
    };
    let mut reports = Vec::new();
    for (index, scenario) in chosen.iter().enumerate() {
        if !args.quiet {
            print_header(*scenario, index + 1, chosen.len(), style);
        }
        let mut timeline = Timeline::start();
        if !args.quiet {
            timeline = timeline.with_sink(move |entry| say(timeline::render(entry, style)));
        }
        let report = scenarios::run(*scenario, args.seed, &timeline).await;
        if args.quiet {
            print_quiet(&report, style);
        } else {
            print_summary(&report, style);
        }
        reports.push(report);
    }

    let simulated: Duration = reports.iter().map(|r| r.simulated).sum();
    let failed: Vec<&Report> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    say("");
    if failed.is_empty() {
        say(format!(
            "{} {} behaved as described · {} of simulated time in {} · seed {}",
            style.paint(Tone::Good, "✓"),
            match reports.len() {
                1 => "the scenario".to_string(),
                n => format!("all {n} scenarios"),
            },
            human(simulated),
            human(wall.elapsed()),
            args.seed
        ));
    } else {
        for report in &failed {
            for problem in &report.problems {
                say(format!(
                    "{} {}: {problem}",
                    style.paint(Tone::Bad, "✗"),
                    report.scenario
                ));
            }
        }
    }
    if !args.quiet {
        say(style.paint(
            Tone::Dim,
            "  try: --scenario breaker · --seed 7 · --metrics-addr 127.0.0.1:9464 · --help",
        ));
    }

    if let (Some(addr), true) = (args.metrics_addr, args.linger > 0) {
        tokio::time::resume();
        say(format!(
            "serving the final metrics on http://{addr}/metrics for {}s (Ctrl-C to stop)",
            args.linger
        ));
        tokio::time::sleep(Duration::from_secs(args.linger)).await;
    }

    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_header(scenario: Scenario, number: usize, of: usize, style: Style) {
    let title = format!(
        "━━ {number}/{of} · {} ━ {} ",
        scenario.name(),
        scenario.title()
    );
    let rule = "━".repeat(100usize.saturating_sub(title.chars().count()));
    say("");
    say(style.paint(Tone::Bold, &format!("{title}{rule}")));
    say("");
    for line in wrap(scenario.story(), 94) {
        say(format!("  {line}"));
    }
    say("");
    let setup = scenario.setup();
    let code = setup.first().is_some_and(|line| line.starts_with('.'));
    if code {
        say(format!(
            "  {}",
            style.paint(
                Tone::Dim,
                &format!("ServiceSupervisor::builder(\"{}\")", scenario.service())
            )
        ));
    }
    for line in setup {
        let indent = if code { "      " } else { "  " };
        say(format!("{indent}{}", style.paint(Tone::Dim, line)));
    }
    say("");
}

fn print_summary(report: &Report, style: Style) {
    let headers = [
        "service",
        "calls",
        "ok",
        "failed",
        "timed out",
        "refused",
        "attempts",
        "retries",
        "breaker",
        "health",
        "p95",
    ];
    let rows: Vec<Vec<String>> = report
        .services
        .iter()
        .map(|s| {
            let c = s.counts;
            vec![
                s.name.clone(),
                c.total().to_string(),
                c.success.to_string(),
                c.failure.to_string(),
                c.timeout.to_string(),
                (c.rejected_open + c.rejected_overloaded).to_string(),
                c.attempts.to_string(),
                c.retries.to_string(),
                s.breaker.to_string(),
                s.health.status.to_string(),
                s.health.stats.p95.map_or("-".to_string(), human),
            ]
        })
        .collect();
    say("");
    say(format!(
        "  {} {}",
        style.paint(Tone::Bold, "summary"),
        style.paint(
            Tone::Dim,
            &format!("({} simulated)", human(report.simulated))
        )
    ));
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        timeline::table(&headers, &rows, style)
    );
    for line in wrap(&report.lesson, 92) {
        say(format!("    {}", style.paint(Tone::Info, &line)));
    }
    for problem in &report.problems {
        say(format!(
            "    {} {problem}",
            style.paint(Tone::Bad, "✗ not as described:")
        ));
    }
}

fn print_quiet(report: &Report, style: Style) {
    let mark = if report.problems.is_empty() {
        style.paint(Tone::Good, "✓")
    } else {
        style.paint(Tone::Bad, "✗")
    };
    let totals = report.services.iter().fold((0, 0, 0), |acc, s| {
        (
            acc.0 + s.counts.total(),
            acc.1 + s.counts.success,
            acc.2 + s.counts.attempts,
        )
    });
    say(format!(
        "{mark} {:<9} {:>5} calls, {:>5} ok, {:>5} attempts · {} simulated",
        report.scenario.name(),
        totals.0,
        totals.1,
        totals.2,
        human(report.simulated)
    ));
}

/// Splits `text` into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
