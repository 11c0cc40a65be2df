//! From an attempt's end to the call's answer: how a failed attempt leaves the call
//! ([`Failure`]), the error classified ([`classify`]), and the supervisor's decision turned
//! into the [`CallError`] the caller gets ([`Last::answer`]). The caller never re-derives a
//! decision: the supervisor says whether and why the retries stop, this file only names it.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crate::actors::supervisor::Stop;
use crate::error::CallError;
use crate::messages::Call;
use crate::outcome::{AttemptOutcome, CallOutcome};

/// How a failed attempt leaves the call.
pub(super) enum Failure<E> {
    /// The call is answered with this error (and counted with this outcome), whatever the
    /// supervisor says: not retryable, a panic, the deadline passed.
    Final(CallError<E>, CallOutcome),
    /// The supervisor decides whether a retry follows.
    Retryable(Last<E>),
}

/// The last retryable failure, kept to build the answer when retrying stops.
#[derive(Debug, PartialEq)]
pub(super) enum Last<E> {
    Error(E),
    TimedOut,
    /// An error injected on purpose (fault injection): there is no `E` to keep.
    Injected,
}

impl<E> Last<E> {
    /// The error it carries, if any.
    pub(super) fn into_error(self) -> Option<E> {
        match self {
            Last::Error(error) => Some(error),
            Last::TimedOut | Last::Injected => None,
        }
    }

    /// The answer when the supervisor stops the retries after `attempts` attempts, and how
    /// the call is counted. A timeout stays a timeout and an injected error is answered as
    /// one, except where the breaker refused the retry (`RetryRefused` keeps the attempts
    /// made and the last error) or the deadline left no time for it (`DeadlineExceeded`,
    /// counted a timeout, keeps them too).
    pub(super) fn answer(self, attempts: u32, stop: Stop) -> (CallError<E>, CallOutcome) {
        if stop == Stop::NoTimeLeft {
            return self.deadline_exceeded(attempts);
        }
        let outcome = match &self {
            Last::TimedOut => CallOutcome::Timeout,
            Last::Error(_) | Last::Injected => CallOutcome::Failure,
        };
        let error = match (self, stop) {
            (last, Stop::Open(retry_after)) => CallError::RetryRefused {
                last: last.into_error(),
                attempts,
                retry_after,
            },
            (Last::TimedOut, _) => CallError::TimedOut { attempts },
            (Last::Injected, _) => CallError::Injected { attempts },
            // With retries switched off, an error is simply the operation's failure.
            (Last::Error(error), Stop::Exhausted) if attempts == 1 => CallError::Failed {
                last: error,
                attempts,
            },
            (Last::Error(last), Stop::Exhausted | Stop::NoTimeLeft | Stop::Final) => {
                // (`NoTimeLeft` is answered above.)
                CallError::RetriesExhausted { last, attempts }
            }
            (Last::Error(last), Stop::Budget) => CallError::BudgetExhausted { last, attempts },
            (Last::Error(last), Stop::Deferred(retry_after)) => CallError::RetryDeferred {
                last,
                attempts,
                retry_after,
            },
        };
        (error, outcome)
    }

    /// The answer when the call's deadline stops it after `attempts` attempts (the next
    /// attempt or retry could not end before it), counted a timeout.
    pub(super) fn deadline_exceeded(self, attempts: u32) -> (CallError<E>, CallOutcome) {
        let error = CallError::DeadlineExceeded {
            attempts,
            last: self.into_error(),
        };
        (error, CallOutcome::Timeout)
    }
}

/// Classifies an attempt's error with the call's classifier (a panicking classifier answers
/// the call `Panicked`): how the breaker records the attempt, how the call goes on, and the
/// dependency's retry-after hint.
pub(super) fn classify<T, E, F>(
    call: &Call<T, E, F>,
    error: E,
    attempts: u32,
) -> (AttemptOutcome, Failure<E>, Option<Duration>) {
    match std::panic::catch_unwind(AssertUnwindSafe(|| call.class_of(&error))) {
        Err(payload) => (
            AttemptOutcome::Panicked,
            Failure::Final(
                CallError::Panicked {
                    message: format!("classifier panicked: {}", panic_message(payload)),
                    attempts,
                },
                CallOutcome::Panic,
            ),
            None,
        ),
        Ok(class) => {
            let outcome = if class.breaker_failure {
                AttemptOutcome::Failure
            } else {
                AttemptOutcome::Ignored
            };
            let failure = if class.retryable {
                Failure::Retryable(Last::Error(error))
            } else {
                Failure::Final(
                    CallError::Failed {
                        last: error,
                        attempts,
                    },
                    CallOutcome::Failure,
                )
            };
            (outcome, failure, class.retry_after)
        }
    }
}

