//! Span and attribute names (one place): every call is a `tracing` span, and so is each of its
//! attempts, hedges included, with the stable attribute names below. They are written the way
//! [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry) reads them (`otel.name`,
//! `otel.kind`, `otel.status_code`), so with its layer installed the spans are OpenTelemetry
//! client spans, exported by any OpenTelemetry exporter (OTLP to a collector, …).
//!
//! ```text
//! call        otel.name = "warden.call", otel.kind = "client"
//! │           warden.service, warden.call_id, warden.breaker_state, warden.deadline_ms,
//! │           warden.outcome, error.type, otel.status_code = "ERROR" (when the call fails)
//! ├─ attempt  otel.name = "warden.attempt", otel.kind = "client"
//! │           warden.attempt = 1, warden.hedge = false, warden.breaker_state, warden.deadline_ms,
//! │           warden.outcome, warden.retry_reason, otel.status_code
//! ├─ attempt  warden.attempt = 1, warden.hedge = true   (a hedge of attempt 1: a sibling)
//! └─ attempt  warden.attempt = 2, …
//! ```
//!
//! Both spans are at `debug` level, under the target `warden::call`. Fields whose value is only known later (the outcome, the retry reason, the status)
//! are declared empty and recorded when the call or the attempt ends. With no subscriber
//! interested in them, a span is [`Span::none`](tracing::Span::none) and costs a level check:
//! nothing is recorded, formatted or allocated. Numbers are recorded as `i64`, OpenTelemetry's
//! integer (`tracing-opentelemetry` exports other integer types as strings).
//!
//! # Values
//!
//! - [`OUTCOME`] on a call: how it was counted, [`CallOutcome::as_str`] (`success`, `failure`,
//!   `timeout`, `panic`, `rejected`, `cancelled`, `fallback`, `coalesced`); a call the
//!   supervisor was gone for is `cancelled`. On an attempt: `success`, `failure`, `ignored` (an
//!   error the classifier says is not the dependency's fault), `timeout`, `panic`,
//!   `cancelled` (dropped with its call), `superseded` (a hedge race's loser).
//! - [`RETRY_REASON`] on a failed attempt: what the supervisor decided about the next one,
//!   `error` or `timeout` when it retries (the [`RetryReason`]), else why not: see
//!   [`RETRY_REASONS`].
//! - [`BREAKER_STATE`]: the published [`BreakerState::as_str`] when the call (or the attempt)
//!   was admitted: `closed`, `open`, `half_open`, `forced_open`, `disabled`.
//! - [`ERROR_TYPE`] on a failed call: [`CallError::kind`], the error's variant (`open`,
//!   `retries_exhausted`, …), never the operation's error text.
//!
//! # Events
//!
//! What happens to a call while it runs is an event inside its span (an OpenTelemetry span
//! event named by the message): the supervisor's decisions made while it handles the call's
//! question (a breaker transition, a retry scheduled, a hedge started, a timeout) come from
//! its one signal fan-out, run inside the asking span; what only the caller sees (a rate-limit
//! wait, a fallback served) from the call's own helper. [`EVENTS`] lists them. A breaker that
//! closes after a probe succeeded is the exception: the success is handed over without a round
//! trip, so the transition is reported after the call has its answer, outside its span.
//!
//! [`CallOutcome::as_str`]: crate::outcome::CallOutcome::as_str
//! [`RetryReason`]: crate::outcome::RetryReason
//! [`BreakerState::as_str`]: crate::breaker::BreakerState::as_str
//! [`CallError::kind`]: crate::CallError::kind

/// The call span's `otel.name`.
pub const CALL_SPAN: &str = "warden.call";
/// The attempt span's `otel.name` (hedges included).
pub const ATTEMPT_SPAN: &str = "warden.attempt";

/// Attribute: the service (dependency) name given to the supervisor. Call span.
pub const SERVICE: &str = "warden.service";
/// Attribute: the call's number, unique per supervisor (from 0). Call span.
pub const CALL_ID: &str = "warden.call_id";
/// Attribute: the attempt's number, from 1; a hedge has the number of the attempt it hedges.
/// Attempt span.
pub const ATTEMPT: &str = "warden.attempt";
/// Attribute: how the call or the attempt ended (see [Values](self#values)). Recorded when it
/// ends.
pub const OUTCOME: &str = "warden.outcome";
/// Attribute: the breaker's published state when the call, or the attempt, was admitted.
pub const BREAKER_STATE: &str = "warden.breaker_state";
/// Attribute: why the supervisor let the next attempt follow a failed one (`error`,
/// `timeout`), or why not ([`RETRY_REASONS`]). Attempt span, failed attempts only.
pub const RETRY_REASON: &str = "warden.retry_reason";
/// Attribute: `true` on a hedge (an attempt started because another had not answered within
/// the hedge delay), `false` on any other attempt. Attempt span.
pub const HEDGE: &str = "warden.hedge";
/// Attribute: milliseconds left before the call's deadline (the sooner of its supervisor's
/// `deadline` and the inherited [`Deadline`](crate::deadline::Deadline)) when the call, or the attempt,
/// started; absent without a deadline.
pub const DEADLINE_MS: &str = "warden.deadline_ms";
/// Attribute (OpenTelemetry semantic conventions): the failed call's error,
/// [`CallError::kind`](crate::CallError::kind). Call span.
pub const ERROR_TYPE: &str = "error.type";

