//! OpenTelemetry-ready spans: every call is a `tracing` span and so is each attempt, hedges
//! included, with the stable attribute names of `warden::observe::spans`. Here they go through
//! `tracing-opentelemetry` into an OpenTelemetry SDK with an in-memory exporter, and the
//! exported spans are checked as a collector would receive them: names, kinds, statuses,
//! attributes, events, and the parent/child links by span id.
//!
//! Deterministic: the supervisor runs on the test's actix system (the test thread, where the
//! subscriber is the default), the clock is paused, nothing sleeps to wait. (That a call
//! allocates nothing for its spans when no subscriber wants them is checked in
//! `tests/overload.rs`, with the counting allocator, where no subscriber is ever installed.)

mod common;

use std::time::Duration;

use common::*;
use opentelemetry::trace::{SpanId, SpanKind, Status, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;
use warden::observe::spans;
use warden::prelude::*;

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// An OpenTelemetry pipeline for this thread: tracing → tracing-opentelemetry → SDK → memory.
struct Otel {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: DefaultGuard,
}

impl Otel {
    fn install() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("warden-tests"));
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        Otel {
            exporter,
            _provider: provider,
            _guard: guard,
        }
    }

    /// The spans ended so far.
    fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().expect("in-memory spans")
    }

    /// The call spans of `service`, in the order they ended.
    fn calls(&self, service: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|span| {
                span.name == spans::CALL_SPAN && attr(span, spans::SERVICE) == Some(str(service))
            })
            .collect()
    }

    /// The attempt spans whose parent is `call`, by attempt number (the first before its
    /// hedges).
    fn attempts_of(&self, call: &SpanData) -> Vec<SpanData> {
        let mut attempts: Vec<SpanData> = self
            .spans()
            .into_iter()
            .filter(|span| span.parent_span_id == call.span_context.span_id())
            .filter(|span| span.name == spans::ATTEMPT_SPAN)
            .collect();
        attempts.sort_by_key(|span| (int(span, spans::ATTEMPT), flag(span, spans::HEDGE)));
        attempts
    }

    /// The one call span of `service`.
    fn call(&self, service: &str) -> SpanData {
        let mut calls = self.calls(service);
        assert_eq!(calls.len(), 1, "one call span for {service}");
        calls.remove(0)
    }
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn str(value: &str) -> Value {
    Value::from(value.to_string())
}

#[track_caller]
fn text(span: &SpanData, key: &str) -> String {
    match attr(span, key) {
        Some(value) => value.as_str().into_owned(),
        None => panic!("{} has no {key}: {:?}", span.name, span.attributes),
    }
}

#[track_caller]
fn int(span: &SpanData, key: &str) -> i64 {
    match attr(span, key) {
        Some(Value::I64(value)) => value,
        other => panic!("{} has no integer {key}: {other:?}", span.name),
    }
}

#[track_caller]
fn flag(span: &SpanData, key: &str) -> bool {
    match attr(span, key) {
        Some(Value::Bool(value)) => value,
        other => panic!("{} has no bool {key}: {other:?}", span.name),
    }
}

/// The span's events named `name`, as their attributes.
fn events(span: &SpanData, name: &str) -> Vec<Vec<opentelemetry::KeyValue>> {
    span.events
        .iter()
        .filter(|event| event.name == name)
        .map(|event| event.attributes.clone())
        .collect()
}

fn event_attr(attributes: &[opentelemetry::KeyValue], key: &str) -> Option<Value> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn retried_config() -> SupervisorConfig {
    SupervisorConfig {
        retry: RetryConfig::constant(3, ms(100)).budget(BudgetConfig::off()),
        ..plain_config()
    }
}

