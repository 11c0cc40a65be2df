//! [`WardenMiddleware`]: every request of a [`reqwest_middleware`] client runs through a warden
//! supervisor, one per host by default (cargo feature `reqwest`).
//!
//! # Why
//!
//! An HTTP client is the dependency a service has most of, and one client talks to many hosts.
//! A retry middleware alone (reqwest-retry) keeps retrying a host that is down, with no
//! breaker to stop it and no budget to cap the extra load; one breaker around the whole
//! client opens for every host when one of them fails. `WardenMiddleware` runs each request as
//! a supervised call under **its host's own supervisor** (a [keyed](crate::keyed) service,
//! key `host:port`), so a failing host opens its own breaker and no other, its retries are
//! decided by its supervisor (backoff, retry budget, the server's `Retry-After`, the
//! deadline), and the time the call has left travels to the server in a header.
//!
//! # How a request runs
//!
//! - **Which supervisor**: [`WardenMiddleware::keyed`] picks the request's host's ([`host_key`]
//!   of its URL) from a [`KeyedHandle`], which starts one on the host's first request and
//!   keeps their number bounded; [`WardenMiddleware::service`] sends every request through one
//!   [`ServiceHandle`] (a client of a single API).
//! - **What is a failure** ([`default_classify`]): a 5xx or 429 response is a failure
//!   (retried, counted by the breaker) with its `Retry-After` as the retry hint
//!   ([`retry_after`]: seconds or an HTTP-date); so is 408, a connect error, a timeout and any
//!   other error sending the request. Another 4xx is [ignored](crate::retry::ErrorClass::ignored): the request was
//!   wrong, not the host (no retry, not a breaker failure). Replace it with
//!   [`WardenMiddleware::classify`].
//! - **What may be sent twice**: a request is retried (and, when the supervisor
//!   [hedges](crate::SupervisorConfig::hedge), hedged) only when its method is idempotent
//!   (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) or it carries the [`Idempotent`] extension, and
//!   its body can be cloned (no body, or a buffered one: `Request::try_clone` succeeds).
//!   Anything else is sent once ([`Call::no_retry`]) — the failure is still counted.
//!   [`WardenMiddleware::retry_non_idempotent`] retries every method.
//! - **The deadline travels**: each attempt runs inside its cut-off ([`Deadline::current`]:
//!   the supervisor's per-attempt timeout, or sooner the call's deadline, inherited from the
//!   caller's [`Deadline::scope`] or a `warden::tower::WardenLayer` that read
//!   one); the time left is written into the attempt's request as `grpc-timeout` (or the
//!   [`DeadlineHeader`] of [`WardenMiddleware::deadline_header`]), replacing any value there,
//!   so the server can stop when the caller will. A request whose deadline has passed is not
//!   sent.
//! - **The criticality travels**: a request made while serving a call that is not default
//!   ([`Criticality::current`](crate::Criticality::current): set on the caller's call, or its
//!   scope, or read from an incoming request by `warden::tower::WardenLayer::criticality_header`)
//!   carries it in `x-warden-criticality` (or the [`CriticalityHeader`] of
//!   [`WardenMiddleware::criticality_header`]), so the server sheds it in the same class. The
//!   request's call has that criticality here too.
//! - **Other middleware**: the middlewares after this one (closer to the network) run once
//!   per attempt; those before it once per request. Each attempt gets a copy of the request's
//!   `Extensions` as they were when it reached this middleware; the caller sees the ones of
//!   the attempt that answered. Do not stack a retry middleware under it: the retries would
//!   multiply.
//!
//! # What the caller gets
//!
//! - **A response, even a failed one.** A response classified as a failure that ends the call
//!   (attempts spent, the retry budget spent, a `Retry-After` above the policy's `max_delay`,
//!   the breaker opened before the retry, the deadline left no time) is returned as `Ok`, after
//!   the breaker and the health window counted it: the caller reads the last 503 or 429 (and
//!   its `Retry-After`) as without the middleware, as reqwest-retry returns it.
//! - **Otherwise an error**, `reqwest_middleware::Error::Middleware` holding a [`WardenError`]
//!   (find it with [`WardenError::of`]): the supervisor's [`CallError`], with its lowercase
//!   message (`circuit breaker is open`, `retries exhausted after 3 attempt(s): error sending
//!   request for url …`) and the last attempt's reqwest error, if any, as
//!   [`WardenError::last`] and the error's source.
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use warden::prelude::*;
//! use warden::reqwest::{WardenError, WardenMiddleware};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = RegistryHandle::start()?;
//! // One supervisor per host, each started from this configuration on its first request.
//! let hosts = registry
//!     .spawn_keyed("http", SupervisorConfig::http_api())
//!     .await?;
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(WardenMiddleware::keyed(hosts.clone()))
//!     .build();
//!
//! match client.get("http://inventory.internal/items/7").send().await {
//!     // A 503 after the retries is still a response.
//!     Ok(response) => println!("{}", response.status()),
//!     Err(error) => match WardenError::of(&error).map(WardenError::call_error) {
//!         Some(CallError::Open { retry_after }) => println!("host down, try in {retry_after:?}"),
//!         _ => println!("{error}"),
//!     },
//! }
//! // The host's own supervisor: its breaker, health, counts.
//! let inventory = hosts.key("inventory.internal:80").expect("started by the request");
//! println!("{:?}", inventory.breaker_status().await?);
//! # Ok(()) }
//! ```
//!
//! `examples/reqwest_client.rs` runs the same against a loopback server it starts
//! (`cargo run --features reqwest --example reqwest_client`).
//!
//! [`Call::no_retry`]: crate::messages::Call::no_retry
//! [`Deadline::current`]: crate::Deadline::current
//! [`Deadline::scope`]: crate::Deadline::scope
//! [`CallError`]: crate::CallError
//! [`KeyedHandle`]: crate::KeyedHandle
//! [`ServiceHandle`]: crate::ServiceHandle

