//! [`Call`]: run one operation through a supervisor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix::Message;

use crate::actors::SlotGuard;
use crate::error::CallError;
use crate::retry::ErrorClass;

/// The future one attempt of an operation returns. It runs on the supervisor's arbiter thread,
/// so it does not need to be `Send`.
pub type Operation<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

type OperationFn<T, E> = Box<dyn FnMut() -> Operation<T, E> + Send>;
type Classifier<E> = Box<dyn Fn(&E) -> ErrorClass + Send>;

/// Run an operation through a supervisor: timeout per attempt, breaker admission, retries with
/// backoff and budget, health and metrics, and one reply.
///
/// The operation is a closure returning a future, so it can be invoked again for each retry.
/// Every error is [transient](ErrorClass::transient) (retried, counted as a breaker failure)
/// unless a [classifier](Call::classify) says otherwise.
///
/// ```
/// use warden::messages::Call;
/// use warden::retry::ErrorClass;
///
/// #[derive(Debug)]
/// enum HttpError { Status(u16) }
///
/// let call = Call::new(|| async { Err::<String, _>(HttpError::Status(404)) })
///     .classify(|e: &HttpError| match e {
///         HttpError::Status(429) => ErrorClass::transient(),
///         HttpError::Status(s) if *s >= 500 => ErrorClass::transient(),
///         HttpError::Status(_) => ErrorClass::ignored(),
///     });
/// # let _ = call;
/// ```
pub struct Call<T, E> {
    pub(crate) operation: OperationFn<T, E>,
    pub(crate) classifier: Option<Classifier<E>>,
    /// The bulkhead slot a [`ServiceHandle`](crate::ServiceHandle) took for this call, if
    /// any; released when the call is dropped, even if no supervisor ever handles it.
    pub(crate) slot: Option<SlotGuard>,
}

impl<T, E> Call<T, E> {
    /// A call of `operation`, invoked once per attempt.
    pub fn new<F, Fut>(mut operation: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
    {
        Call {
            operation: Box::new(move || Box::pin(operation())),
            classifier: None,
            slot: None,
        }
    }

    /// Decides for each error whether it is retried, whether it counts as a breaker failure,
    /// and whether the server gave a retry-after hint.
    pub fn classify<C>(mut self, classifier: C) -> Self
    where
        C: Fn(&E) -> ErrorClass + Send + 'static,
    {
        self.classifier = Some(Box::new(classifier));
        self
    }

    pub(crate) fn class_of(&self, error: &E) -> ErrorClass {
        self.classifier
            .as_ref()
            .map_or_else(ErrorClass::transient, |classify| classify(error))
    }
}

impl<T, E> fmt::Debug for Call<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("classifier", &self.classifier.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: 'static, E: 'static> Message for Call<T, E> {
    type Result = Result<T, CallError<E>>;
}
