//! Replay policies: whether a request can be sent more than once, and how. The layer's one
//! `Service` impl asks its policy for each attempt's request.

/// How a [`WardenService`](super::WardenService) gets the request for each attempt. Sealed:
/// [`SingleAttempt`] (the default) or [`RetryRequests`].
pub trait Replay<Req>: sealed::Sealed + Send + Sync + 'static {
    /// Whether the call may make more than one attempt (else it is
    /// [`Call::no_retry`](crate::messages::Call::no_retry)).
    const RETRIES: bool;

    /// The request for the next attempt (`None` once it cannot be sent again).
    fn replay(request: &mut Option<Req>) -> Option<Req>;
}

/// Replay policy of a layer that sends each request once (the default): no retry, so the
/// request need not be `Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleAttempt;

/// Replay policy of a layer that may retry a request ([`WardenLayer::retry_requests`]): each
/// attempt sends a clone of it, so the request must be `Clone`.
///
/// [`WardenLayer::retry_requests`]: super::WardenLayer::retry_requests
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryRequests;

impl<Req> Replay<Req> for SingleAttempt {
    const RETRIES: bool = false;

    fn replay(request: &mut Option<Req>) -> Option<Req> {
        request.take()
    }
}

impl<Req: Clone> Replay<Req> for RetryRequests {
    const RETRIES: bool = true;

    fn replay(request: &mut Option<Req>) -> Option<Req> {
        request.clone()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::SingleAttempt {}
    impl Sealed for super::RetryRequests {}
}