/// Field `tracing-opentelemetry` takes as the span's name.
pub const OTEL_NAME: &str = "otel.name";
/// Field `tracing-opentelemetry` takes as the span's kind: [`KIND_CLIENT`] on both spans.
pub const OTEL_KIND: &str = "otel.kind";
/// Field `tracing-opentelemetry` takes as the span's status: [`STATUS_ERROR`] on a failed call
/// or attempt, unset otherwise.
pub const OTEL_STATUS_CODE: &str = "otel.status_code";
/// The value of [`OTEL_KIND`].
pub const KIND_CLIENT: &str = "client";
/// The value of [`OTEL_STATUS_CODE`] on failure.
pub const STATUS_ERROR: &str = "ERROR";

/// [`RETRY_REASON`] when the supervisor sent no retry: no attempts left, the retry budget
/// spent, the breaker open (and still open when the delay would end, or it refused the
/// retry), the dependency's retry-after above `max_delay`, no time left before the deadline,
/// or a failure that ends the call whatever (not retryable, a panic).
pub const RETRY_REASONS: [&str; 6] = [
    "exhausted",
    "budget",
    "breaker_open",
    "deferred",
    "deadline",
    "not_retryable",
];

/// Event: the breaker changed state (`from`, `to`, `reason`, the window that caused it). In
/// the span of the attempt whose failure tripped it, or of the call whose admission moved it
/// to half-open.
pub const EVENT_BREAKER_TRANSITION: &str = "circuit breaker transition";
/// Event: the supervisor scheduled a retry (`attempt`: the next attempt's number,
/// `delay_ms`, `reason`). In the failed attempt's span.
pub const EVENT_RETRY_SCHEDULED: &str = "retry scheduled";
/// Event: the supervisor refused a retry because the retry budget is spent. In the failed
/// attempt's span.
pub const EVENT_RETRY_BUDGET_EXHAUSTED: &str = "retry budget exhausted";
/// Event: the attempt timed out (`after_ms`). In its span.
pub const EVENT_TIMED_OUT: &str = "attempt timed out";
/// Event: a hedge was started (`hedge`: its number, `after_ms`: how long the hedged attempt
/// had run). In the call's span.
pub const EVENT_HEDGE_STARTED: &str = "hedge started";
/// Event: the call waits for its rate-limit token (`wait_ms`; absent while a fleet's quota
/// leases tokens). In the call's span.
pub const EVENT_RATE_LIMIT_WAIT: &str = "rate limit wait";
/// Event: the call's fallback answered in its place (`error.type`: the error it replaced).
/// In the call's span.
pub const EVENT_FALLBACK_SERVED: &str = "fallback served";

/// Every event a call's spans may carry, by name.
pub const EVENTS: [&str; 7] = [
    EVENT_BREAKER_TRANSITION,
    EVENT_RETRY_SCHEDULED,
    EVENT_RETRY_BUDGET_EXHAUSTED,
    EVENT_TIMED_OUT,
    EVENT_HEDGE_STARTED,
    EVENT_RATE_LIMIT_WAIT,
    EVENT_FALLBACK_SERVED,
];

/// `duration` in whole milliseconds, as the `…_ms` attributes and event fields carry it.
/// Numbers are recorded as `i64`, OpenTelemetry's integer (`tracing-opentelemetry` records
/// any other integer type as a string).
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_distinct() {
        let events: HashSet<&str> = EVENTS.into_iter().collect();
        assert_eq!(events.len(), EVENTS.len());
        let attributes = [
            SERVICE,
            CALL_ID,
            ATTEMPT,
            OUTCOME,
            BREAKER_STATE,
            RETRY_REASON,
            HEDGE,
            DEADLINE_MS,
            ERROR_TYPE,
        ];
        let distinct: HashSet<&str> = attributes.into_iter().collect();
        assert_eq!(distinct.len(), attributes.len());
    }
}
