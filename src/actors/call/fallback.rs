//! The fallback: a call that fails, or is refused, and has one is answered by it. Its panics
//! are caught like the operation's.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use super::answer::panic_message;
use super::gates::Refusal;
use super::trace::{note, Note};
use crate::actors::shared::report::Report;
use crate::actors::shared::Published;
use crate::criticality::Criticality;
use crate::error::CallError;
use crate::messages::Fallback;
use crate::outcome::CallOutcome;

/// Answers a call refused before it took a slot: with the refusal itself (no future, no
/// allocation: the cheapest path there is), or with its fallback. The refusal is counted
/// either way; the call's answer as what answered it (returned with it).
pub(super) async fn refused<T, E>(
    published: &Published,
    refusal: Refusal,
    criticality: Criticality,
    fallback: Option<Fallback<T, E>>,
) -> (Result<T, CallError<E>>, CallOutcome) {
    let Some(fallback) = fallback else {
        return (
            refusal.refuse(published, criticality),
            CallOutcome::Rejected,
        );
    };
    let mut outcome = None;
    let result = serve(fallback, refusal.error(), 0, &mut outcome).await;
    // The fallback may pass the refusal on: then it is the answer.
    let outcome = outcome.unwrap_or(CallOutcome::Rejected);
    published.report(Report::refused(refusal.reason(), criticality, outcome));
    (result, outcome)
}

/// Runs the fallback on `error`; sets `outcome` to `Fallback` when it produced a value (and
/// says so in the call's span), or to `Panic` when it panicked (answered `Panicked`).
pub(super) async fn serve<T, E>(
    fallback: Fallback<T, E>,
    error: CallError<E>,
    attempts: u32,
    outcome: &mut Option<CallOutcome>,
) -> Result<T, CallError<E>> {
    let panicked = |payload| CallError::Panicked {
        message: format!("fallback panicked: {}", panic_message(payload)),
        attempts,
    };
    let replaced = error.kind();
    let future = match std::panic::catch_unwind(AssertUnwindSafe(move || fallback(error))) {
        Ok(future) => future,
        Err(payload) => {
            *outcome = Some(CallOutcome::Panic);
            return Err(panicked(payload));
        }
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(value)) => {
            *outcome = Some(CallOutcome::Fallback);
            note(Note::FallbackServed(replaced));
            Ok(value)
        }
        Ok(Err(error)) => Err(error),
        Err(payload) => {
            *outcome = Some(CallOutcome::Panic);
            Err(panicked(payload))
        }
    }
}
