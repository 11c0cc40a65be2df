//! A tower `Service` that calls its inner service through a `recloser` circuit breaker — the
//! glue the tower + recloser peer stack needs (recloser ships no tower layer). Shared by
//! `benches/overhead.rs` and `src/bin/failure_scenarios.rs`, so both measure the same stack.

use std::sync::Arc;
use std::task::{Context, Poll};

use recloser::{AsyncRecloser, RecloserFuture};
use tower::{BoxError, Service};

/// The stack's error: the breaker's refusal, or the inner service's error.
pub type StackError = recloser::Error<BoxError>;

/// A tower service calling its inner service through a recloser.
#[derive(Clone)]
pub struct RecloserService<S> {
    inner: S,
    breaker: Arc<AsyncRecloser>,
}

impl<S> RecloserService<S> {
    /// `inner` guarded by `breaker`.
    pub fn new(inner: S, breaker: Arc<AsyncRecloser>) -> Self {
        RecloserService { inner, breaker }
    }
}

impl<S, Req> Service<Req> for RecloserService<S>
where
    S: Service<Req, Error = BoxError>,
{
    type Response = S::Response;
    type Error = StackError;
    type Future = RecloserFuture<S::Future, recloser::AnyError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(recloser::Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        self.breaker.call(self.inner.call(request))
    }
}
