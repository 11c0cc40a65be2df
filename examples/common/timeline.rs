//! A timeline of what happened to supervised dependencies, one entry per event, shared by the
//! examples (`resiliency_demo`, `http_dependency`) and their integration tests.
//!
//! Entries come from two sides: the supervisors' own [`SupervisorEvent`]s (breaker transitions,
//! health changes, retries, timeouts, budget refusals), received by a small collector actor, and
//! what the program itself observes (an attempt reaching the dependency, a call's answer, a
//! health query, a narrative note). Every entry carries the time since the timeline started
//! and the service's breaker state and health at that moment.

// Each example and test uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::prelude::*;
use warden::breaker::{BreakerState, TransitionReason};
use warden::health::{HealthSnapshot, HealthStats, HealthStatus};
use warden::messages::{CallCounts, EventKind, SupervisorEvent};
use warden::{CallError, ServiceHandle};

/// What one timeline entry reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A supervisor event: breaker transition, health change, retry, timeout, budget refusal.
    Supervisor(EventKind),
    /// One attempt of a call reached the dependency and finished.
    Attempt {
        /// The call's number.
        call: u32,
        /// 1 = first attempt.
        attempt: u32,
        /// Whether the dependency answered successfully.
        ok: bool,
        /// What the dependency answered, e.g. `connection reset` or `GET /items/7 → 503`.
        detail: String,
        /// How long the attempt took.
        took: Duration,
    },
    /// An attempt was still running when its future was dropped (the timeout cancelled it).
    Cancelled {
        /// The call's number.
        call: u32,
        /// The attempt's number.
        attempt: u32,
        /// How long it had run.
        after: Duration,
    },
    /// A call got its answer from the supervisor.
    Answered {
        /// The call's number.
        call: u32,
        /// The answer.
        answer: Answer,
    },
    /// A health query's answer.
    Health(HealthSnapshot),
    /// A narrative line: a phase begins, a fault is injected, a server changes mode.
    Note {
        /// Short label for the event column, e.g. `fault`, `phase`, `server`.
        label: &'static str,
        /// The text.
        text: String,
    },
    /// Traffic over the last period, from the supervisor's call counts.
    Traffic {
        /// Length of the period.
        period: Duration,
        /// What the supervisor answered during it.
        counts: CallCounts,
    },
}

/// How a call ended, as the caller saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A value.
    Ok {
        /// Attempts that reached the dependency.
        attempts: u32,
        /// Time from sending the call to its answer.
        took: Duration,
    },
    /// A value served by the call's fallback in place of an error.
    Fallback {
        /// Attempts that reached the dependency.
        attempts: u32,
        /// Time from sending the call to its answer.
        took: Duration,
        /// The error the fallback answered.
        instead_of: String,
    },
    /// A [`CallError`].
    Err {
        /// Which [`CallError`] variant.
        kind: ErrorKind,
        /// Attempts that reached the dependency (0 when refused up front).
        attempts: u32,
        /// Time from sending the call to its answer.
        took: Duration,
        /// The error's message.
        message: String,
    },
}

/// The variants of [`CallError`], without their payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// [`CallError::Open`].
    Open,
    /// [`CallError::TimedOut`].
    TimedOut,
    /// [`CallError::DeadlineExceeded`].
    DeadlineExceeded,
    /// [`CallError::Failed`].
    Failed,
    /// [`CallError::RetriesExhausted`].
    RetriesExhausted,
    /// [`CallError::BudgetExhausted`].
    BudgetExhausted,
    /// [`CallError::RetryRefused`]: attempts ran, then the breaker refused the retry.
    RetryRefused,
    /// [`CallError::RetryDeferred`]: the dependency asked to wait longer than `max_delay`.
    RetryDeferred,
    /// [`CallError::Overloaded`].
    Overloaded,
    /// [`CallError::Panicked`].
    Panicked,
    /// [`CallError::SupervisorGone`] (or any variant added later).
    Gone,
}

