//! [`WardenLayer`]: put any [`tower`](https://docs.rs/tower) `Service` — a hyper-util client, a
//! tonic `Channel`, an axum sub-service — behind a supervisor (cargo feature `tower`, on by
//! default).
//!
//! Each request is one supervised call through the [`ServiceHandle`], run by the same attempt
//! loop as [`ServiceHandle::send`]: the breaker admits it, the bulkhead, throttle and rate
//! limit apply, each attempt runs under the timeout, failures are recorded by the breaker and
//! the health window, and the supervisor decides the retries (backoff, budget).
//!
//! - **Classification**: a closure over the inner service's `&Result<Response, Error>`
//!   answers `None` for a success or `Some(`[`ErrorClass`]`)` for a failure, so a response
//!   can be a failure too (an HTTP 503 *response* trips the breaker and is retried like a
//!   connection error). Without one, every `Err` is [transient](ErrorClass::transient) and
//!   every `Ok` a success. An `Err` classified `None` is [ignored](ErrorClass::ignored).
//! - **Retries only when the request is `Clone`**: a layer runs one attempt per request
//!   ([`Call::no_retry`]) unless switched with [`WardenLayer::retry_requests`], which requires
//!   `Request: Clone` and sends a clone of the request in each attempt, through a clone of the
//!   inner service made ready for it.
//! - **Answers**: the error type is [`CallError<S::Error>`](CallError). A *response* the
//!   classifier called a failure is still the dependency's answer: when the call ends on one
//!   (not retryable, attempts or budget spent, breaker opened before the retry), that last
//!   response is returned as `Ok`, after the breaker and the health window have counted it
//!   as a failure (as `tower::retry` returns the last response).
//! - **Readiness**: [`poll_ready`](Service::poll_ready) polls the inner service's readiness,
//!   except while the breaker is open: then the service is ready at once, without polling or
//!   waiting for the inner service, and the request is refused at once with
//!   [`CallError::Open`] without reaching it (like `tower::load_shed`: an `Err` from
//!   `poll_ready` would tell `tower` the service is broken for good, while an open breaker
//!   ends by itself). `poll_ready` fails only when the supervisor is gone
//!   ([`CallError::SupervisorGone`]) or the inner service's readiness fails
//!   ([`CallError::Failed`] with 0 attempts: nothing was sent); [`ServiceHandle::is_open`]
//!   tells a router whether a request would be refused.
//!
//! The inner service must be `Clone` (each call owns a clone made ready for it, the usual
//! tower pattern; wrap one that is not in `tower::buffer::Buffer`), `Send + 'static`, with a
//! `Send` future; the response future is boxed, except for a refusal known at once.
//!
//! It composes with other layers in a `tower::ServiceBuilder`; the layer's own timeout is the
//! supervisor's (per attempt, with retries), an outer `timeout` bounds the whole call.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use warden::prelude::*;
//! use warden::tower::WardenLayer;
//!
//! #[derive(Debug, Clone)]
//! struct Request(&'static str);
//! #[derive(Debug)]
//! struct Response { status: u16 }
//! #[derive(Debug)]
//! struct IoError;
//! # impl std::fmt::Display for IoError {
//! #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("io") }
//! # }
//! # impl std::error::Error for IoError {}
//!
//! # #[actix::main(crate = "actix")]
//! # async fn main() {
//! let handle = ServiceSupervisor::builder("inventory")
//!     .timeout(Duration::from_secs(2))
//!     .retry(RetryConfig::exponential(3, Duration::from_millis(50)))
//!     .start()
//!     .expect("valid configuration");
//!
//! let layer = WardenLayer::new(handle)
//!     // A 5xx response is a failure (retried, counted by the breaker); 4xx is not.
//!     .classify(|result: &Result<Response, IoError>| match result {
//!         Ok(response) if response.status >= 500 => Some(ErrorClass::transient()),
//!         Ok(_) => None,
//!         Err(_) => Some(ErrorClass::transient()),
//!     })
//!     // `Request: Clone`, so a failed attempt may be retried.
//!     .retry_requests();
//!
//! let service = ServiceBuilder::new()
//!     .timeout(Duration::from_secs(10))
//!     .layer(layer)
//!     .service(service_fn(|request: Request| async move {
//!         Ok::<_, IoError>(Response { status: if request.0 == "/" { 200 } else { 404 } })
//!     }));
//! let response = service.oneshot(Request("/")).await.expect("answered");
//! assert_eq!(response.status, 200);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::actors::ServiceHandle;
use crate::error::CallError;
use crate::messages::Call;
use crate::retry::ErrorClass;

/// Decides whether an inner service's answer is a failure: `None` for a success, or the
/// failure's [`ErrorClass`] (retryable? a breaker failure? a retry-after hint?).
///
/// Implemented by every `Fn(&Result<Response, Error>) -> Option<ErrorClass>` and by
/// [`ErrorsAreFailures`], the default.
pub trait Classify<Response, Error> {
    /// The verdict on one attempt's answer.
    fn classify(&self, result: &Result<Response, Error>) -> Option<ErrorClass>;
}

