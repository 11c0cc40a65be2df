//! The gates a call passes before its first attempt, in this order: the **breaker** (the
//! published state: open refuses here, half-open asks the supervisor later, at admission),
//! the adaptive **throttle** (only calls the breaker admits on its own, closed), the **rate
//! limit** (a token now, or a reserved one waited for up to `max_wait`), **back-pressure**
//! (wait for the supervisor to drain when its hand-off is backed up), and the **bulkhead** (a
//! slot, or refused). A refusal allocates nothing and takes no slot; it is answered by
//! [`fallback::refused`](super::fallback::refused).
//!
//! A gate whose policy only observes ([`PolicyMode::Observe`](crate::mode::PolicyMode)) refuses
//! nothing: at its refusal point it counts the call `would_reject` and lets it through, a
//! shadow for that policy ([`Shadow`]). Nothing is read for it on the path of a call that no
//! gate would refuse.

use std::time::Duration;

use crate::actors::handle::ServiceHandle;
use crate::actors::shared::admission::Admission;
use crate::actors::shared::bulkhead::SlotGuard;
use crate::actors::shared::handoff::Drain;
use crate::actors::shared::rate_limit::Token;
use crate::actors::shared::report::Report;
use crate::actors::shared::shadow::Shadow;
use crate::actors::shared::Published;
use crate::breaker::BreakerState;
use crate::criticality::Criticality;
use crate::error::CallError;
use crate::outcome::{CallOutcome, RejectReason};

/// Why a call was refused before it took a slot.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// The breaker is open (for `retry_after` more, when known).
    Open(Option<Duration>),
    /// The adaptive throttle refuses this share of calls.
    Throttled(f64),
    /// The rate limit has no token soon enough.
    RateLimited(Duration),
    /// The bulkhead is full.
    Overloaded,
}

impl Refusal {
    /// The reason label it is counted under.
    pub(crate) fn reason(self) -> RejectReason {
        match self {
            Refusal::Open(_) => RejectReason::Open,
            Refusal::Throttled(_) => RejectReason::Throttled,
            Refusal::RateLimited(_) => RejectReason::RateLimited,
            Refusal::Overloaded => RejectReason::Overloaded,
        }
    }

    /// The caller's answer.
    pub(crate) fn error<E>(self) -> CallError<E> {
        match self {
            Refusal::Open(retry_after) => CallError::Open { retry_after },
            Refusal::Throttled(probability) => CallError::Throttled { probability },
            Refusal::RateLimited(retry_after) => CallError::RateLimited { retry_after },
            Refusal::Overloaded => CallError::Overloaded,
        }
    }

    /// Answers a call of `criticality` without a fallback with the refusal, counted.
    pub(crate) fn refuse<T, E>(
        self,
        published: &Published,
        criticality: Criticality,
    ) -> Result<T, CallError<E>> {
        published.refuse(self.reason(), criticality);
        Err(self.error())
    }
}

/// How a call left the gates without a slot.
pub(super) enum Stopped {
    /// Refused by a gate (still to be answered, through the fallback if there is one).
    Refused(Refusal),
    /// The supervisor is gone.
    Gone,
    /// No tokio runtime to wait for a token with.
    NoRuntime,
}

/// The breaker gate: a refusal of the published state (`admission`), unless the breaker only
/// observes: then the refusal is counted `would_reject` and the call goes ahead as a shadow
/// for the breaker ([`Admission::Shadow`]). A breaker an operator forced open refuses in
/// either mode.
#[inline]
pub(super) fn breaker(
    handle: &ServiceHandle,
    admission: Admission,
    criticality: Criticality,
) -> Result<Admission, Refusal> {
    let Admission::Refused(retry_after) = admission else {
        return Ok(admission);
    };
    let published = &handle.published;
    if published.observing.load().breaker()
        && published.admission.state() != Some(BreakerState::ForcedOpen)
    {
        tracing::debug!(service = %handle.name, ?retry_after, "circuit open, observed: call let through");
        published.would_reject(RejectReason::Open, criticality);
        return Ok(Admission::Shadow);
    }
    tracing::debug!(service = %handle.name, ?retry_after, "call rejected: circuit open");
    Err(Refusal::Open(retry_after))
}