impl Answer {
    /// The answer for `result`; `attempts` is what the dependency saw, `took` the call's time.
    pub fn of<T, E: std::fmt::Display>(
        result: &Result<T, CallError<E>>,
        attempts: u32,
        took: Duration,
    ) -> Answer {
        let error = match result {
            Ok(_) => return Answer::Ok { attempts, took },
            Err(error) => error,
        };
        let kind = match error {
            CallError::Open { .. } => ErrorKind::Open,
            CallError::TimedOut { .. } => ErrorKind::TimedOut,
            CallError::DeadlineExceeded { .. } => ErrorKind::DeadlineExceeded,
            CallError::Failed { .. } => ErrorKind::Failed,
            CallError::RetriesExhausted { .. } => ErrorKind::RetriesExhausted,
            CallError::BudgetExhausted { .. } => ErrorKind::BudgetExhausted,
            CallError::RetryRefused { .. } => ErrorKind::RetryRefused,
            CallError::RetryDeferred { .. } => ErrorKind::RetryDeferred,
            CallError::Overloaded => ErrorKind::Overloaded,
            CallError::Panicked { .. } => ErrorKind::Panicked,
            _ => ErrorKind::Gone,
        };
        let message = match error {
            CallError::Open {
                retry_after: Some(after),
            } => format!("breaker open, next probe in {}", human(*after)),
            other => other.to_string(),
        };
        Answer::Err {
            kind,
            attempts,
            took,
            message,
        }
    }

    /// True for a value.
    pub fn is_ok(&self) -> bool {
        matches!(self, Answer::Ok { .. })
    }

    /// The error kind, for an error.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Answer::Ok { .. } | Answer::Fallback { .. } => None,
            Answer::Err { kind, .. } => Some(*kind),
        }
    }

    /// Attempts that reached the dependency.
    pub fn attempts(&self) -> u32 {
        match self {
            Answer::Ok { attempts, .. }
            | Answer::Fallback { attempts, .. }
            | Answer::Err { attempts, .. } => *attempts,
        }
    }
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Time since the timeline started (simulated time when the clock is paused).
    pub at: Duration,
    /// The service (dependency) the event is about.
    pub service: Arc<str>,
    /// What happened.
    pub event: Event,
    /// The service's breaker state after the event, when it is a supervised service.
    pub breaker: Option<BreakerState>,
    /// The service's health after the event, when it is a supervised service.
    pub health: Option<HealthStatus>,
    /// Whether the entry is printed (detail entries are recorded but not printed when the
    /// timeline is not verbose).
    pub shown: bool,
}

impl Entry {
    /// The supervisor event, if the entry is one.
    pub fn supervisor(&self) -> Option<&EventKind> {
        match &self.event {
            Event::Supervisor(kind) => Some(kind),
            _ => None,
        }
    }

    /// `(from, to, reason)` when the entry is a breaker transition.
    pub fn transition(&self) -> Option<(BreakerState, BreakerState, TransitionReason)> {
        match self.supervisor()? {
            EventKind::StateChanged(t) => Some((t.from, t.to, t.reason)),
            _ => None,
        }
    }

    /// `(from, to)` when the entry is a health change.
    pub fn health_change(&self) -> Option<(HealthStatus, HealthStatus)> {
        match self.supervisor()? {
            EventKind::HealthChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        }
    }

    /// `(call, answer)` when the entry is a call's answer.
    pub fn answer(&self) -> Option<(u32, &Answer)> {
        match &self.event {
            Event::Answered { call, answer } => Some((*call, answer)),
            _ => None,
        }
    }
}

type Sink = Box<dyn FnMut(&Entry) + Send>;

struct Inner {
    origin: std::time::Instant,
    tokio_origin: tokio::time::Instant,
    entries: Vec<Entry>,
    states: BTreeMap<Arc<str>, (BreakerState, HealthStatus)>,
    verbose: bool,
    sink: Option<Sink>,
}

impl Inner {
    fn push(&mut self, at: Duration, service: Arc<str>, event: Event) {
        let state = self.states.get(&service).copied();
        let state = match &event {
            Event::Supervisor(EventKind::StateChanged(t)) => {
                let health = state.map_or(HealthStatus::Healthy, |s| s.1);
                Some((t.to, health))
            }
            Event::Supervisor(EventKind::HealthChanged { to, .. }) => {
                let breaker = state.map_or(BreakerState::Closed, |s| s.0);
                Some((breaker, *to))
            }
            Event::Supervisor(_) => {
                Some(state.unwrap_or((BreakerState::Closed, HealthStatus::Healthy)))
            }
            _ => state,
        };
        if let Some(state) = state {
            self.states.insert(Arc::clone(&service), state);
        }
        let entry = Entry {
            at,
            service,
            shown: self.verbose || is_headline(&event),
            event,
            breaker: state.map(|s| s.0),
            health: state.map(|s| s.1),
        };
        if entry.shown {
            if let Some(sink) = self.sink.as_mut() {
                sink(&entry);
            }
        }
        self.entries.push(entry);
    }
}