impl<F, Response, Error> Classify<Response, Error> for F
where
    F: Fn(&Result<Response, Error>) -> Option<ErrorClass>,
{
    fn classify(&self, result: &Result<Response, Error>) -> Option<ErrorClass> {
        self(result)
    }
}

/// The default classification: every `Err` is [transient](ErrorClass::transient) (retried when
/// retries are on, a breaker failure), every `Ok` a success.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorsAreFailures;

impl<Response, Error> Classify<Response, Error> for ErrorsAreFailures {
    fn classify(&self, result: &Result<Response, Error>) -> Option<ErrorClass> {
        result.as_ref().err().map(|_| ErrorClass::transient())
    }
}

/// Replay policy of a layer that sends each request once (the default): no retry, so the
/// request need not be `Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleAttempt;

/// Replay policy of a layer that may retry a request ([`WardenLayer::retry_requests`]): each
/// attempt sends a clone of it, so the request must be `Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryRequests;

/// A [`Layer`] that runs a service's requests as supervised calls of one [`ServiceHandle`]
/// (see the [module docs](self)). Cheap to clone.
pub struct WardenLayer<C = ErrorsAreFailures, P = SingleAttempt> {
    handle: Arc<ServiceHandle>,
    classifier: Arc<C>,
    _policy: PhantomData<fn() -> P>,
}

impl WardenLayer {
    /// A layer that runs each request as one call of `handle`'s supervisor: one attempt, every
    /// `Err` a failure.
    pub fn new(handle: ServiceHandle) -> Self {
        WardenLayer {
            handle: Arc::new(handle),
            classifier: Arc::new(ErrorsAreFailures),
            _policy: PhantomData,
        }
    }
}

impl<C, P> WardenLayer<C, P> {
    /// The same layer classifying each answer with `classifier`: `None` for a success,
    /// `Some(class)` for a failure (a response may be one, e.g. an HTTP 5xx).
    pub fn classify<C2>(self, classifier: C2) -> WardenLayer<C2, P> {
        WardenLayer {
            handle: self.handle,
            classifier: Arc::new(classifier),
            _policy: PhantomData,
        }
    }

    /// The same layer retrying failed attempts as the supervisor's retry policy allows; the
    /// request must be `Clone` (each attempt sends a clone).
    pub fn retry_requests(self) -> WardenLayer<C, RetryRequests> {
        WardenLayer {
            handle: self.handle,
            classifier: self.classifier,
            _policy: PhantomData,
        }
    }

    /// The supervisor's handle.
    pub fn handle(&self) -> &ServiceHandle {
        &self.handle
    }
}

impl<C, P> Clone for WardenLayer<C, P> {
    fn clone(&self) -> Self {
        WardenLayer {
            handle: Arc::clone(&self.handle),
            classifier: Arc::clone(&self.classifier),
            _policy: PhantomData,
        }
    }
}

impl<C, P> fmt::Debug for WardenLayer<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WardenLayer")
            .field("service", &self.handle.name())
            .field("policy", &std::any::type_name::<P>())
            .finish_non_exhaustive()
    }
}

impl<S, C, P> Layer<S> for WardenLayer<C, P> {
    type Service = WardenService<S, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        WardenService {
            inner,
            inner_ready: false,
            handle: Arc::clone(&self.handle),
            classifier: Arc::clone(&self.classifier),
            _policy: PhantomData,
        }
    }
}

/// A service whose requests run as supervised calls ([`WardenLayer`]).
pub struct WardenService<S, C = ErrorsAreFailures, P = SingleAttempt> {
    inner: S,
    /// `inner` answered ready to the last `poll_ready`, and no request has used it since.
    inner_ready: bool,
    handle: Arc<ServiceHandle>,
    classifier: Arc<C>,
    _policy: PhantomData<fn() -> P>,
}

