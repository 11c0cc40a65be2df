//! [`Call`]: run one operation through a supervisor.

use crate::criticality::Criticality;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix::Message;

use crate::error::CallError;
use crate::flights::Coalesce;
use crate::retry::ErrorClass;

/// The future one attempt of a [boxed](Call::boxed) operation returns. It need not be `Send`:
/// a call runs in the task that awaits it.
pub type Operation<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

/// The operation of a [boxed](Call::boxed) call: the type [`Call<T, E>`] names by default.
pub type BoxOperationFn<T, E> = Box<dyn FnMut() -> Operation<T, E> + Send>;

type Classifier<E> = Box<dyn Fn(&E) -> ErrorClass + Send>;

/// A call's fallback, boxed: it receives the call's error and may answer in its place.
pub(crate) type Fallback<T, E> = Box<dyn FnOnce(CallError<E>) -> FallbackFuture<T, E> + Send>;
type FallbackFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, CallError<E>>> + Send>>;

/// Run an operation through a supervisor: timeout per attempt, breaker admission, retries with
/// backoff and budget, health and metrics, and one answer.
///
/// The operation is a closure returning a future, so it can be invoked again for each retry.
/// Every error is [transient](ErrorClass::transient) (retried, counted as a breaker failure)
/// unless a [classifier](Call::classify) says otherwise.
///
/// A call runs in the task that awaits it
/// ([`ServiceHandle::send`](crate::ServiceHandle::send)): the future is `Send` when the
/// operation's closure and future are. `F` is the closure's own type, so nothing is boxed; name
/// a call's type, or keep calls of different closures together, with [`boxed`](Self::boxed),
/// which gives the default `Call<T, E>`.
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
/// let named: Call<String, HttpError> = call.boxed();
/// # let _ = named;
/// ```
pub struct Call<T, E, F = BoxOperationFn<T, E>> {
    pub(crate) operation: F,
    pub(crate) classifier: Option<Classifier<E>>,
    pub(crate) fallback: Option<Fallback<T, E>>,
    pub(crate) coalesce: Option<Coalesce<T, E>>,
    pub(crate) idempotent: bool,
    /// At most one attempt, whatever the retry policy allows ([`Call::no_retry`]).
    pub(crate) no_retry: bool,
    /// Set by [`Call::criticality`]; else the call inherits the current one.
    pub(crate) criticality: Option<Criticality>,
    _answer: PhantomData<fn() -> T>,
}

impl<T, E, F, Fut> Call<T, E, F>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// A call of `operation`, invoked once per attempt.
    pub fn new(operation: F) -> Self {
        Call {
            operation,
            classifier: None,
            fallback: None,
            coalesce: None,
            idempotent: false,
            no_retry: false,
            criticality: None,
            _answer: PhantomData,
        }
    }

    /// The same call with its operation boxed, as the nameable type `Call<T, E>`.
    pub fn boxed(self) -> Call<T, E>
    where
        F: Send + 'static,
        Fut: 'static,
    {
        let mut operation = self.operation;
        Call {
            operation: Box::new(move || -> Operation<T, E> { Box::pin(operation()) }),
            classifier: self.classifier,
            fallback: self.fallback,
            coalesce: self.coalesce,
            idempotent: self.idempotent,
            no_retry: self.no_retry,
            criticality: self.criticality,
            _answer: PhantomData,
        }
    }
}

impl<T, E, F> Call<T, E, F> {
    /// Decides for each error whether it is retried, whether it counts as a breaker failure,
    /// and whether the server gave a retry-after hint. A classifier that panics is contained:
    /// the call is answered [`CallError::Panicked`].
    pub fn classify<C>(mut self, classifier: C) -> Self
    where
        C: Fn(&E) -> ErrorClass + Send + 'static,
    {
        self.classifier = Some(Box::new(classifier));
        self
    }

