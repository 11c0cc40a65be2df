//! Errors: [`CallError`] for a call that did not produce a value, [`ConfigError`] for a
//! configuration that cannot be used.

use std::time::Duration;

/// Why a call through a supervisor did not produce a value.
///
/// Every call gets exactly one reply: the operation's value or one of these. Messages are
/// lowercase so they compose inside larger error messages.
///
/// It is `Clone` when `E` is: the answer of a [coalesced](crate::messages::Call::coalesce)
/// call is shared with every call that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The circuit breaker rejected the call without running it (open, forced open, or
    /// half-open with all probe slots taken).
    #[error("circuit breaker is open")]
    Open {
        /// Time until the breaker lets a probe through, when known.
        retry_after: Option<Duration>,
    },
    /// The last attempt ran longer than the per-attempt timeout and was cancelled.
    #[error("timed out after {attempts} attempt(s)")]
    TimedOut {
        /// Attempts made, including the one that timed out.
        attempts: u32,
    },
    /// The call's deadline — its supervisor's overall [`deadline`](crate::SupervisorConfig::deadline),
    /// or a sooner one it inherited ([`Deadline`](crate::Deadline)) — passed, or left too little
    /// time for what came next: the attempt in flight was cancelled at the deadline, or the
    /// next attempt or retry was not started because it could not end before it. A call whose
    /// deadline had passed before its first attempt is answered so at once, with 0 attempts:
    /// its operation did not run.
    #[error("deadline exceeded after {attempts} attempt(s)")]
    DeadlineExceeded {
        /// Attempts started before the deadline (0: it had passed before the first).
        attempts: u32,
        /// The error of the last attempt, when it failed with one and the deadline left no
        /// time for its retry; `None` when the deadline cut the attempt off (or it timed out,
        /// or no attempt ran).
        last: Option<E>,
    },
    /// The operation failed with an error the classifier marked as not retryable.
    #[error("operation failed: {last}")]
    Failed {
        /// The operation's error (its last attempt's, the only one when retries are off).
        last: E,
        /// Attempts made.
        attempts: u32,
    },
    /// Every allowed attempt failed with a retryable error.
    #[error("retries exhausted after {attempts} attempt(s): {last}")]
    RetriesExhausted {
        /// The error of the last attempt.
        last: E,
        /// Attempts made.
        attempts: u32,
    },
    /// A retry was due but the retry budget was spent: retrying would multiply load on a
    /// dependency that is already failing.
    #[error("retry rejected by budget after {attempts} attempt(s): {last}")]
    BudgetExhausted {
        /// The error of the last attempt.
        last: E,
        /// Attempts made.
        attempts: u32,
    },
    /// The call's attempts failed, and before its retry the breaker opened (tripped by these
    /// failures or by others'), so the retry was refused. Unlike [`CallError::Open`] the
    /// operation did run: this is not a rejection, and a non-idempotent request may have
    /// taken effect.
    #[error("retry refused by the circuit breaker after {attempts} attempt(s)")]
    RetryRefused {
        /// The error of the last attempt; `None` when it timed out (or its failure was
        /// [injected](CallError::Injected)).
        last: Option<E>,
        /// Attempts made.
        attempts: u32,
        /// Time until the breaker lets a probe through, when known.
        retry_after: Option<Duration>,
    },
    /// The last attempt's error asked to be retried after `retry_after` (a server's
    /// `Retry-After`, through the classifier), longer than the retry policy's `max_delay`:
    /// it was not retried. Try again after `retry_after`.
    #[error("retry deferred by {retry_after:?} after {attempts} attempt(s): {last}")]
    RetryDeferred {
        /// The error of the last attempt.
        last: E,
        /// Attempts made.
        attempts: u32,
        /// How long the dependency asked to wait.
        retry_after: Duration,
    },
    /// The adaptive throttle refused the call without running it: the dependency has been
    /// refusing calls, and this client sheds the part of its load the dependency did not
    /// accept (client-side adaptive throttling, Google SRE book).
    #[error("throttled: the dependency accepts too few calls (refusing {:.0}%)", probability * 100.0)]
    Throttled {
        /// The probability with which calls were being refused.
        probability: f64,
    },
    /// The rate limiter refused the call without running it: no token within `max_wait`.
    #[error("rate limited: next call allowed in {retry_after:?}")]
    RateLimited {
        /// How long until a call would be let through.
        retry_after: Duration,
    },
    /// The dependency already has the maximum number of calls in flight (bulkhead).
    #[error("too many calls in flight")]
    Overloaded,
    /// The operation panicked. The panic was caught and counted as a failure; it is not retried.
    #[error("operation panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
        /// Attempts made, including the one that panicked.
        attempts: u32,
    },
    /// The last attempt failed with a fault injected on purpose ([fault injection](crate::chaos),
    /// cargo feature `fault-injection`): the operation was not called for it. Injected errors
    /// are transient breaker failures, retried like any; this is the answer when the call ends
    /// on one (retries exhausted, budget spent, or a single attempt).
    #[error("fault injected after {attempts} attempt(s)")]
    Injected {
        /// Attempts made, the injected one included.
        attempts: u32,
    },
    /// The supervisor is not running (stopped, or its arbiter is gone).
    #[error("supervisor is not running")]
    SupervisorGone,
    /// The call had to wait for a timer (its attempt's timeout, or a backoff delay) but was
    /// awaited outside a tokio runtime, where nothing can time it. Calls run in the task that
    /// awaits them: await them inside a tokio (or actix) runtime with its time driver enabled.
    /// An attempt that had started was dropped (cancelled).
    #[error("call awaited outside a tokio runtime after {attempts} attempt(s)")]
    NoRuntime {
        /// Attempts started, including the one that was dropped.
        attempts: u32,
    },
}

