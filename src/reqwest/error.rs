//! The answer a request through the middleware gets: the response (even a failed one), or a
//! [`WardenError`] saying why there is none.

use std::fmt;

use reqwest::Response;

use crate::error::CallError;
use crate::retry::ErrorClass;

/// Why a request through a [`WardenMiddleware`](super::WardenMiddleware) got no response:
/// the supervisor's [`CallError`], with the last attempt's reqwest error in it when an attempt
/// failed with one.
///
/// It reaches the caller as `reqwest_middleware::Error::Middleware`, whose message is the
/// `CallError`'s (lowercase: `circuit breaker is open`, `retries exhausted after 3
/// attempt(s): error sending request …`); find it again with [`WardenError::of`]. Its
/// [`source`](std::error::Error::source) is the last attempt's error, so code that walks an
/// error's chain for a `reqwest::Error` still finds it.
///
/// ```
/// use warden::reqwest::WardenError;
/// use warden::CallError;
///
/// fn is_breaker_open(error: &reqwest_middleware::Error) -> bool {
///     matches!(
///         WardenError::of(error).map(WardenError::call_error),
///         Some(CallError::Open { .. })
///     )
/// }
/// # let _ = is_breaker_open;
/// ```
#[derive(Debug)]
pub struct WardenError {
    error: CallError<reqwest_middleware::Error>,
}

impl WardenError {
    /// The warden error inside `error`, when the middleware answered it (`None` for an error
    /// of reqwest or of another middleware).
    pub fn of(error: &reqwest_middleware::Error) -> Option<&WardenError> {
        match error {
            reqwest_middleware::Error::Middleware(error) => error.downcast_ref(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }

    /// Why: refused (`Open`, `Overloaded`, `Throttled`, `RateLimited`), out of time
    /// (`TimedOut`, `DeadlineExceeded`) or out of attempts with an error (`RetriesExhausted`,
    /// `Failed`, …).
    pub fn call_error(&self) -> &CallError<reqwest_middleware::Error> {
        &self.error
    }

    /// The [`CallError`], owned.
    pub fn into_call_error(self) -> CallError<reqwest_middleware::Error> {
        self.error
    }

    /// The last attempt's own error (e.g. a reqwest connect error), when it failed with one.
    pub fn last(&self) -> Option<&reqwest_middleware::Error> {
        self.error.operation_error()
    }
}

impl fmt::Display for WardenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for WardenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.last().map(|error| error as _)
    }
}

impl From<WardenError> for reqwest_middleware::Error {
    fn from(error: WardenError) -> Self {
        reqwest_middleware::Error::middleware(error)
    }
}

/// One attempt's answer the classifier called a failure, with its class.
pub(super) struct Verdict {
    pub(super) class: ErrorClass,
    pub(super) answer: Result<Response, reqwest_middleware::Error>,
}

impl Verdict {
    pub(super) fn class(&self) -> ErrorClass {
        self.class
    }
}

/// The call's answer for the middleware's caller: a response the classifier called a failure
/// that ended the call (no attempt left, not retryable, a hint too long, a breaker that opened
/// before the retry) is still the host's answer and is returned as the response; every other
/// end is a [`WardenError`].
// The closure's `Err` is the response, moved straight out: boxing it would allocate for no gain.
#[allow(clippy::result_large_err)]
pub(super) fn into_answer(
    answer: Result<Response, CallError<Verdict>>,
) -> reqwest_middleware::Result<Response> {
    let error = match answer {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    match error.try_map_last(|verdict| match verdict.answer {
        Ok(response) => Err(response),
        Err(error) => Ok(error),
    }) {
        Ok(error) => Err(WardenError { error }.into()),
        Err(response) => Ok(response),
    }
}
