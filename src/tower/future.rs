//! The future a [`WardenService`](super::WardenService) answers with.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::CallError;

/// The future of a [`WardenService`](super::WardenService) call: the supervised call, or a refusal known at once
/// (which allocates nothing).
pub struct ResponseFuture<Response, Error> {
    state: FutureState<Response, Error>,
}

enum FutureState<Response, Error> {
    Refused(Option<CallError<Error>>),
    Call(Pin<Box<dyn Future<Output = Result<Response, CallError<Error>>> + Send>>),
}

impl<Response, Error> ResponseFuture<Response, Error> {
    pub(super) fn refused(error: CallError<Error>) -> Self {
        ResponseFuture {
            state: FutureState::Refused(Some(error)),
        }
    }

    pub(super) fn call(
        future: impl Future<Output = Result<Response, CallError<Error>>> + Send + 'static,
    ) -> Self {
        ResponseFuture {
            state: FutureState::Call(Box::pin(future)),
        }
    }
}

// Nothing in it is ever pinned in place: the call's future is boxed, a refusal is moved out.
impl<Response, Error> Unpin for ResponseFuture<Response, Error> {}

impl<Response, Error> Future for ResponseFuture<Response, Error> {
    type Output = Result<Response, CallError<Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            FutureState::Refused(error) => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Ready(Err(CallError::Panicked {
                    message: "response future polled after its end".into(),
                    attempts: 0,
                })),
            },
            FutureState::Call(future) => future.as_mut().poll(cx),
        }
    }
}

impl<Response, Error> fmt::Debug for ResponseFuture<Response, Error> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            FutureState::Refused(_) => "refused",
            FutureState::Call(_) => "call",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