/// Entries printed even when the timeline is not verbose.
fn is_headline(event: &Event) -> bool {
    match event {
        Event::Supervisor(kind) => matches!(
            kind,
            EventKind::StateChanged(_) | EventKind::HealthChanged { .. }
        ),
        Event::Health(_) | Event::Note { .. } | Event::Traffic { .. } => true,
        Event::Attempt { .. } | Event::Cancelled { .. } | Event::Answered { .. } => false,
    }
}

/// Records entries; cheap to clone, shared with the collector actor and the operations.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Mutex<Inner>>,
    collector: Addr<Collector>,
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline").finish_non_exhaustive()
    }
}

impl Timeline {
    /// A timeline starting now, with its collector actor on the current arbiter. Must be
    /// called inside an actix system.
    pub fn start() -> Timeline {
        let now = tokio::time::Instant::now();
        let inner = Arc::new(Mutex::new(Inner {
            origin: now.into_std(),
            tokio_origin: now,
            entries: Vec::new(),
            states: BTreeMap::new(),
            verbose: true,
            sink: None,
        }));
        let collector = Collector {
            inner: Arc::clone(&inner),
        }
        .start();
        Timeline { inner, collector }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `sink` with every shown entry, as it is recorded.
    pub fn with_sink(self, sink: impl FnMut(&Entry) + Send + 'static) -> Self {
        self.lock().sink = Some(Box::new(sink));
        self
    }

    /// Verbose (the default): every entry is shown. Otherwise attempts, answers, retries and
    /// timeouts are recorded but not shown; [`Event::Traffic`] lines summarize them.
    pub fn set_verbose(&self, verbose: bool) {
        self.lock().verbose = verbose;
    }

    /// Time since the timeline started.
    pub fn elapsed(&self) -> Duration {
        let origin = self.lock().origin;
        tokio::time::Instant::now()
            .into_std()
            .saturating_duration_since(origin)
    }

    /// Sleeps until `at` after the timeline's start (at once if that is past).
    pub async fn sleep_until(&self, at: Duration) {
        let origin = self.lock().tokio_origin;
        tokio::time::sleep_until(origin + at).await;
    }

    /// Records `event` about `service`, now.
    pub fn push(&self, service: &str, event: Event) {
        let at = self.elapsed();
        self.lock().push(at, Arc::from(service), event);
    }

    /// Records a narrative note.
    pub fn note(&self, service: &str, label: &'static str, text: impl Into<String>) {
        self.push(
            service,
            Event::Note {
                label,
                text: text.into(),
            },
        );
    }

    /// The recipient to [`subscribe`](ServiceHandle::subscribe) to a supervisor.
    pub fn recipient(&self) -> Recipient<SupervisorEvent> {
        self.collector.clone().recipient()
    }

    /// Subscribes the timeline to `handle`'s events and starts showing the service's state.
    pub async fn follow(&self, handle: &ServiceHandle) {
        // A supervisor that is gone has nothing more to report.
        let _ = handle.subscribe(self.recipient()).await;
        if let (Ok(status), Ok(health)) = (handle.breaker_status().await, handle.health().await) {
            self.lock()
                .states
                .insert(Arc::from(handle.name()), (status.state, health.status));
        }
    }

    /// Waits until everything `handle`'s supervisor has already been told is processed and
    /// every event it published is recorded: a query goes through the supervisor's mailbox
    /// behind the call records, then a flush through the collector's behind the events.
    pub async fn sync(&self, handle: &ServiceHandle) {
        let _ = handle.counts().await;
        let _ = self.collector.send(Flush).await;
    }

    /// A copy of every entry so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }
}

/// Receives supervisor events and records them.
struct Collector {
    inner: Arc<Mutex<Inner>>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<SupervisorEvent> for Collector {
    type Result = ();

    fn handle(&mut self, event: SupervisorEvent, _: &mut Context<Self>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let at = event.at.saturating_duration_since(inner.origin);
        inner.push(at, event.service, Event::Supervisor(event.kind));
    }
}

/// Answered once every message before it has been handled.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Flush> for Collector {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) {}
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// How to print: with ANSI colours or plain.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Emit ANSI colour codes.
    pub colour: bool,
}

/// The tone of a piece of text, for colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something went well.
    Good,
    /// Something failed.
    Bad,
    /// Something to watch.
    Warn,
    /// Neutral information.
    Info,
    /// Background detail.
    Dim,
    /// Emphasis.
    Bold,
    /// No colour.
    Plain,
}