/// The breaker gate from the published state (or the admission [`precheck`](super::precheck)
/// made), then the throttle; with the policies the call is a shadow for (observe-only mode).
#[inline(always)]
pub(super) fn admission(
    handle: &ServiceHandle,
    prechecked: Option<Admission>,
    criticality: Criticality,
) -> Result<(Admission, Shadow), Refusal> {
    let published = &handle.published;
    let admission = match prechecked {
        Some(admission) => admission,
        None => breaker(handle, published.admission.admit(), criticality)?,
    };
    // The throttle only sheds calls the breaker admits on its own (closed), the less
    // critical first.
    if matches!(admission, Admission::Local(_)) {
        if let Some(probability) = published.throttle.refuses(criticality) {
            if !published.observing.load().throttle() {
                tracing::debug!(service = %handle.name, probability, "call rejected: throttled");
                return Err(Refusal::Throttled(probability));
            }
            tracing::debug!(service = %handle.name, probability, "throttled, observed: call let through");
            published.would_reject(RejectReason::Throttled, criticality);
            return Ok((admission, Shadow::THROTTLE));
        }
    }
    let shadow = match admission {
        Admission::Shadow => Shadow::BREAKER,
        _ => Shadow::NONE,
    };
    Ok((admission, shadow))
}

/// What [`slot_at_once`] found.
pub(super) enum Slot<'a> {
    /// The call's slot and its rate-limit token (spent when dropped, handed back with
    /// [`give_back`]), or why there is none.
    Ready(Result<(SlotGuard<'a>, Option<Token>), Stopped>),
    /// The call must wait first ([`slot_after_waiting`]): for its token, or for the supervisor
    /// to drain (back-pressure).
    Wait(Option<Token>),
}

/// The rate limit, back-pressure and the bulkhead, without waiting: the common case takes its
/// slot here, and builds no future for the waits it does not need. A call of `criticality`
/// leaves the shares reserved for more critical calls.
#[inline(always)]
pub(super) fn slot_at_once(handle: &ServiceHandle, criticality: Criticality) -> Slot<'_> {
    let published = &handle.published;
    let reserved = published.reserves.of(criticality);
    let mut token = match published.rate_limit.acquire_keeping(reserved) {
        Ok(token) => token,
        Err(limited) if published.observing.load().rate_limit() => {
            tracing::debug!(service = %handle.name, retry_after = ?limited.retry_after, "rate limited, observed: call let through without a token");
            published.would_reject(RejectReason::RateLimited, criticality);
            None
        }
        Err(limited) => {
            tracing::debug!(service = %handle.name, retry_after = ?limited.retry_after, "call rejected: rate limited");
            return Slot::Ready(Err(Stopped::Refused(Refusal::RateLimited(
                limited.retry_after,
            ))));
        }
    };
    if token.as_ref().is_some_and(Token::must_wait) {
        if published.observing.load().rate_limit() {
            token = token.and_then(|token| without_waiting(handle, token, criticality));
        } else {
            return Slot::Wait(token);
        }
    }
    if published.reports.is_backed_up() {
        return Slot::Wait(token);
    }
    Slot::Ready(take_slot(handle, token, criticality))
}

/// A rate limit that only observes makes no call wait: the call goes at once with its token
/// (taken as when enforced, so the bucket decides alike), unless enforcing would have refused
/// it (its inherited deadline passes before the token's turn): then it goes without the token,
/// handed back, counted `would_reject`. A fleet call waiting for a lease goes at once without a
/// token, not counted: whether the lease would have come in time is not known without waiting.
fn without_waiting(
    handle: &ServiceHandle,
    token: Token,
    criticality: Criticality,
) -> Option<Token> {
    let published = &handle.published;
    match token.wait() {
        Some(wait)
            if crate::deadline::Deadline::current().is_some_and(|d| d.remaining() <= wait) =>
        {
            tracing::debug!(service = %handle.name, retry_after = ?wait, "rate limited, observed: call let through without a token");
            give_back(published, Some(token));
            published.would_reject(RejectReason::RateLimited, criticality);
            None
        }
        _ => token.without_wait(),
    }
}

