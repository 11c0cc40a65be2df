//! A [coalesced](crate::messages::Call::coalesce) call's side of the
//! [flights](crate::flights): a follower waits for its leader's answer
//! (counted `coalesced`, or through its own fallback), and starts over when the leader was
//! cancelled.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::fallback;
use super::trace::Counted;
use crate::actors::shared::report::Report;
use crate::actors::shared::Published;
use crate::error::CallError;
use crate::messages::Fallback;
use crate::outcome::CallOutcome;

/// A coalesced call waits for its flight's leader: `None` when the leader was cancelled (the
/// call starts over); else the leader's answer, through this call's fallback, if any, and how
/// the call was counted. The call's duration runs from `started`, else from now.
pub(super) async fn follow<T, E>(
    published: &Arc<Published>,
    answer: oneshot::Receiver<Result<T, CallError<E>>>,
    fallback: &mut Option<Fallback<T, E>>,
    started: Option<Instant>,
) -> Option<Counted<T, E>> {
    let mut follower = Follower {
        published,
        started: started.unwrap_or_else(Instant::now),
        answered: false,
    };
    let Ok(answer) = answer.await else {
        // Not counted: the call goes on.
        follower.answered = true;
        return None;
    };
    let mut outcome = None;
    let answer = match (answer, fallback.take()) {
        (Err(error), Some(fallback)) => {
            let attempts = error.attempts();
            fallback::serve(fallback, error, attempts, &mut outcome).await
        }
        (answer, _) => answer,
    };
    let outcome = outcome.unwrap_or(CallOutcome::Coalesced);
    follower.finish(outcome);
    Some((answer, Some(outcome)))
}

/// A coalesced call waiting for its leader: counted `cancelled` if dropped before its answer.
struct Follower<'a> {
    published: &'a Published,
    started: Instant,
    answered: bool,
}

impl Follower<'_> {
    fn finish(mut self, outcome: CallOutcome) {
        self.answered = true;
        self.published
            .report(Report::answered(outcome, self.started.elapsed()));
    }
}

impl Drop for Follower<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.published.report(Report::answered(
                CallOutcome::Cancelled,
                self.started.elapsed(),
            ));
        }
    }
}