mod classify;
mod error;

use std::fmt;
use std::sync::{Mutex, PoisonError};

use http::Extensions;
use reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next};

use crate::actors::{KeyedHandle, ServiceHandle};
use crate::messages::Call;
use crate::retry::ErrorClass;

pub use crate::criticality::CriticalityHeader;
pub use crate::deadline::DeadlineHeader;
pub use classify::{default_classify, retry_after, DefaultClassifier};
pub use error::WardenError;

use classify::is_idempotent;
use error::{into_answer, Verdict};

/// A `reqwest_middleware::Middleware` that runs each request as a supervised call (see the
/// [module docs](self)): per host through a [`KeyedHandle`], or through one
/// [`ServiceHandle`].
///
/// ```
/// # fn f(handle: warden::ServiceHandle) {
/// use warden::reqwest::{DeadlineHeader, WardenMiddleware};
///
/// let middleware = WardenMiddleware::service(handle)
///     .deadline_header(DeadlineHeader::millis("x-deadline-ms"));
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(middleware)
///     .build();
/// # let _ = client;
/// # }
/// ```
pub struct WardenMiddleware<C = DefaultClassifier> {
    route: Route,
    classifier: C,
    /// Where the time left is written; `None`: not sent.
    deadline_header: Option<DeadlineHeader>,
    /// Where a criticality that is not default is written; `None`: not sent.
    criticality_header: Option<CriticalityHeader>,
    /// Every method may be retried, not only the idempotent ones.
    retry_non_idempotent: bool,
}

/// Which supervisor a request runs under.
#[derive(Clone)]
enum Route {
    /// Its host's, by [`host_key`].
    Keyed(KeyedHandle),
    /// This one, for every request.
    Service(ServiceHandle),
}

/// A request extension that marks one request as safe to send more than once, whatever its
/// method (e.g. a POST carrying an idempotency key): it may be retried and hedged, if its body
/// can be cloned.
///
/// ```no_run
/// # async fn f(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// use warden::reqwest::Idempotent;
///
/// let response = client
///     .post("http://payments.internal/charges")
///     .header("idempotency-key", "order-7")
///     .body("{\"amount\": 100}")
///     .with_extension(Idempotent)
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Idempotent;

impl WardenMiddleware {
    /// Each request under its host's own supervisor in `hosts` (key [`host_key`] of its URL,
    /// started on the host's first request), classified by [`default_classify`], sending the
    /// time left as `grpc-timeout`.
    pub fn keyed(hosts: KeyedHandle) -> Self {
        WardenMiddleware::new(Route::Keyed(hosts))
    }