#[actix::test]
async fn a_retried_call_is_one_call_span_with_an_attempt_span_per_attempt() {
    let otel = Otel::install();
    pause_aligned().await;
    let svc = start("otel-retried", retried_config());
    let hits = Hits::default();
    let dependency = hits.clone();
    let answer = svc
        .call(move || {
            let n = dependency.hit();
            async move {
                if n < 3 {
                    Err(DepError("boom"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
    assert_eq!(answer.unwrap(), 3);

    let call = otel.call("otel-retried");
    assert_eq!(call.span_kind, SpanKind::Client);
    assert_eq!(call.status, Status::Unset);
    assert_eq!(text(&call, spans::OUTCOME), "success");
    assert_eq!(text(&call, spans::BREAKER_STATE), "closed");
    assert!(attr(&call, spans::CALL_ID).is_some());
    assert!(attr(&call, spans::ERROR_TYPE).is_none());
    assert!(attr(&call, spans::DEADLINE_MS).is_none(), "no deadline set");

    let attempts = otel.attempts_of(&call);
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    let numbers: Vec<i64> = attempts.iter().map(|a| int(a, spans::ATTEMPT)).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let outcomes: Vec<String> = attempts.iter().map(|a| text(a, spans::OUTCOME)).collect();
    assert_eq!(outcomes, ["failure", "failure", "success"]);
    let reasons: Vec<Option<Value>> = attempts
        .iter()
        .map(|a| attr(a, spans::RETRY_REASON))
        .collect();
    assert_eq!(reasons, [Some(str("error")), Some(str("error")), None]);
    let statuses: Vec<&Status> = attempts.iter().map(|a| &a.status).collect();
    assert!(matches!(
        statuses[..],
        [Status::Error { .. }, Status::Error { .. }, Status::Unset]
    ));
    for (attempt, next) in attempts.iter().zip(2..) {
        assert_eq!(attempt.span_kind, SpanKind::Client);
        assert_eq!(
            attempt.span_context.trace_id(),
            call.span_context.trace_id()
        );
        assert!(!flag(attempt, spans::HEDGE));
        assert_eq!(text(attempt, spans::BREAKER_STATE), "closed");
        // The supervisor's retry decision is an event of the failed attempt's span.
        let retries = events(attempt, spans::EVENT_RETRY_SCHEDULED);
        if next <= 3 {
            assert_eq!(retries.len(), 1, "{:?}", attempt.events);
            assert_eq!(event_attr(&retries[0], "attempt"), Some(Value::I64(next)));
            assert_eq!(event_attr(&retries[0], "delay_ms"), Some(Value::I64(100)));
            assert_eq!(event_attr(&retries[0], "reason"), Some(str("error")));
        } else {
            assert!(retries.is_empty());
        }
    }
    // Each attempt span ends before the next begins (the backoff is in neither).
    for pair in attempts.windows(2) {
        assert!(pair[0].end_time <= pair[1].start_time);
    }
    // The call span is a root here: nothing else was open.
    assert_eq!(call.parent_span_id, SpanId::INVALID);
}

#[actix::test]
async fn a_hedge_is_an_attempt_span_of_its_own() {
    let otel = Otel::install();
    pause_aligned().await;
    let svc = start(
        "otel-hedged",
        SupervisorConfig {
            hedge: Some(HedgeConfig::fixed(ms(20))),
            timeout: Some(Duration::from_secs(5)),
            ..plain_config()
        },
    );
    let hits = Hits::default();
    let dependency = hits.clone();
    let call = Call::new(move || {
        let latency = if dependency.hit() == 1 { 1000 } else { 10 };
        async move {
            tokio::time::sleep(ms(latency)).await;
            Ok::<u64, DepError>(latency)
        }
    })
    .idempotent();
    assert_eq!(svc.send(call).await.unwrap(), 10, "the hedge's value");

    let call = otel.call("otel-hedged");
    assert_eq!(text(&call, spans::OUTCOME), "success");
    let attempts = otel.attempts_of(&call);
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let (first, hedge) = (&attempts[0], &attempts[1]);
    assert_eq!(
        (int(first, spans::ATTEMPT), int(hedge, spans::ATTEMPT)),
        (1, 1)
    );
    assert!(!flag(first, spans::HEDGE));
    assert!(flag(hedge, spans::HEDGE));
    assert_eq!(text(hedge, spans::OUTCOME), "success");
    assert_eq!(text(first, spans::OUTCOME), "superseded");
    assert_eq!(first.status, Status::Unset, "losing the race is no error");
    // The hedge started 20 ms after the first attempt: an event of the call's span.
    let started = events(&call, spans::EVENT_HEDGE_STARTED);
    assert_eq!(started.len(), 1, "{:?}", call.events);
    assert_eq!(event_attr(&started[0], "hedge"), Some(Value::I64(1)));
    // (tokio's timer may round the delay up to its next millisecond tick.)
    assert!(matches!(
        event_attr(&started[0], "after_ms"),
        Some(Value::I64(20..=22))
    ));
}

#[actix::test]
async fn a_call_refused_by_the_open_breaker_is_a_failed_call_span_without_attempts() {
    let otel = Otel::install();
    pause_aligned().await;
    let svc = start(
        "otel-open",
        SupervisorConfig {
            breaker: BreakerConfig::consecutive(1).open_for(Duration::from_secs(30)),
            ..plain_config()
        },
    );
    assert!(matches!(fail(&svc).await, Err(CallError::Failed { .. })));
    assert!(matches!(fail(&svc).await, Err(CallError::Open { .. })));

    let calls = otel.calls("otel-open");
    assert_eq!(calls.len(), 2);
    let (tripped, refused) = (&calls[0], &calls[1]);
    // The failure that tripped the breaker: the transition is an event of its attempt's span,
    // which also says why no retry followed.
    assert_eq!(text(tripped, spans::OUTCOME), "failure");
    assert_eq!(text(tripped, spans::ERROR_TYPE), "failed");
    assert!(matches!(tripped.status, Status::Error { .. }));
    let attempts = otel.attempts_of(tripped);
    assert_eq!(attempts.len(), 1);
    assert_eq!(text(&attempts[0], spans::RETRY_REASON), "exhausted");
    let transitions = events(&attempts[0], spans::EVENT_BREAKER_TRANSITION);
    assert_eq!(transitions.len(), 1, "{:?}", attempts[0].events);
    assert_eq!(event_attr(&transitions[0], "from"), Some(str("closed")));
    assert_eq!(event_attr(&transitions[0], "to"), Some(str("open")));

    assert_eq!(refused.span_kind, SpanKind::Client);
    assert_eq!(text(refused, spans::OUTCOME), "rejected");
    assert_eq!(text(refused, spans::ERROR_TYPE), "open");
    assert_eq!(text(refused, spans::BREAKER_STATE), "open");
    assert!(matches!(refused.status, Status::Error { .. }));
    assert!(otel.attempts_of(refused).is_empty(), "no attempt ran");
    assert_ne!(
        refused.span_context.span_id(),
        tripped.span_context.span_id()
    );

    // A refused call with a fallback is answered by it: the span says so, and is no error.
    let call = Call::new(|| async { Ok::<u8, DepError>(1) }).fallback(|_| Ok(0));
    assert_eq!(svc.send(call).await.unwrap(), 0);
    let served = otel.calls("otel-open").remove(2);
    assert_eq!(text(&served, spans::OUTCOME), "fallback");
    assert_eq!(served.status, Status::Unset);
    let fallback = events(&served, spans::EVENT_FALLBACK_SERVED);
    assert_eq!(fallback.len(), 1, "{:?}", served.events);
    assert_eq!(
        event_attr(&fallback[0], spans::ERROR_TYPE),
        Some(str("open"))
    );
    assert!(otel.attempts_of(&served).is_empty());

    // Once the open period is over the next call is the probe: the supervisor's admission
    // moves the breaker to half-open inside the call's span, and the attempt runs half-open.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(succeed(&svc).await.is_ok());
    let probe = otel.calls("otel-open").remove(3);
    assert_eq!(text(&probe, spans::OUTCOME), "success");
    let half_open = events(&probe, spans::EVENT_BREAKER_TRANSITION);
    assert_eq!(half_open.len(), 1, "{:?}", probe.events);
    assert_eq!(event_attr(&half_open[0], "to"), Some(str("half_open")));
    let attempts = otel.attempts_of(&probe);
    assert_eq!(attempts.len(), 1);
    assert_eq!(text(&attempts[0], spans::BREAKER_STATE), "half_open");
}

#[actix::test]
async fn the_deadline_left_and_the_rate_limit_wait_are_recorded() {
    let otel = Otel::install();
    pause_aligned().await;
    let svc = start(
        "otel-deadline",
        SupervisorConfig {
            timeout: Some(ms(200)),
            deadline: Some(ms(500)),
            rate_limit: Some(
                RateLimitConfig::per_second(10.0)
                    .burst(1)
                    .max_wait(Duration::from_secs(1)),
            ),
            ..plain_config()
        },
    );
    assert!(succeed(&svc).await.is_ok());
    // The bucket is empty: the second call waits 100 ms for its token.
    assert!(succeed(&svc).await.is_ok());
    let calls = otel.calls("otel-deadline");
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(int(call, spans::DEADLINE_MS), 500);
        let attempts = otel.attempts_of(call);
        assert_eq!(attempts.len(), 1);
        assert_eq!(int(&attempts[0], spans::DEADLINE_MS), 500);
    }
    assert!(events(&calls[0], spans::EVENT_RATE_LIMIT_WAIT).is_empty());
    let waits = events(&calls[1], spans::EVENT_RATE_LIMIT_WAIT);
    assert_eq!(waits.len(), 1, "{:?}", calls[1].events);
    assert_eq!(event_attr(&waits[0], "wait_ms"), Some(Value::I64(100)));
}

#[actix::test]
async fn a_timed_out_attempt_and_a_permanent_error_name_why_no_retry_followed() {
    let otel = Otel::install();
    pause_aligned().await;
    let svc = start(
        "otel-final",
        SupervisorConfig {
            timeout: Some(ms(50)),
            ..retried_config()
        },
    );
    let hits = Hits::default();
    let dependency = hits.clone();
    // Attempt 1 times out (retried: `timeout`), attempt 2 fails for good.
    let call = Call::new(move || {
        let n = dependency.hit();
        async move {
            if n == 1 {
                std::future::pending::<()>().await;
            }
            Err::<(), _>(DepError("permanent"))
        }
    })
    .classify(|_: &DepError| ErrorClass::permanent());
    assert!(matches!(
        svc.send(call).await,
        Err(CallError::Failed { attempts: 2, .. })
    ));
    let call = otel.call("otel-final");
    assert_eq!(text(&call, spans::ERROR_TYPE), "failed");
    let attempts = otel.attempts_of(&call);
    assert_eq!(attempts.len(), 2);
    assert_eq!(text(&attempts[0], spans::OUTCOME), "timeout");
    assert_eq!(text(&attempts[0], spans::RETRY_REASON), "timeout");
    assert_eq!(events(&attempts[0], spans::EVENT_TIMED_OUT).len(), 1);
    assert_eq!(text(&attempts[1], spans::OUTCOME), "failure");
    assert_eq!(text(&attempts[1], spans::RETRY_REASON), "not_retryable");
}

#[actix::test]
async fn a_call_dropped_by_its_caller_ends_its_spans_cancelled() {
    let otel = Otel::install();
    pause_aligned().await;
    let svc = start("otel-dropped", plain_config());
    let pending = svc.call(std::future::pending::<Result<(), DepError>>);
    assert!(tokio::time::timeout(ms(10), pending).await.is_err());
    let call = otel.call("otel-dropped");
    assert_eq!(text(&call, spans::OUTCOME), "cancelled");
    let attempts = otel.attempts_of(&call);
    assert_eq!(attempts.len(), 1);
    assert_eq!(text(&attempts[0], spans::OUTCOME), "cancelled");
    assert_eq!(attempts[0].status, Status::Unset);
}
