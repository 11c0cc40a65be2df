//! [`WardenService`]: each request one supervised call, through the one attempt loop.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::classify::{attempt, into_answer, Classify, ErrorsAreFailures, Verdict};
use super::criticality::{CriticalitySource, NoCriticalityHeader};
use super::deadline::{DeadlineSource, NoDeadlineHeader};
use super::future::ResponseFuture;
use super::replay::{Replay, SingleAttempt};
use crate::actors::ServiceHandle;
use crate::error::CallError;
use crate::messages::Call;
use crate::Deadline;

/// A service whose requests run as supervised calls ([`WardenLayer`](super::WardenLayer)).
pub struct WardenService<
    S,
    C = ErrorsAreFailures,
    P = SingleAttempt,
    D = NoDeadlineHeader,
    K = NoCriticalityHeader,
> {
    inner: S,
    /// `inner` answered ready to the last `poll_ready`, and no request has used it since.
    inner_ready: bool,
    handle: Arc<ServiceHandle>,
    classifier: Arc<C>,
    /// Where a request says how long it may take.
    deadline: Arc<D>,
    /// Where a request says how much it matters.
    criticality: Arc<K>,
    _policy: PhantomData<fn() -> P>,
}

impl<S, C, P, D, K> WardenService<S, C, P, D, K> {
    pub(super) fn new(
        inner: S,
        handle: Arc<ServiceHandle>,
        classifier: Arc<C>,
        deadline: Arc<D>,
        criticality: Arc<K>,
    ) -> Self {
        WardenService {
            inner,
            inner_ready: false,
            handle,
            classifier,
            deadline,
            criticality,
            _policy: PhantomData,
        }
    }

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
        if self.handle.refuses_at_once() {
            // Ready: the request will be refused at once, without the inner service (unless
            // the breaker only observes: then it runs).
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

impl<S: Clone, C, P, D, K> Clone for WardenService<S, C, P, D, K> {
    fn clone(&self) -> Self {
        WardenService {
            inner: self.inner.clone(),
            inner_ready: false,
            handle: Arc::clone(&self.handle),
            classifier: Arc::clone(&self.classifier),
            deadline: Arc::clone(&self.deadline),
            criticality: Arc::clone(&self.criticality),
            _policy: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C, P, D, K> fmt::Debug for WardenService<S, C, P, D, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WardenService")
            .field("inner", &self.inner)
            .field("service", &self.handle.name())
            .field("policy", &std::any::type_name::<P>())
            .field("deadline", &std::any::type_name::<D>())
            .field("criticality", &std::any::type_name::<K>())
            .finish_non_exhaustive()
    }
}

impl<S, C, P, D, K, Req> Service<Req> for WardenService<S, C, P, D, K>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    C: Classify<S::Response, S::Error> + Send + Sync + 'static,
    P: Replay<Req>,
    D: DeadlineSource<Req>,
    K: CriticalitySource<Req>,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_ready_inner(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let criticality = self.criticality.criticality(&request);
        // Refused at once (open breaker, supervisor gone): nothing built, nothing allocated
        // (counted in the request's class).
        if let Some(refused) = crate::criticality::within(criticality, || self.handle.refusal()) {
            self.inner_ready = false;
            return ResponseFuture::refused(refused);
        }
        // The request's deadline runs from now, when it is received.
        let deadline = self.deadline.time_left(&request).map(Deadline::after);
        // The first attempt uses the service made ready by `poll_ready`; any other attempt a
        // fresh clone, made ready for it (cloned only when one may be needed).
        let mut ready = self.take_ready();
        let template = (P::RETRIES || ready.is_none()).then(|| self.inner.clone());
        let classifier = Arc::clone(&self.classifier);
        let mut request = Some(request);
        let call = Call::new(move || {
            let service = match (ready.take(), &template) {
                (Some(service), _) => Some((service, true)),
                (None, Some(template)) => Some((template.clone(), false)),
                (None, None) => None,
            };
            let request = P::replay(&mut request);
            let classifier = Arc::clone(&classifier);
            async move {
                // Without `P::RETRIES` the call is `no_retry`: the attempt loop invokes this
                // once, with the service and the request.
                let ((service, ready), request) = service
                    .zip(request)
                    .expect("a replay policy's call asks for no attempt it cannot send");
                attempt(service, ready, request, &*classifier).await
            }
        })
        .classify(Verdict::class);
        let call = if P::RETRIES { call } else { call.no_retry() };
        let call = match criticality {
            Some(criticality) => call.criticality(criticality),
            None => call,
        };
        let handle = Arc::clone(&self.handle);
        let answer = async move { into_answer(handle.send(call).await) };
        match deadline {
            // The call, and the inner service inside its attempts, run with the deadline.
            Some(deadline) => ResponseFuture::call(deadline.scope(answer)),
            None => ResponseFuture::call(answer),
        }
    }
}
