//! What an inner service's answer means: the classifier's verdict ([`Classify`]), one attempt
//! sent through the inner service, and the call's answer turned back into the service's.

use tower_service::Service;

use crate::error::CallError;
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

/// One attempt's answer the classifier called a failure, with its class.
pub(super) struct Verdict<Response, Error> {
    class: ErrorClass,
    answer: Result<Response, Error>,
}

impl<Response, Error> Verdict<Response, Error> {
    pub(super) fn class(&self) -> ErrorClass {
        self.class
    }
}

/// One attempt: the inner service made ready (unless it is), the request sent, the answer
/// classified.
pub(super) async fn attempt<S, Req, C>(
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
pub(super) fn into_answer<Response, Error>(
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
