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
//!   answers `None` for a success or `Some(`[`ErrorClass`](crate::retry::ErrorClass)`)` for a failure, so a response
//!   can be a failure too (an HTTP 503 *response* trips the breaker and is retried like a
//!   connection error). Without one, every `Err` is [transient](crate::retry::ErrorClass::transient) and
//!   every `Ok` a success. An `Err` classified `None` is [ignored](crate::retry::ErrorClass::ignored).
//! - **Retries only when the request is `Clone`**: a layer runs one attempt per request
//!   ([`Call::no_retry`](crate::messages::Call::no_retry)) unless switched with [`WardenLayer::retry_requests`], which requires
//!   `Request: Clone` and sends a clone of the request in each attempt, through a clone of the
//!   inner service made ready for it.
//! - **Answers**: the error type is [`CallError<S::Error>`](crate::CallError). A *response* the
//!   classifier called a failure is still the dependency's answer: when the call ends on one
//!   (not retryable, attempts or budget spent, breaker opened before the retry), that last
//!   response is returned as `Ok`, after the breaker and the health window have counted it
//!   as a failure (as `tower::retry` returns the last response).
//! - **Readiness**: [`poll_ready`](tower_service::Service::poll_ready) polls the inner service's readiness,
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
//! - **Deadlines**: with [`WardenLayer::deadline_header`], a request that brings its deadline
//!   in a header (`grpc-timeout`, or milliseconds: [`DeadlineHeader`]) runs with it, and the
//!   inner service runs inside it: every warden call it makes inherits what is left
//!   ([`Deadline`](crate::Deadline)); [`DeadlineHeader::current`] writes what is left into
//!   the requests it sends on.
//! - **Criticality**: with [`WardenLayer::criticality_header`], a request that says how much
//!   it matters (`x-warden-criticality: critical`, `default` or `sheddable`:
//!   [`CriticalityHeader`]) is a call of that [`Criticality`](crate::Criticality): shed in its
//!   class under overload, and inherited by every warden call the inner service makes
//!   ([`CriticalityHeader::current`] writes it into the requests it sends on; the `reqwest`
//!   feature's middleware does it for every request).
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
//!
//! [`CallError::Open`]: crate::CallError::Open
//! [`CallError::SupervisorGone`]: crate::CallError::SupervisorGone
//! [`CallError::Failed`]: crate::CallError::Failed

mod classify;
mod criticality;
mod deadline;
mod future;
mod replay;
mod service;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tower_layer::Layer;

use crate::actors::ServiceHandle;

pub use classify::{Classify, ErrorsAreFailures};
pub use criticality::{CriticalityHeader, CriticalitySource, NoCriticalityHeader};
pub use deadline::{DeadlineHeader, DeadlineSource, NoDeadlineHeader};
pub use future::ResponseFuture;
pub use replay::{Replay, RetryRequests, SingleAttempt};
pub use service::WardenService;

/// A [`Layer`] that runs a service's requests as supervised calls of one [`ServiceHandle`]
/// (see the [module docs](self)). Cheap to clone.
pub struct WardenLayer<
    C = ErrorsAreFailures,
    P = SingleAttempt,
    D = NoDeadlineHeader,
    K = NoCriticalityHeader,
> {
    handle: Arc<ServiceHandle>,
    classifier: Arc<C>,
    deadline: Arc<D>,
    criticality: Arc<K>,
    _policy: PhantomData<fn() -> P>,
}

impl WardenLayer {
    /// A layer that runs each request as one call of `handle`'s supervisor: one attempt, every
    /// `Err` a failure, no deadline read from the request.
    pub fn new(handle: ServiceHandle) -> Self {
        WardenLayer {
            handle: Arc::new(handle),
            classifier: Arc::new(ErrorsAreFailures),
            deadline: Arc::new(NoDeadlineHeader),
            criticality: Arc::new(NoCriticalityHeader),
            _policy: PhantomData,
        }
    }
}

impl<C, P, D, K> WardenLayer<C, P, D, K> {
    /// The same layer classifying each answer with `classifier`: `None` for a success,
    /// `Some(class)` for a failure (a response may be one, e.g. an HTTP 5xx).
    pub fn classify<C2>(self, classifier: C2) -> WardenLayer<C2, P, D, K> {
        WardenLayer {
            handle: self.handle,
            classifier: Arc::new(classifier),
            deadline: self.deadline,
            criticality: self.criticality,
            _policy: PhantomData,
        }
    }