impl<E> CallError<E> {
    /// The operation's own error, when the call failed with one.
    pub fn operation_error(&self) -> Option<&E> {
        match self {
            CallError::Failed { last: error, .. } => Some(error),
            CallError::RetriesExhausted { last, .. }
            | CallError::BudgetExhausted { last, .. }
            | CallError::RetryDeferred { last, .. } => Some(last),
            CallError::RetryRefused { last, .. } | CallError::DeadlineExceeded { last, .. } => {
                last.as_ref()
            }
            _ => None,
        }
    }

    /// How long to wait before calling again, when the answer says: the breaker's remaining
    /// open time ([`Open`](CallError::Open), [`RetryRefused`](CallError::RetryRefused)) or
    /// the dependency's own hint ([`RetryDeferred`](CallError::RetryDeferred)).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Open { retry_after } | CallError::RetryRefused { retry_after, .. } => {
                *retry_after
            }
            CallError::RetryDeferred { retry_after, .. }
            | CallError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Attempts that actually ran the operation (0 when the call was rejected before running).
    pub fn attempts(&self) -> u32 {
        match self {
            CallError::TimedOut { attempts }
            | CallError::DeadlineExceeded { attempts, .. }
            | CallError::Failed { attempts, .. }
            | CallError::RetriesExhausted { attempts, .. }
            | CallError::BudgetExhausted { attempts, .. }
            | CallError::Panicked { attempts, .. }
            | CallError::RetryRefused { attempts, .. }
            | CallError::RetryDeferred { attempts, .. }
            | CallError::Injected { attempts }
            | CallError::NoRuntime { attempts } => *attempts,
            CallError::Open { .. }
            | CallError::Throttled { .. }
            | CallError::RateLimited { .. }
            | CallError::Overloaded
            | CallError::SupervisorGone => 0,
        }
    }

    /// The same answer with the operation's error (`last`, in the variants that carry one)
    /// mapped by `f`; when `f` answers `Err(b)` instead, the mapping stops and `b` is returned
    /// (the tower layer uses it to return a failed *response* as the response). Every other
    /// field is kept.
    pub fn try_map_last<E2, B>(
        self,
        f: impl FnOnce(E) -> Result<E2, B>,
    ) -> Result<CallError<E2>, B> {
        Ok(match self {
            CallError::Failed { last, attempts } => CallError::Failed {
                last: f(last)?,
                attempts,
            },
            CallError::RetriesExhausted { last, attempts } => CallError::RetriesExhausted {
                last: f(last)?,
                attempts,
            },
            CallError::BudgetExhausted { last, attempts } => CallError::BudgetExhausted {
                last: f(last)?,
                attempts,
            },
            CallError::RetryDeferred {
                last,
                attempts,
                retry_after,
            } => CallError::RetryDeferred {
                last: f(last)?,
                attempts,
                retry_after,
            },
            CallError::RetryRefused {
                last,
                attempts,
                retry_after,
            } => CallError::RetryRefused {
                last: last.map(f).transpose()?,
                attempts,
                retry_after,
            },
            CallError::Open { retry_after } => CallError::Open { retry_after },
            CallError::TimedOut { attempts } => CallError::TimedOut { attempts },
            CallError::DeadlineExceeded { attempts, last } => CallError::DeadlineExceeded {
                last: last.map(f).transpose()?,
                attempts,
            },
            CallError::Throttled { probability } => CallError::Throttled { probability },
            CallError::RateLimited { retry_after } => CallError::RateLimited { retry_after },
            CallError::Overloaded => CallError::Overloaded,
            CallError::Panicked { message, attempts } => CallError::Panicked { message, attempts },
            CallError::Injected { attempts } => CallError::Injected { attempts },
            CallError::SupervisorGone => CallError::SupervisorGone,
            CallError::NoRuntime { attempts } => CallError::NoRuntime { attempts },
        })
    }

    /// The same answer with the operation's error mapped by `f` (see
    /// [`try_map_last`](Self::try_map_last)).
    pub fn map_last<E2>(self, f: impl FnOnce(E) -> E2) -> CallError<E2> {
        match self.try_map_last(|last| Ok::<E2, std::convert::Infallible>(f(last))) {
            Ok(error) => error,
            Err(never) => match never {},
        }
    }

    /// The variant's snake_case name (`open`, `timed_out`, `deadline_exceeded`, `failed`,
    /// `retries_exhausted`, `budget_exhausted`, `retry_refused`, `retry_deferred`,
    /// `throttled`, `rate_limited`, `overloaded`, `panicked`, `injected`, `supervisor_gone`,
    /// `no_runtime`): a bounded value that names the answer without the operation's error,
    /// recorded as `error.type` on a failed call's [span](crate::observe::spans).
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Open { .. } => "open",
            CallError::TimedOut { .. } => "timed_out",
            CallError::DeadlineExceeded { .. } => "deadline_exceeded",
            CallError::Failed { .. } => "failed",
            CallError::RetriesExhausted { .. } => "retries_exhausted",
            CallError::BudgetExhausted { .. } => "budget_exhausted",
            CallError::RetryRefused { .. } => "retry_refused",
            CallError::RetryDeferred { .. } => "retry_deferred",
            CallError::Throttled { .. } => "throttled",
            CallError::RateLimited { .. } => "rate_limited",
            CallError::Overloaded => "overloaded",
            CallError::Panicked { .. } => "panicked",
            CallError::Injected { .. } => "injected",
            CallError::SupervisorGone => "supervisor_gone",
            CallError::NoRuntime { .. } => "no_runtime",
        }
    }

    /// True when the call was refused before any attempt ran (open breaker, throttle, rate
    /// limit, overload): the dependency saw no traffic from it. False for
    /// [`SupervisorGone`](CallError::SupervisorGone), which can also end a call mid-attempt.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            CallError::Open { .. }
                | CallError::Throttled { .. }
                | CallError::RateLimited { .. }
                | CallError::Overloaded
        )
    }
}

