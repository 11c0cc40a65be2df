//! [`ErrorClass`]: what a classifier decides about one failed attempt.

use std::time::Duration;

/// How one error is treated by the retry loop and the circuit breaker.
///
/// Produced by the user's classifier for every error; errors that are not classified get
/// [`ErrorClass::transient`] (the [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorClass {
    /// The attempt may be retried (subject to attempts left, backoff and the retry budget).
    pub retryable: bool,
    /// The error counts as a failure of the dependency for the circuit breaker.
    pub breaker_failure: bool,
    /// The server's hint for how long to wait before trying again (e.g. HTTP 429/503
    /// `Retry-After`). Only consulted when the error is retryable.
    pub retry_after: Option<Duration>,
}

impl ErrorClass {
    /// Retryable and a breaker failure: timeouts, connection resets, 5xx. The default.
    pub const fn transient() -> Self {
        ErrorClass {
            retryable: true,
            breaker_failure: true,
            retry_after: None,
        }
    }

    /// Not retryable but a breaker failure: the dependency is broken in a way a retry will
    /// not fix (e.g. a corrupt response).
    pub const fn permanent() -> Self {
        ErrorClass {
            retryable: false,
            breaker_failure: true,
            retry_after: None,
        }
    }

    /// Neither retryable nor a breaker failure: the dependency is fine, the request was
    /// wrong (e.g. HTTP 4xx other than 429).
    pub const fn ignored() -> Self {
        ErrorClass {
            retryable: false,
            breaker_failure: false,
            retry_after: None,
        }
    }

    /// The same class carrying the server's retry-after hint. Does not change
    /// [`retryable`](Self::retryable): `ErrorClass::transient().with_retry_after(d)` is the
    /// usual HTTP 429 classification.
    pub const fn with_retry_after(self, hint: Duration) -> Self {
        ErrorClass {
            retry_after: Some(hint),
            ..self
        }
    }
}

impl Default for ErrorClass {
    fn default() -> Self {
        ErrorClass::transient()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_exact_flags() {
        assert_eq!(
            ErrorClass::transient(),
            ErrorClass {
                retryable: true,
                breaker_failure: true,
                retry_after: None
            }
        );
        assert_eq!(
            ErrorClass::permanent(),
            ErrorClass {
                retryable: false,
                breaker_failure: true,
                retry_after: None
            }
        );
        assert_eq!(
            ErrorClass::ignored(),
            ErrorClass {
                retryable: false,
                breaker_failure: false,
                retry_after: None
            }
        );
        assert_eq!(ErrorClass::default(), ErrorClass::transient());
    }

    #[test]
    fn retry_after_keeps_the_other_flags() {
        const TOO_MANY_REQUESTS: ErrorClass =
            ErrorClass::transient().with_retry_after(Duration::from_secs(3));
        assert_eq!(
            TOO_MANY_REQUESTS,
            ErrorClass {
                retryable: true,
                breaker_failure: true,
                retry_after: Some(Duration::from_secs(3))
            }
        );

        let ignored = ErrorClass::ignored().with_retry_after(Duration::from_millis(5));
        assert!(!ignored.retryable);
        assert!(!ignored.breaker_failure);
        assert_eq!(ignored.retry_after, Some(Duration::from_millis(5)));
    }
}