    /// The same layer retrying failed attempts as the supervisor's retry policy allows; the
    /// request must be `Clone` (each attempt sends a clone).
    pub fn retry_requests(self) -> WardenLayer<C, RetryRequests, D, K> {
        WardenLayer {
            handle: self.handle,
            classifier: self.classifier,
            deadline: self.deadline,
            criticality: self.criticality,
            _policy: PhantomData,
        }
    }

    /// The same layer reading each request's deadline from `source`, usually a
    /// [`DeadlineHeader`] of an `http::Request` (`grpc-timeout`, or milliseconds under a name
    /// of your choice). A request that says how long it may take runs with that
    /// [`Deadline`](crate::Deadline), counted from when the layer receives it: its call's
    /// deadline is the sooner of that one and the supervisor's, the inner service runs
    /// inside it (so the calls it makes inherit it), and a request whose time is already up
    /// (`0m`) is answered [`CallError::DeadlineExceeded`] at once, without reaching the inner
    /// service. A request without the header (or with a value that is not one) brings no
    /// deadline.
    ///
    /// ```
    /// # fn f(handle: warden::ServiceHandle) {
    /// use warden::tower::{DeadlineHeader, WardenLayer};
    ///
    /// let layer = WardenLayer::new(handle).deadline_header(DeadlineHeader::grpc_timeout());
    /// # }
    /// ```
    ///
    /// [`CallError::DeadlineExceeded`]: crate::CallError::DeadlineExceeded
    pub fn deadline_header<D2>(self, source: D2) -> WardenLayer<C, P, D2, K> {
        WardenLayer {
            handle: self.handle,
            classifier: self.classifier,
            deadline: Arc::new(source),
            criticality: self.criticality,
            _policy: PhantomData,
        }
    }

    /// The same layer reading each request's [`Criticality`](crate::Criticality) from
    /// `source`, usually a [`CriticalityHeader`] of an `http::Request`
    /// (`x-warden-criticality: critical` by default). A request that says how much it matters
    /// is one call of that criticality: shed in its class by the throttle, the bulkhead, the
    /// adaptive limit and the rate limit, and inherited by every warden call the inner service
    /// makes while serving it (an HTTP client with the `reqwest` feature's middleware sends it
    /// on). A request without the header (or with a value that is not one) is as critical as
    /// the scope the service is called in.
    ///
    /// ```
    /// # fn f(handle: warden::ServiceHandle) {
    /// use warden::tower::{CriticalityHeader, DeadlineHeader, WardenLayer};
    ///
    /// let layer = WardenLayer::new(handle)
    ///     .deadline_header(DeadlineHeader::grpc_timeout())
    ///     .criticality_header(CriticalityHeader::default());
    /// # }
    /// ```
    pub fn criticality_header<K2>(self, source: K2) -> WardenLayer<C, P, D, K2> {
        WardenLayer {
            handle: self.handle,
            classifier: self.classifier,
            deadline: self.deadline,
            criticality: Arc::new(source),
            _policy: PhantomData,
        }
    }

    /// The supervisor's handle.
    pub fn handle(&self) -> &ServiceHandle {
        &self.handle
    }
}

impl<C, P, D, K> Clone for WardenLayer<C, P, D, K> {
    fn clone(&self) -> Self {
        WardenLayer {
            handle: Arc::clone(&self.handle),
            classifier: Arc::clone(&self.classifier),
            deadline: Arc::clone(&self.deadline),
            criticality: Arc::clone(&self.criticality),
            _policy: PhantomData,
        }
    }
}

impl<C, P, D, K> fmt::Debug for WardenLayer<C, P, D, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WardenLayer")
            .field("service", &self.handle.name())
            .field("policy", &std::any::type_name::<P>())
            .field("deadline", &std::any::type_name::<D>())
            .field("criticality", &std::any::type_name::<K>())
            .finish_non_exhaustive()
    }
}

impl<S, C, P, D, K> Layer<S> for WardenLayer<C, P, D, K> {
    type Service = WardenService<S, C, P, D, K>;

    fn layer(&self, inner: S) -> Self::Service {
        WardenService::new(
            inner,
            Arc::clone(&self.handle),
            Arc::clone(&self.classifier),
            Arc::clone(&self.deadline),
            Arc::clone(&self.criticality),
        )
    }
}
