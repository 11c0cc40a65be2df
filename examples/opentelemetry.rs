//! warden's spans as OpenTelemetry traces: `tracing-opentelemetry` turns every call and every
//! attempt into an OpenTelemetry client span, with the attributes of `warden::observe::spans`.
//!
//! This example exports into memory and prints what a collector would receive: a call retried
//! twice (one call span, three attempt spans, the supervisor's retry decisions as events), and
//! a call refused by an open breaker (a failed call span, no attempt). To send the spans to an
//! OpenTelemetry collector instead, swap the exporter for OTLP (crate `opentelemetry-otlp`, see
//! the README's "OpenTelemetry" section):
//!
//! ```ignore
//! let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?; // :4317
//! let provider = SdkTracerProvider::builder().with_batch_exporter(exporter) /* … */ .build();
//! ```
//!
//! `cargo run --example opentelemetry`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{SpanId, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use warden::observe::spans;
use warden::prelude::*;

#[derive(Debug)]
struct PaymentError;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The OpenTelemetry pipeline: tracing → tracing-opentelemetry → SDK → exporter.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_resource(Resource::builder().with_service_name("checkout").build())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("checkout"));
    // Global: the supervisor decides on its own thread, inside the span of the call that asked.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;

    let payments = ServiceSupervisor::builder("payments")
        .timeout(Duration::from_millis(200))
        .retry(RetryConfig::constant(3, Duration::from_millis(10)))
        .start()?;

    // Fails twice, then answers.
    let invocations = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&invocations);
    let charged = payments
        .call(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n < 3 {
                    Err(PaymentError)
                } else {
                    Ok("charged")
                }
            }
        })
        .await;
    assert_eq!(charged.unwrap(), "charged");

    // An operator opens the breaker: the next call is refused without running.
    payments.force_open().await?;
    let refused = payments
        .call(|| async { Ok::<_, PaymentError>("never runs") })
        .await;
    assert!(matches!(refused, Err(CallError::Open { .. })));

    provider.force_flush()?;
    let exported = exporter.get_finished_spans()?;
    print_trees(&exported);

    let calls = exported
        .iter()
        .filter(|s| s.name == spans::CALL_SPAN)
        .count();
    let attempts = exported
        .iter()
        .filter(|s| s.name == spans::ATTEMPT_SPAN)
        .count();
    assert_eq!((calls, attempts), (2, 3));
    provider.shutdown()?;
    Ok(())
}

/// Each call span, its attributes and events, then its attempt spans.
fn print_trees(exported: &[SpanData]) {
    let calls = exported
        .iter()
        .filter(|span| span.parent_span_id == SpanId::INVALID);
    for call in calls {
        print_span(call, "");
        let mut attempts: Vec<&SpanData> = exported
            .iter()
            .filter(|span| span.parent_span_id == call.span_context.span_id())
            .collect();
        attempts.sort_by_key(|span| span.start_time);
        for attempt in attempts {
            print_span(attempt, "    └─ ");
        }
        println!();
    }
}

fn print_span(span: &SpanData, indent: &str) {
    let status = match &span.status {
        Status::Error { .. } => "ERROR",
        Status::Ok => "OK",
        Status::Unset => "unset",
    };
    let attributes: Vec<String> = span
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str().starts_with("warden.") || kv.key.as_str() == "error.type")
        .map(|kv| format!("{}={}", kv.key, kv.value))
        .collect();
    println!(
        "{indent}{} [{:?}, status {status}] {}",
        span.name,
        span.span_kind,
        attributes.join(" ")
    );
    let pad = if indent.is_empty() { "  " } else { "         " };
    for event in span.events.iter() {
        let fields: Vec<String> = event
            .attributes
            .iter()
            .filter(|kv| {
                let key = kv.key.as_str();
                !matches!(key, "level" | "target" | "service") && !key.starts_with("code.")
            })
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        println!("{pad}· event \"{}\" {}", event.name, fields.join(" "));
    }
}