/// The message of a caught panic's payload.
pub(super) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Boom;

    fn answer(last: Last<Boom>, attempts: u32, stop: Stop) -> (CallError<Boom>, CallOutcome) {
        last.answer(attempts, stop)
    }

    #[test]
    fn an_error_out_of_attempts_is_the_operations_failure_when_retries_are_off() {
        let (error, outcome) = answer(Last::Error(Boom), 1, Stop::Exhausted);
        assert!(matches!(
            error,
            CallError::Failed {
                last: Boom,
                attempts: 1
            }
        ));
        assert_eq!(outcome, CallOutcome::Failure);
        let (error, _) = answer(Last::Error(Boom), 3, Stop::Exhausted);
        assert!(matches!(
            error,
            CallError::RetriesExhausted {
                last: Boom,
                attempts: 3
            }
        ));
    }

    #[test]
    fn a_deadline_too_near_for_a_retry_is_the_deadline_with_the_last_error() {
        let (error, outcome) = answer(Last::Error(Boom), 1, Stop::NoTimeLeft);
        assert!(matches!(
            error,
            CallError::DeadlineExceeded {
                last: Some(Boom),
                attempts: 1
            }
        ));
        assert_eq!(outcome, CallOutcome::Timeout);
        for last in [Last::TimedOut, Last::Injected] {
            let (error, outcome) = answer(last, 2, Stop::NoTimeLeft);
            assert!(matches!(
                error,
                CallError::DeadlineExceeded {
                    last: None,
                    attempts: 2
                }
            ));
            assert_eq!(outcome, CallOutcome::Timeout);
        }
    }

    #[test]
    fn a_timeout_stays_a_timeout_and_an_injected_error_stays_injected() {
        for stop in [
            Stop::Exhausted,
            Stop::Budget,
            Stop::Deferred(Duration::ZERO),
        ] {
            let (error, outcome) = answer(Last::TimedOut, 2, stop);
            assert!(
                matches!(error, CallError::TimedOut { attempts: 2 }),
                "{stop:?}"
            );
            assert_eq!(outcome, CallOutcome::Timeout);
            let (error, outcome) = answer(Last::Injected, 2, stop);
            assert!(
                matches!(error, CallError::Injected { attempts: 2 }),
                "{stop:?}"
            );
            assert_eq!(outcome, CallOutcome::Failure);
        }
    }

    #[test]
    fn a_retry_refused_by_the_breaker_keeps_the_attempts_and_the_last_error() {
        let retry_after = Some(Duration::from_secs(3));
        let (error, outcome) = answer(Last::Error(Boom), 2, Stop::Open(retry_after));
        assert!(matches!(
            error,
            CallError::RetryRefused { last: Some(Boom), attempts: 2, retry_after: r } if r == retry_after
        ));
        assert_eq!(outcome, CallOutcome::Failure);
        let (error, outcome) = answer(Last::TimedOut, 1, Stop::Open(None));
        assert!(matches!(
            error,
            CallError::RetryRefused {
                last: None,
                attempts: 1,
                ..
            }
        ));
        assert_eq!(outcome, CallOutcome::Timeout);
    }

    #[test]
    fn budget_and_deferral_name_their_reason() {
        let (error, _) = answer(Last::Error(Boom), 2, Stop::Budget);
        assert!(matches!(
            error,
            CallError::BudgetExhausted {
                last: Boom,
                attempts: 2
            }
        ));
        let wait = Duration::from_secs(60);
        let (error, _) = answer(Last::Error(Boom), 1, Stop::Deferred(wait));
        assert!(matches!(
            error,
            CallError::RetryDeferred { last: Boom, attempts: 1, retry_after } if retry_after == wait
        ));
    }
}