impl Style {
    /// `text` in `tone`.
    pub fn paint(&self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Warn => "33",
            Tone::Info => "36",
            Tone::Dim => "2",
            Tone::Bold => "1",
            Tone::Plain => return text.to_string(),
        };
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// `text` in `tone`, padded to `width` columns (padding outside the colour codes).
    pub fn paint_padded(&self, tone: Tone, text: &str, width: usize) -> String {
        let pad = width.saturating_sub(text.chars().count());
        format!("{}{}", self.paint(tone, text), " ".repeat(pad))
    }
}

/// A duration for people: `850ms`, `1.25s`, `30s`, `1m`, `2m30s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        if d > Duration::ZERO && ms == 0 {
            return format!("{}µs", d.as_micros());
        }
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let text = format!("{secs:.2}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        return format!("{text}s");
    }
    let whole = d.as_secs();
    match (whole / 60, whole % 60) {
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// `n thing` or `n things`.
pub fn count(n: u64, thing: &str) -> String {
    match (n, thing.strip_suffix('y')) {
        (1, _) => format!("1 {thing}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {thing}s"),
    }
}

/// A rate as a percentage.
pub fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

/// The health window's numbers in a few words.
pub fn describe_stats(stats: &HealthStats) -> String {
    if stats.calls == 0 {
        return "no recent calls".to_string();
    }
    let mut text = count(u64::from(stats.calls), "call");
    if let Some(rate) = stats.success_rate {
        let _ = write!(text, ", {} ok", percent(rate));
    }
    if let Some(p95) = stats.p95 {
        let _ = write!(text, ", p95 {}", human(p95));
    }
    text
}

fn breaker_tone(state: BreakerState) -> Tone {
    match state {
        BreakerState::Closed => Tone::Good,
        BreakerState::Open | BreakerState::ForcedOpen => Tone::Bad,
        BreakerState::HalfOpen => Tone::Warn,
        BreakerState::Disabled => Tone::Dim,
    }
}

fn health_tone(status: HealthStatus) -> Tone {
    match status {
        HealthStatus::Healthy => Tone::Good,
        HealthStatus::Degraded => Tone::Warn,
        HealthStatus::Unhealthy => Tone::Bad,
    }
}

fn reason_text(reason: TransitionReason) -> &'static str {
    match reason {
        TransitionReason::ConsecutiveFailures => "consecutive failures",
        TransitionReason::FailureRate => "failure rate too high",
        TransitionReason::SlowCallRate => "too many slow calls",
        TransitionReason::OpenElapsed => "open period over",
        TransitionReason::ProbeFailed => "probe failed",
        TransitionReason::ProbesSucceeded => "probe succeeded",
        TransitionReason::HalfOpenTimeout => "no probe answer in time",
        TransitionReason::ForcedOpen => "forced open",
        TransitionReason::Disabled => "disabled",
        TransitionReason::Reset => "reset",
    }
}