/// A query or command could not reach the supervisor: it is stopped or its arbiter is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("supervisor is not running")]
pub struct SupervisorGone;

/// Why a control operation on a supervisor
/// ([`inject_faults`](crate::ServiceHandle::inject_faults),
/// [`reconfigure`](crate::ServiceHandle::reconfigure)) did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The configuration is invalid (or, for faults, fault injection is not compiled in: the
    /// cargo feature `fault-injection`); the error names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The supervisor is not running.
    #[error(transparent)]
    Gone(#[from] SupervisorGone),
}

/// A configuration value that cannot be used. Always names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field holds a value outside its allowed range.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `services.database.breaker.failure_rate_threshold`.
        field: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// The configuration text could not be parsed (syntax, unknown key, wrong type, negative
    /// number or wrong unit).
    #[error("cannot parse {}{}: {message}",
        field.as_ref().map_or_else(|| "configuration".to_string(), |f| format!("`{f}`")),
        line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Parse {
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// Dotted path of the offending key (`services.db.max_in_flight`), when known. Inside a
        /// `kind`-tagged table (`window`, `backoff`) it is the table's path, and the message
        /// names the key.
        field: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read configuration file `{path}`: {message}")]
    Io {
        /// The path that was read.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The thread of warden's [shared background
    /// runtime](crate::actors::BackgroundRuntime::shared), needed to start a supervisor outside
    /// an actix system, could not be started (the operating system's `io::Error`, as
    /// `std::thread::spawn` reports it; [`RegistryHandle::start`](crate::actors::RegistryHandle::start)
    /// returns the same error as it is).
    #[error("cannot start warden's background runtime thread: {message}")]
    Runtime {
        /// The I/O error.
        message: String,
    },
}

impl ConfigError {
    /// A field-level error.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix.` put before the field path, so nested sections report
    /// their full path (`breaker.minimum_calls` → `services.db.breaker.minimum_calls`).
    pub fn within(self, prefix: &str) -> Self {
        match self {
            ConfigError::Invalid { field, reason } => ConfigError::Invalid {
                field: format!("{prefix}.{field}"),
                reason,
            },
            other => other,
        }
    }

    /// The field this error names: always for [`ConfigError::Invalid`], when known for
    /// [`ConfigError::Parse`].
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Parse { field, .. } => field.as_deref(),
            ConfigError::Io { .. } | ConfigError::Runtime { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct_snake_case_names() {
        let errors: [CallError<()>; 15] = [
            CallError::Open { retry_after: None },
            CallError::TimedOut { attempts: 1 },
            CallError::DeadlineExceeded {
                attempts: 1,
                last: None,
            },
            CallError::Failed {
                last: (),
                attempts: 1,
            },
            CallError::RetriesExhausted {
                last: (),
                attempts: 1,
            },
            CallError::BudgetExhausted {
                last: (),
                attempts: 1,
            },
            CallError::RetryRefused {
                last: None,
                attempts: 1,
                retry_after: None,
            },
            CallError::RetryDeferred {
                last: (),
                attempts: 1,
                retry_after: Duration::ZERO,
            },
            CallError::Throttled { probability: 0.5 },
            CallError::RateLimited {
                retry_after: Duration::ZERO,
            },
            CallError::Overloaded,
            CallError::Panicked {
                message: String::new(),
                attempts: 1,
            },
            CallError::Injected { attempts: 1 },
            CallError::SupervisorGone,
            CallError::NoRuntime { attempts: 0 },
        ];
        let kinds: std::collections::HashSet<&str> = errors.iter().map(CallError::kind).collect();
        assert_eq!(kinds.len(), errors.len());
        assert!(kinds
            .iter()
            .all(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }

    #[test]
    fn map_last_maps_the_operations_error_and_keeps_every_other_field() {
        let error: CallError<u32> = CallError::RetriesExhausted {
            last: 7,
            attempts: 3,
        };
        assert!(matches!(
            error.map_last(|last| last.to_string()),
            CallError::RetriesExhausted { last, attempts: 3 } if last == "7"
        ));
        let refused: CallError<u32> = CallError::RetryRefused {
            last: None,
            attempts: 1,
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(matches!(
            refused.map_last(|last| last + 1),
            CallError::RetryRefused {
                last: None,
                attempts: 1,
                retry_after: Some(_)
            }
        ));
        let open: CallError<u32> = CallError::Open { retry_after: None };
        assert!(matches!(
            open.map_last(|last| last + 1),
            CallError::Open { retry_after: None }
        ));
    }

    #[test]
    fn try_map_last_stops_at_the_first_break() {
        let error: CallError<u32> = CallError::Failed {
            last: 404,
            attempts: 1,
        };
        assert_eq!(
            error
                .try_map_last(|last| if last == 404 {
                    Err("a response")
                } else {
                    Ok(last)
                })
                .err(),
            Some("a response")
        );
    }
}