    /// Answers in the call's place when it fails: `fallback` receives the [`CallError`] and
    /// returns the answer — a value (a cached copy, a default) for the errors it chooses to
    /// cover, or the error itself to pass it on. It runs in the caller's task once the call has
    /// its error, after the bulkhead slot is released; the breaker and health window have
    /// recorded the real outcome by then (a fallback never masks a failure from them). A call
    /// answered by its fallback is counted `fallback`; a fallback that panics is answered
    /// [`CallError::Panicked`].
    ///
    /// ```
    /// use warden::messages::Call;
    /// use warden::CallError;
    ///
    /// # #[derive(Debug)] struct DbError;
    /// let call = Call::new(|| async { Err::<u32, _>(DbError) }).fallback(|error| match error {
    ///     // Serve the cached value while the breaker is open or the bulkhead full...
    ///     CallError::Open { .. } | CallError::Overloaded => Ok(7),
    ///     // ...and let every other error through.
    ///     other => Err(other),
    /// });
    /// # let _ = call;
    /// ```
    pub fn fallback<G>(mut self, fallback: G) -> Self
    where
        G: FnOnce(CallError<E>) -> Result<T, CallError<E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.fallback = Some(Box::new(move |error| {
            Box::pin(std::future::ready(fallback(error)))
        }));
        self
    }

    /// [`fallback`](Self::fallback) computed asynchronously (e.g. read from a local cache or a
    /// secondary store). Its future must be `Send`.
    pub fn fallback_async<G, FFut>(mut self, fallback: G) -> Self
    where
        G: FnOnce(CallError<E>) -> FFut + Send + 'static,
        FFut: Future<Output = Result<T, CallError<E>>> + Send + 'static,
    {
        self.fallback = Some(Box::new(move |error| Box::pin(fallback(error))));
        self
    }

    /// Coalesces this call with the others of the same `key` on the same supervisor
    /// ("singleflight"): while a call with `key` is in flight, a call with the same key waits
    /// for that call's answer and gets a clone of it — the value, or the error — instead of
    /// running the operation. Use it for idempotent reads that many callers make at once (a
    /// cache refill, a configuration fetch), so a burst of them reaches the dependency once.
    ///
    /// - The call that finds no call of its key in flight runs as usual (the *leader*);
    ///   the others (*followers*) take no bulkhead slot and are not admitted by the breaker,
    ///   the throttle or the rate limiter: they only wait. A flight exists only while its
    ///   leader holds a bulkhead slot, so there are at most `max_in_flight` of them.
    /// - Followers get the leader's answer before the leader's fallback runs, and each
    ///   follower's own [fallback](Self::fallback) applies to its copy. A follower is counted
    ///   [`coalesced`](crate::messages::CallCounts::coalesced) (outcome label `coalesced`),
    ///   whatever the answer, unless its own fallback answers it.
    /// - A leader that panics is answered [`CallError::Panicked`], and so are its followers.
    ///   A leader dropped by its caller does not strand its followers: they start over, and
    ///   the first of them to take a bulkhead slot leads a new flight. A follower dropped by
    ///   its caller is counted `cancelled` and leaves the others waiting.
    /// - Keys match within one supervisor and one answer type `Result<T, CallError<E>>`: a
    ///   call whose key is held by a flight of another type runs on its own. Keys are never
    ///   exported as metric labels.
    ///
    /// ```
    /// use warden::messages::Call;
    ///
    /// # #[derive(Debug, Clone)] struct DbError;
    /// # async fn load_user(id: u64) -> Result<String, DbError> { Ok(format!("user {id}")) }
    /// let id = 42;
    /// let call = Call::new(move || load_user(id)).coalesce(format!("user:{id}"));
    /// # let _ = call;
    /// ```
    pub fn coalesce(mut self, key: impl Into<String>) -> Self
    where
        T: Clone + Send + 'static,
        E: Clone + Send + 'static,
    {
        self.coalesce = Some(Coalesce::new(key.into()));
        self
    }

    /// Marks the operation idempotent: running it twice at once does no harm (a read, a PUT of
    /// the same value), so the supervisor may **hedge** it when it is configured to
    /// ([`SupervisorConfig::hedge`](crate::config::SupervisorConfig::hedge)). A call not marked is never
    /// hedged, unless the configuration hedges all calls.
    ///
    /// A hedge is another attempt of the same call, started when the running attempt has not
    /// answered within the hedge delay; the first value wins and the other attempts' futures
    /// are dropped (cancelled). Hedges are only started while the breaker is closed, each spends
    /// one token of the retry budget (so hedging cannot double the load of an overloaded
    /// dependency), and an attempt starts at most `max_hedges` of them. Every attempt is
    /// recorded: a failure in the breaker and the health window as usual, a loser in the health
    /// window with how long it had been running. A hedge does not count against the retry
    /// policy's `max_attempts`.
    ///
    /// ```
    /// use warden::messages::Call;
    ///
    /// # #[derive(Debug)] struct SearchError;
    /// # async fn search(q: &str) -> Result<Vec<String>, SearchError> { Ok(vec![q.to_owned()]) }
    /// let call = Call::new(|| search("rust")).idempotent();
    /// # let _ = call;
    /// ```
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Runs the operation at most once: a retryable failure ends the call as if the retry
    /// policy allowed a single attempt (answered [`CallError::Failed`], or
    /// [`CallError::TimedOut`] after a timeout), and the operation is never invoked a second
    /// time. For a request that cannot be sent twice (not `Clone`, or not idempotent). The
    /// failure is still recorded by the breaker and the health window.
    ///
    /// ```
    /// use warden::messages::Call;
    ///
    /// # #[derive(Debug)] struct PaymentError;
    /// let call = Call::new(|| async { Err::<(), _>(PaymentError) }).no_retry();
    /// # let _ = call;
    /// ```
    pub fn no_retry(mut self) -> Self {
        self.no_retry = true;
        self
    }

    /// The call's [`Criticality`]: which calls the load controls refuse first when there is
    /// not room for every call (see [`criticality`](crate::criticality)). Without it the call
    /// inherits [`Criticality::current`] (the criticality of the call or scope it is made in),
    /// else it is [`Criticality::Default`]. Warden calls made inside this call's operation
    /// inherit it.
    ///
    /// ```
    /// use warden::messages::Call;
    /// use warden::Criticality;
    ///
    /// # #[derive(Debug)] struct FeedError;
    /// // A prefetch: the first call to go when the dependency is short of room.
    /// let call = Call::new(|| async { Ok::<_, FeedError>(vec![1, 2, 3]) })
    ///     .criticality(Criticality::Sheddable);
    /// # let _ = call;
    /// ```
    pub fn criticality(mut self, criticality: Criticality) -> Self {
        self.criticality = Some(criticality);
        self
    }

    pub(crate) fn class_of(&self, error: &E) -> ErrorClass {
        self.classifier
            .as_ref()
            .map_or_else(ErrorClass::transient, |classify| classify(error))
    }
}

impl<T, E, F> fmt::Debug for Call<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("classifier", &self.classifier.is_some())
            .field("fallback", &self.fallback.is_some())
            .field("coalesce", &self.coalesce.as_ref().map(Coalesce::key))
            .field("no_retry", &self.no_retry)
            .field("criticality", &self.criticality)
            .finish_non_exhaustive()
    }
}

/// A call sent to the supervisor's address runs on the supervisor's arbiter (so its future
/// need not be `Send`), through the same attempt loop as a call made with a handle.
impl<T: 'static, E: 'static, F: 'static> Message for Call<T, E, F> {
    type Result = Result<T, CallError<E>>;
}