/// The event and text columns of an entry, with the text's tone.
pub fn describe(event: &Event) -> (String, String, Tone) {
    match event {
        Event::Supervisor(kind) => describe_supervisor(kind),
        Event::Attempt {
            call,
            attempt,
            ok,
            detail,
            took,
        } => {
            let mark = if *ok { "✓" } else { "✗" };
            (
                format!("call {call}"),
                format!("attempt {attempt} {mark} {detail} ({})", human(*took)),
                if *ok { Tone::Plain } else { Tone::Warn },
            )
        }
        Event::Cancelled {
            call,
            attempt,
            after,
        } => (
            format!("call {call}"),
            format!(
                "attempt {attempt} cancelled after {}: its future was dropped",
                human(*after)
            ),
            Tone::Warn,
        ),
        Event::Answered { call, answer } => {
            let (text, tone) = match answer {
                Answer::Ok { attempts: 1, took } => {
                    (format!("✓ ok in {}", human(*took)), Tone::Good)
                }
                Answer::Ok { attempts, took } => (
                    format!("✓ ok after {attempts} attempts, {}", human(*took)),
                    Tone::Good,
                ),
                Answer::Fallback { instead_of, .. } => (
                    format!("↺ served from cache by its fallback (instead of: {instead_of})"),
                    Tone::Warn,
                ),
                Answer::Err {
                    kind: ErrorKind::Open,
                    message,
                    ..
                } => (format!("⊘ refused at once: {message}"), Tone::Bad),
                Answer::Err {
                    kind: ErrorKind::Failed,
                    message,
                    took,
                    ..
                } => (
                    format!("✗ {message}, not retried ({})", human(*took)),
                    Tone::Bad,
                ),
                Answer::Err { message, took, .. } => {
                    (format!("✗ {message} ({})", human(*took)), Tone::Bad)
                }
            };
            (format!("call {call}"), text, tone)
        }
        Event::Health(snapshot) => (
            "health()".to_string(),
            format!(
                "→ {} ({})",
                snapshot.status,
                describe_stats(&snapshot.stats)
            ),
            health_tone(snapshot.status),
        ),
        Event::Note { label, text } => (label.to_string(), text.clone(), Tone::Info),
        Event::Traffic { period, counts } => {
            let mut parts = vec![format!("{} ok", counts.success)];
            let mut push = |n: u64, what: &str| {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            };
            push(counts.failure, "failed");
            push(counts.timeout, "timed out");
            push(counts.rejected_open, "refused (open)");
            push(counts.rejected_overloaded, "refused (bulkhead)");
            let mut text = format!(
                "{} in {}: {} · {}",
                count(counts.total(), "call"),
                human(*period),
                parts.join(", "),
                count(counts.attempts, "attempt")
            );
            if counts.retries > 0 {
                let _ = write!(text, ", {}", count(counts.retries, "retry"));
            }
            if counts.rejected_budget > 0 {
                let _ = write!(text, " ({} over budget)", counts.rejected_budget);
            }
            ("traffic".to_string(), text, Tone::Dim)
        }
    }
}

fn describe_supervisor(kind: &EventKind) -> (String, String, Tone) {
    match kind {
        EventKind::StateChanged(t) => {
            let mut text = format!("{} → {}: {}", t.from, t.to, reason_text(t.reason));
            if t.reason == TransitionReason::ConsecutiveFailures {
                text = format!(
                    "{} → {}: {} {}",
                    t.from,
                    t.to,
                    t.snapshot.consecutive_failures,
                    reason_text(t.reason)
                );
            }
            if t.reason == TransitionReason::FailureRate {
                let _ = write!(
                    text,
                    " ({} of {} calls)",
                    percent(t.snapshot.failure_rate),
                    t.snapshot.calls
                );
            }
            if let Some(open_for) = t.open_for {
                let _ = write!(text, "; fail fast for {}", human(open_for));
            }
            if t.to == BreakerState::HalfOpen {
                text.push_str("; next call is a probe");
            }
            ("breaker".to_string(), text, breaker_tone(t.to))
        }
        EventKind::HealthChanged { from, to, stats } => (
            "health".to_string(),
            format!("{from} → {to} ({})", describe_stats(stats)),
            health_tone(*to),
        ),
        EventKind::RetryScheduled {
            attempt,
            delay,
            reason,
        } => (
            "retry".to_string(),
            format!(
                "attempt {attempt} in {} (after {})",
                human(*delay),
                reason.as_str()
            ),
            Tone::Plain,
        ),
        EventKind::TimedOut { after } => (
            "timeout".to_string(),
            format!("attempt cut off after {}", human(*after)),
            Tone::Warn,
        ),
        EventKind::RetryBudgetExhausted => (
            "budget".to_string(),
            "retry refused: retry budget spent".to_string(),
            Tone::Warn,
        ),
        other => ("event".to_string(), format!("{other:?}"), Tone::Dim),
    }
}