impl<S, C, P> WardenService<S, C, P> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The supervisor's handle.
    pub fn handle(&self) -> &ServiceHandle {
        &self.handle
    }

    /// The inner service made ready by `poll_ready`, if it was: taken, leaving a clone in its
    /// place (the usual tower pattern, so the call owns a ready service).
    fn take_ready(&mut self) -> Option<S>
    where
        S: Clone,
    {
        if !std::mem::take(&mut self.inner_ready) {
            return None;
        }
        let clone = self.inner.clone();
        Some(std::mem::replace(&mut self.inner, clone))
    }

    fn poll_ready_inner<Req>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), CallError<S::Error>>>
    where
        S: Service<Req>,
    {
        if !self.handle.is_alive() {
            return Poll::Ready(Err(CallError::SupervisorGone));
        }
        if self.handle.is_open() {
            // Ready: the request will be refused at once, without the inner service.
            self.inner_ready = false;
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                self.inner_ready = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(CallError::Failed {
                last: error,
                attempts: 0,
            })),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: Clone, C, P> Clone for WardenService<S, C, P> {
    fn clone(&self) -> Self {
        WardenService {
            inner: self.inner.clone(),
            inner_ready: false,
            handle: Arc::clone(&self.handle),
            classifier: Arc::clone(&self.classifier),
            _policy: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C, P> fmt::Debug for WardenService<S, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WardenService")
            .field("inner", &self.inner)
            .field("service", &self.handle.name())
            .field("policy", &std::any::type_name::<P>())
            .finish_non_exhaustive()
    }
}

/// The future of a [`WardenService`] call: the supervised call, or a refusal known at once
/// (which allocates nothing).
pub struct ResponseFuture<Response, Error> {
    state: FutureState<Response, Error>,
}

enum FutureState<Response, Error> {
    Refused(Option<CallError<Error>>),
    Call(Pin<Box<dyn Future<Output = Result<Response, CallError<Error>>> + Send>>),
}

impl<Response, Error> ResponseFuture<Response, Error> {
    fn refused(error: CallError<Error>) -> Self {
        ResponseFuture {
            state: FutureState::Refused(Some(error)),
        }
    }

    fn call(
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

impl<S, C, Req> Service<Req> for WardenService<S, C, SingleAttempt>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    C: Classify<S::Response, S::Error> + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_ready_inner(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // Refused at once (open breaker, supervisor gone): nothing built, nothing allocated.
        if let Some(refused) = self.handle.refusal() {
            self.inner_ready = false;
            return ResponseFuture::refused(refused);
        }
        let service = match self.take_ready() {
            Some(ready) => (ready, true),
            None => (self.inner.clone(), false),
        };
        let mut once = Some((service, request, Arc::clone(&self.classifier)));
        let call = Call::new(move || {
            let sent = once.take();
            async move {
                // `no_retry` below: the attempt loop invokes this once, never twice.
                let ((service, ready), request, classifier) =
                    sent.expect("a single-attempt call invokes its operation once");
                attempt(service, ready, request, &*classifier).await
            }
        })
        .classify(Verdict::class)
        .no_retry();
        let handle = Arc::clone(&self.handle);
        ResponseFuture::call(async move { into_answer(handle.send(call).await) })
    }
}

impl<S, C, Req> Service<Req> for WardenService<S, C, RetryRequests>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Clone + Send + 'static,
    C: Classify<S::Response, S::Error> + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_ready_inner(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // Refused at once (open breaker, supervisor gone): nothing built, nothing allocated.
        if let Some(refused) = self.handle.refusal() {
            self.inner_ready = false;
            return ResponseFuture::refused(refused);
        }
        // The first attempt uses the service made ready by `poll_ready`; a retry, a fresh
        // clone made ready for it.
        let mut ready = self.take_ready();
        let template = self.inner.clone();
        let classifier = Arc::clone(&self.classifier);
        let call = Call::new(move || {
            let service = match ready.take() {
                Some(service) => (service, true),
                None => (template.clone(), false),
            };
            let request = request.clone();
            let classifier = Arc::clone(&classifier);
            async move { attempt(service.0, service.1, request, &*classifier).await }
        })
        .classify(Verdict::class);
        let handle = Arc::clone(&self.handle);
        ResponseFuture::call(async move { into_answer(handle.send(call).await) })
    }
}

/// One attempt's answer the classifier called a failure, with its class.
struct Verdict<Response, Error> {
    class: ErrorClass,
    answer: Result<Response, Error>,
}

impl<Response, Error> Verdict<Response, Error> {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// One attempt: the inner service made ready (unless it is), the request sent, the answer
/// classified.
async fn attempt<S, Req, C>(
    mut service: S,
    ready: bool,
    request: Req,
    classifier: &C,
) -> Result<S::Response, Verdict<S::Response, S::Error>>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error>,
{
    let answer = if ready {
        service.call(request).await
    } else {
        match std::future::poll_fn(|cx| service.poll_ready(cx)).await {
            Ok(()) => service.call(request).await,
            Err(error) => Err(error),
        }
    };
    match (classifier.classify(&answer), answer) {
        (None, Ok(response)) => Ok(response),
        (None, Err(error)) => Err(Verdict {
            class: ErrorClass::ignored(),
            answer: Err(error),
        }),
        (Some(class), answer) => Err(Verdict { class, answer }),
    }
}

/// The call's answer for the tower caller: a failed *response* that ended the call is returned
/// as the response; an error is the inner service's error.
fn into_answer<Response, Error>(
    answer: Result<Response, CallError<Verdict<Response, Error>>>,
) -> Result<Response, CallError<Error>> {
    let error = match answer {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    // A verdict that carries a response ends the mapping: that response is the answer.
    match error.try_map_last(|verdict| match verdict.answer {
        Ok(response) => Err(response),
        Err(error) => Ok(error),
    }) {
        Ok(error) => Err(error),
        Err(response) => Ok(response),
    }
}