/// Waits for the call's rate-limit token (at most the configured `max_wait`, reserved by
/// [`slot_at_once`]; refused instead when the call's inherited [`Deadline`](crate::deadline::Deadline)
/// would pass first) and for back-pressure, then takes the slot. A caller that gives up while
/// waiting is counted `cancelled` like any other, and hands its token back.
pub(super) async fn slot_after_waiting(
    handle: &ServiceHandle,
    token: Option<Token>,
    criticality: Criticality,
) -> Result<(SlotGuard<'_>, Option<Token>), Stopped> {
    let published = &handle.published;
    let mut waiting = Waiting {
        published,
        token,
        waiting: false,
    };
    if waiting.token.as_ref().is_some_and(Token::must_wait)
        && tokio::runtime::Handle::try_current().is_err()
    {
        give_back(published, waiting.token.take());
        return Err(Stopped::NoRuntime);
    }
    if matches!(waiting.token, Some(Token::Lease)) {
        // A fleet quota with no leased token in hand: wait for the next lease.
        waiting.waiting = true;
        // At most `max_wait`, and never past the call's inherited deadline.
        let leased = match crate::deadline::Deadline::current() {
            Some(deadline) => {
                tokio::time::timeout(deadline.remaining(), published.rate_limit.wait_for_lease())
                    .await
                    .unwrap_or(Err(crate::ratelimit::RateLimited {
                        retry_after: Duration::from_millis(1),
                    }))
            }
            None => published.rate_limit.wait_for_lease().await,
        };
        waiting.waiting = false;
        match leased {
            Ok(token) => waiting.token = token,
            Err(limited) => {
                waiting.token = None;
                tracing::debug!(service = %handle.name, retry_after = ?limited.retry_after, "call rejected: rate limited");
                return Err(Stopped::Refused(Refusal::RateLimited(limited.retry_after)));
            }
        }
    }
    if let Some(wait) = waiting.token.as_ref().and_then(Token::wait) {
        // Not waited for when the call's inherited deadline would pass first: no time
        // would be left to make the call.
        if crate::deadline::Deadline::current().is_some_and(|d| d.remaining() <= wait) {
            give_back(published, waiting.token.take());
            return Err(Stopped::Refused(Refusal::RateLimited(wait)));
        }
        waiting.waiting = true;
        tokio::time::sleep(wait).await;
        waiting.waiting = false;
    }
    let token = waiting.token.take();
    if published.reports.is_backed_up() {
        // The supervisor is not keeping up with the reports: wait for it to drain them
        // (back-pressure) rather than let them pile up.
        if handle.addr.send(Drain).await.is_err() {
            give_back(published, token);
            return Err(Stopped::Gone);
        }
    }
    take_slot(handle, token, criticality)
}

/// The bulkhead: a slot (below the share of `criticality`), or refused (the token goes back).
#[inline(always)]
fn take_slot(
    handle: &ServiceHandle,
    token: Option<Token>,
    criticality: Criticality,
) -> Result<(SlotGuard<'_>, Option<Token>), Stopped> {
    let published = &handle.published;
    match SlotGuard::try_take(published, criticality) {
        Some(slot) => {
            if slot.over_limit {
                tracing::debug!(service = %handle.name, "concurrency limit reached, observed: call let through");
                published.would_reject(RejectReason::Overloaded, criticality);
            }
            Ok((slot, token))
        }
        None => {
            tracing::debug!(service = %handle.name, "call rejected: too many in flight");
            give_back(published, token);
            Err(Stopped::Refused(Refusal::Overloaded))
        }
    }
}

/// Hands back the rate-limit token of a call that will not be sent.
pub(super) fn give_back(published: &Published, token: Option<Token>) {
    if let Some(token) = token {
        published.rate_limit.release(token);
    }
}

/// A call waiting for its rate-limit token: if dropped while waiting, the call is counted
/// `cancelled` and its token handed back.
struct Waiting<'a> {
    published: &'a Published,
    token: Option<Token>,
    waiting: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.waiting {
            give_back(self.published, self.token.take());
            self.published
                .report(Report::answered(CallOutcome::Cancelled, Duration::ZERO));
        }
    }
}