    /// Every request under the one supervisor of `handle`, classified by
    /// [`default_classify`], sending the time left as `grpc-timeout`.
    pub fn service(handle: ServiceHandle) -> Self {
        WardenMiddleware::new(Route::Service(handle))
    }

    fn new(route: Route) -> Self {
        WardenMiddleware {
            route,
            classifier: default_classify,
            deadline_header: Some(DeadlineHeader::grpc_timeout()),
            criticality_header: Some(CriticalityHeader::default()),
            retry_non_idempotent: false,
        }
    }
}

impl<C> WardenMiddleware<C> {
    /// The same middleware classifying each attempt's answer with `classifier`: `None` for a
    /// success, `Some(class)` for a failure (a response may be one). An `Err` classified
    /// `None` is [ignored](ErrorClass::ignored). Build on [`default_classify`] to change a
    /// few cases.
    pub fn classify<C2>(self, classifier: C2) -> WardenMiddleware<C2>
    where
        C2: Fn(&Result<Response, reqwest_middleware::Error>) -> Option<ErrorClass>
            + Send
            + Sync
            + 'static,
    {
        WardenMiddleware {
            route: self.route,
            classifier,
            deadline_header: self.deadline_header,
            criticality_header: self.criticality_header,
            retry_non_idempotent: self.retry_non_idempotent,
        }
    }

    /// The same middleware writing the time left into `header` (e.g.
    /// [`DeadlineHeader::millis`]`("x-warden-deadline-ms")`) instead of `grpc-timeout`.
    pub fn deadline_header(mut self, header: DeadlineHeader) -> Self {
        self.deadline_header = Some(header);
        self
    }

    /// The same middleware sending no deadline header (the deadline still bounds the
    /// attempts).
    pub fn without_deadline_header(mut self) -> Self {
        self.deadline_header = None;
        self
    }

    /// The same middleware writing a criticality that is not default into `header` (e.g.
    /// [`CriticalityHeader::named`]`("x-priority")`) instead of `x-warden-criticality`.
    pub fn criticality_header(mut self, header: CriticalityHeader) -> Self {
        self.criticality_header = Some(header);
        self
    }

    /// The same middleware sending no criticality header (the request's call is still shed
    /// in its class here).
    pub fn without_criticality_header(mut self) -> Self {
        self.criticality_header = None;
        self
    }

    /// The same middleware retrying requests of every method (POST and PATCH too), when their
    /// body can be cloned. Only for an API whose every request is safe to repeat; for one
    /// request, mark it [`Idempotent`] instead. Only the idempotent methods and the marked
    /// requests are marked for hedging ([`Call::idempotent`]); a supervisor configured to
    /// hedge all calls ([`HedgeConfig::all_calls`](crate::hedge::HedgeConfig::all_calls)) hedges
    /// these too.
    pub fn retry_non_idempotent(mut self) -> Self {
        self.retry_non_idempotent = true;
        self
    }

    /// The keyed service the requests run under, if the middleware is [`keyed`](WardenMiddleware::keyed).
    pub fn hosts(&self) -> Option<&KeyedHandle> {
        match &self.route {
            Route::Keyed(hosts) => Some(hosts),
            Route::Service(_) => None,
        }
    }

    /// The supervisor a request to `url` runs under now: its host's (if the host has one
    /// live), or the middleware's one service.
    pub fn handle_for(&self, url: &Url) -> Option<ServiceHandle> {
        match &self.route {
            Route::Keyed(hosts) => hosts.key(&host_key(url)),
            Route::Service(handle) => Some(handle.clone()),
        }
    }
}

/// The key of a URL's host in a keyed service: `host:port`, the port explicit or the
/// scheme's (`http://example.com/a` → `example.com:80`, `https://[::1]:8443/` →
/// `[::1]:8443`); empty for a URL without a host.
///
/// ```
/// use warden::reqwest::host_key;
///
/// let url = reqwest::Url::parse("https://api.example.com/v1/items?page=2").unwrap();
/// assert_eq!(host_key(&url), "api.example.com:443");
/// ```
pub fn host_key(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    }
}