/// One printed line for `entry`: time, service, breaker state and health after the event,
/// event, and what happened. The free text comes last so that long texts never push the other
/// columns out of line.
pub fn render(entry: &Entry, style: Style) -> String {
    let (label, text, tone) = describe(&entry.event);
    let time = format!("t=+{:.3}s", entry.at.as_secs_f64());
    let state = match (entry.breaker, entry.health) {
        (Some(breaker), Some(health)) => format!(
            "{} {}",
            style.paint_padded(breaker_tone(breaker), breaker.as_str(), 9),
            style.paint_padded(health_tone(health), health.as_str(), 9),
        ),
        _ => " ".repeat(19),
    };
    let line = format!(
        "  {}  {} {}  {} {}",
        style.paint_padded(Tone::Dim, &time, 11),
        style.paint_padded(Tone::Bold, &entry.service, 9),
        state,
        style.paint_padded(Tone::Plain, &label, 8),
        style.paint(tone, &text),
    );
    line.trim_end().to_string()
}

/// A small text table: a header, a rule, and right-aligned numbers.
pub fn table(headers: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let numeric = |i: usize| {
        rows.iter().all(|row| {
            row.get(i)
                .is_some_and(|c| c.chars().all(|ch| ch.is_ascii_digit() || ch == '.'))
        })
    };
    let cell = |i: usize, text: &str| {
        let pad = " ".repeat(widths[i].saturating_sub(text.chars().count()));
        if numeric(i) {
            format!("{pad}{text}")
        } else {
            format!("{text}{pad}")
        }
    };
    let mut out = String::new();
    let header: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| cell(i, h))
        .collect();
    let _ = writeln!(
        out,
        "    {}",
        style.paint(Tone::Bold, header.join("  ").trim_end())
    );
    let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
    let _ = writeln!(out, "    {}", style.paint(Tone::Dim, &rule.join("  ")));
    for row in rows {
        let cells: Vec<String> = row.iter().enumerate().map(|(i, c)| cell(i, c)).collect();
        let _ = writeln!(out, "    {}", cells.join("  ").trim_end());
    }
    out
}

/// Index of the first entry at or after `from` that matches `predicate`.
pub fn find_from(
    entries: &[Entry],
    from: usize,
    predicate: impl Fn(&Entry) -> bool,
) -> Option<usize> {
    entries
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, e)| predicate(e))
        .map(|(i, _)| i)
}

/// A named predicate on entries: one step of an expected order.
pub type Expected<'a> = (&'a str, &'a dyn Fn(&Entry) -> bool);

/// Checks that entries matching each step occur in this order (each step after the previous
/// one); returns the index of each, or the description of the first step not found.
pub fn in_order(entries: &[Entry], steps: &[Expected<'_>]) -> Result<Vec<usize>, String> {
    let mut found = Vec::with_capacity(steps.len());
    let mut from = 0;
    for (what, predicate) in steps {
        match find_from(entries, from, predicate) {
            Some(index) => {
                found.push(index);
                from = index + 1;
            }
            None => {
                let after = found
                    .last()
                    .map(|_| format!(" after “{}”", steps[found.len() - 1].0))
                    .unwrap_or_default();
                return Err(format!("expected “{what}”{after}, not found"));
            }
        }
    }
    Ok(found)
}

/// Reports an attempt of a call to the timeline: its end through
/// [`finished`](AttemptGuard::finished), or its cancellation when the attempt's future is dropped
/// first (the supervisor's timeout, or the supervisor going away).
pub struct AttemptGuard {
    timeline: Timeline,
    service: String,
    call: u32,
    attempt: u32,
    started: tokio::time::Instant,
    running: bool,
}

impl AttemptGuard {
    /// Starts timing attempt `attempt` of call `call` to `service`, now.
    pub fn start(timeline: &Timeline, service: &str, call: u32, attempt: u32) -> Self {
        AttemptGuard {
            timeline: timeline.clone(),
            service: service.to_string(),
            call,
            attempt,
            started: tokio::time::Instant::now(),
            running: true,
        }
    }

    /// The attempt ended (`ok` or not) with `detail`.
    pub fn finished(&mut self, ok: bool, detail: String) {
        self.running = false;
        self.timeline.push(
            &self.service,
            Event::Attempt {
                call: self.call,
                attempt: self.attempt,
                ok,
                detail,
                took: self.started.elapsed(),
            },
        );
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if self.running {
            self.timeline.push(
                &self.service,
                Event::Cancelled {
                    call: self.call,
                    attempt: self.attempt,
                    after: self.started.elapsed(),
                },
            );
        }
    }
}