/// The supervisor of one request.
enum Target<'a> {
    /// Its host's.
    Key(&'a KeyedHandle, String),
    /// The middleware's one service.
    One(&'a ServiceHandle),
}

/// Where each attempt's request comes from.
enum Requests {
    /// A request that may be sent again: each attempt sends a clone.
    Replay(Request),
    /// A request sent once: the first attempt takes it.
    Once(Option<Request>),
}

impl Requests {
    fn next(&mut self) -> Option<Request> {
        match self {
            Requests::Replay(request) => request.try_clone(),
            Requests::Once(request) => request.take(),
        }
    }
}

impl<C> WardenMiddleware<C>
where
    C: Fn(&Result<Response, reqwest_middleware::Error>) -> Option<ErrorClass> + Sync,
{
    async fn send(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let marked = extensions.get::<Idempotent>().is_some();
        let idempotent = marked || is_idempotent(request.method());
        let replay = (idempotent || self.retry_non_idempotent)
            && request.body().is_none_or(|body| body.as_bytes().is_some());
        let target = match &self.route {
            Route::Keyed(hosts) => Target::Key(hosts, host_key(request.url())),
            Route::Service(handle) => Target::One(handle),
        };

        let header = self.deadline_header.as_ref();
        let criticality_header = self.criticality_header.as_ref();
        let classifier = &self.classifier;
        let template = &*extensions;
        // The extensions of the attempt that answered last (a hedge that lost is dropped
        // before it answers).
        let answered: Mutex<Option<Extensions>> = Mutex::new(None);
        let mut requests = if replay {
            Requests::Replay(request)
        } else {
            Requests::Once(Some(request))
        };
        let call = Call::new(|| {
            let request = requests.next();
            let mut extensions = template.clone();
            let next = next.clone();
            let answered = &answered;
            async move {
                let mut request =
                    request.expect("a request that cannot be cloned is sent once (no_retry)");
                // Read when the attempt starts, inside its cut-off.
                if let Some(header) = header {
                    header.insert_current(request.headers_mut());
                }
                // The call's criticality: its attempts run with it.
                if let Some(header) = criticality_header {
                    header.insert_current(request.headers_mut());
                }
                let answer = next.run(request, &mut extensions).await;
                *answered.lock().unwrap_or_else(PoisonError::into_inner) = Some(extensions);
                match classifier(&answer) {
                    None => answer.map_err(|error| Verdict {
                        class: ErrorClass::ignored(),
                        answer: Err(error),
                    }),
                    Some(class) => Err(Verdict { class, answer }),
                }
            }
        })
        .classify(Verdict::class);
        let call = match (replay, idempotent) {
            (false, _) => call.no_retry(),
            (true, true) => call.idempotent(),
            (true, false) => call,
        };
        let answer = match target {
            Target::Key(hosts, key) => hosts.send(&key, call).await,
            Target::One(handle) => handle.send(call).await,
        };
        if let Some(answered) = answered
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            *extensions = answered;
        }
        into_answer(answer)
    }
}

#[async_trait::async_trait]
impl<C> Middleware for WardenMiddleware<C>
where
    C: Fn(&Result<Response, reqwest_middleware::Error>) -> Option<ErrorClass>
        + Send
        + Sync
        + 'static,
{
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.send(request, extensions, next).await
    }
}

impl<C> Clone for WardenMiddleware<C>
where
    C: Clone,
{
    fn clone(&self) -> Self {
        WardenMiddleware {
            route: self.route.clone(),
            classifier: self.classifier.clone(),
            deadline_header: self.deadline_header.clone(),
            criticality_header: self.criticality_header.clone(),
            retry_non_idempotent: self.retry_non_idempotent,
        }
    }
}

impl<C> fmt::Debug for WardenMiddleware<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (route, name) = match &self.route {
            Route::Keyed(hosts) => ("keyed", hosts.name()),
            Route::Service(handle) => ("service", handle.name()),
        };
        f.debug_struct("WardenMiddleware")
            .field(route, &name)
            .field("classifier", &std::any::type_name::<C>())
            .field(
                "deadline_header",
                &self.deadline_header.as_ref().map(DeadlineHeader::name),
            )
            .field(
                "criticality_header",
                &self
                    .criticality_header
                    .as_ref()
                    .map(CriticalityHeader::name),
            )
            .field("retry_non_idempotent", &self.retry_non_idempotent)
            .finish()
    }
}
