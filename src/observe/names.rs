//! Metric names, label keys and the fixed label values. Labels are bounded: a service name and
//! the enums of [`outcome`](crate::outcome), never a per-request value (an error message, an id, a URL).

/// Counter: calls answered, by `service` and `outcome` ([`CallOutcome`](crate::outcome::CallOutcome)).
pub const CALLS_TOTAL: &str = "warden_calls_total";
/// Histogram (seconds): caller-observed duration of a call across all its attempts, by
/// `service` and `outcome`.
pub const CALL_DURATION_SECONDS: &str = "warden_call_duration_seconds";
/// Counter: retries started, by `service` and `reason` ([`RetryReason`](crate::outcome::RetryReason)).
pub const RETRY_ATTEMPTS_TOTAL: &str = "warden_retry_attempts_total";
/// Counter: attempts cancelled by the per-attempt timeout or the deadline, by `service`.
pub const TIMEOUTS_TOTAL: &str = "warden_timeouts_total";
/// Gauge: one series per `state` of the `service`'s breaker, 1 for the current state, else 0.
pub const CIRCUIT_STATE: &str = "warden_circuit_state";
/// Counter: breaker transitions, by `service`, `from` and `to`.
pub const CIRCUIT_TRANSITIONS_TOTAL: &str = "warden_circuit_transitions_total";
/// Gauge: one series per health `status` of the `service`, 1 for the current status, else 0.
pub const SERVICE_HEALTH: &str = "warden_service_health";
/// Gauge: calls admitted and not yet answered, by `service`.
pub const CALLS_IN_FLIGHT: &str = "warden_calls_in_flight";
/// Counter: calls or retries refused without reaching the dependency, by `service` and
/// `reason` ([`RejectReason`](crate::outcome::RejectReason)).
pub const CALLS_REJECTED_TOTAL: &str = "warden_calls_rejected_total";
/// Counter: calls refused before their first attempt (any reason), by `service` and
/// `criticality` ([`Criticality`](crate::criticality::Criticality)): where the cut falls under overload.
pub const CALLS_SHED_TOTAL: &str = "warden_calls_shed_total";
/// Counter: calls or retries a policy in observe-only mode ([`PolicyMode::Observe`](crate::mode::PolicyMode))
/// would have refused and let through, by `service` and `reason`
/// ([`RejectReason`](crate::outcome::RejectReason): `open`, `throttled`, `rate_limited`,
/// `overloaded`).
pub const WOULD_REJECT_TOTAL: &str = "warden_would_reject_total";

/// Gauge: the probability with which the `service`'s adaptive throttle refuses a new call
/// (0 when it is off or nothing is refused).
pub const THROTTLE_PROBABILITY: &str = "warden_throttle_probability";

/// Gauge: calls the `service` may have in flight now: the bulkhead's `max_in_flight`, or the
/// adaptive concurrency limit when one is configured.
pub const CONCURRENCY_LIMIT: &str = "warden_concurrency_limit";

/// Counter: faults injected into attempts on purpose ([fault injection](crate::chaos), cargo
/// feature `fault-injection`), by `service` and `kind` ([`FaultKind`](crate::outcome::FaultKind)).
pub const FAULTS_INJECTED_TOTAL: &str = "warden_faults_injected_total";
/// Counter: hedges started ([hedged requests](crate::messages::Call::idempotent)), by `service`.
pub const HEDGES_STARTED_TOTAL: &str = "warden_hedges_started_total";
/// Counter: calls a hedge answered first, by `service`.
pub const HEDGES_WON_TOTAL: &str = "warden_hedges_won_total";

/// Gauge: keys of a [keyed service](crate::keyed) with a supervisor of their own, by `service`.
pub const KEYED_KEYS: &str = "warden_keyed_keys";
/// Gauge: keys of a keyed service whose breaker is open (or half-open, or forced open), by
/// `service`.
pub const KEYED_OPEN_KEYS: &str = "warden_keyed_open_keys";
/// Counter: calls of a keyed service run under its shared overflow supervisor (every key slot
/// taken), by `service`.
pub const KEYED_OVERFLOW_CALLS_TOTAL: &str = "warden_keyed_overflow_calls_total";
/// Counter: idle keys dropped from a keyed service, by `service`.
pub const KEYED_EVICTIONS_TOTAL: &str = "warden_keyed_evictions_total";
/// Counter, rendered by warden's own `/metrics` routes: calls of one key, by `service`, `key`
/// and `outcome` (`success`, `failure`, `rejected`); keys beyond `labeled_keys` and the overflow
/// are summed under `key="_other"`. An evicted key's series disappear.
pub const KEY_CALLS_TOTAL: &str = "warden_key_calls_total";
/// Gauge, rendered like [`KEY_CALLS_TOTAL`]: 1 while the key's breaker keeps traffic off it
/// (open, half-open, forced open), else 0, by `service` and `key` (labeled keys only).
pub const KEY_OPEN: &str = "warden_key_open";

/// Gauge: 1 while a [fleet](crate::fleet) service decides on its own because the fleet's store
/// is away (its quota on the local share, its retries on its own budget), else 0; by `service`
/// and `part` (`quota`, `budget`).
pub const FLEET_FALLBACK: &str = "warden_fleet_fallback";
/// Counter: times a fleet service fell back from the fleet's store to its own share, by
/// `service` and `part`.
pub const FLEET_FALLBACKS_TOTAL: &str = "warden_fleet_fallbacks_total";

/// Label key: the service (dependency) name given to the supervisor.
pub const LABEL_SERVICE: &str = "service";
/// Label key of [`CALLS_TOTAL`] and [`CALL_DURATION_SECONDS`].
pub const LABEL_OUTCOME: &str = "outcome";
/// Label key of [`RETRY_ATTEMPTS_TOTAL`].
pub const LABEL_REASON: &str = "reason";
/// Label key of [`CIRCUIT_STATE`].
pub const LABEL_STATE: &str = "state";
/// Label key of [`SERVICE_HEALTH`].
pub const LABEL_STATUS: &str = "status";
/// Label key of [`CIRCUIT_TRANSITIONS_TOTAL`]: the state left.
pub const LABEL_FROM: &str = "from";
/// Label key of [`CIRCUIT_TRANSITIONS_TOTAL`]: the state entered.
pub const LABEL_TO: &str = "to";
/// Label key of [`FAULTS_INJECTED_TOTAL`].
pub const LABEL_KIND: &str = "kind";
/// Label key of [`KEY_CALLS_TOTAL`] and [`KEY_OPEN`]: the key, or `_other`.
pub const LABEL_KEY: &str = "key";
/// Label key: the shared part of a [fleet](crate::fleet) (`quota`, `budget`).
pub const LABEL_PART: &str = "part";
/// Label key: a call's [criticality](crate::criticality) (`critical`, `default`, `sheddable`).
pub const LABEL_CRITICALITY: &str = "criticality";
/// The [`LABEL_KEY`] value that sums the keys without series of their own.
pub const OTHER_KEYS: &str = "_other";

/// Every metric family the crate exports, with its help text.
pub const METRIC_FAMILIES: [(&str, &str); 24] = [
    (CALLS_TOTAL, "Calls answered, by outcome."),
    (
        CALL_DURATION_SECONDS,
        "Caller-observed call duration across all attempts, in seconds.",
    ),
    (RETRY_ATTEMPTS_TOTAL, "Retries started, by reason."),
    (
        TIMEOUTS_TOTAL,
        "Attempts cancelled by the per-attempt timeout or the overall deadline.",
    ),
    (
        CIRCUIT_STATE,
        "Circuit breaker state: 1 for the current state, 0 for the others.",
    ),
    (
        CIRCUIT_TRANSITIONS_TOTAL,
        "Circuit breaker state transitions.",
    ),
    (
        SERVICE_HEALTH,
        "Service health: 1 for the current status, 0 for the others.",
    ),
    (CALLS_IN_FLIGHT, "Calls admitted and not yet answered."),
    (
        CALLS_REJECTED_TOTAL,
        "Calls or retries refused without reaching the dependency, by reason.",
    ),
    (
        CALLS_SHED_TOTAL,
        "Calls refused before their first attempt, by criticality.",
    ),
    (
        WOULD_REJECT_TOTAL,
        "Calls or retries a policy in observe-only mode would have refused and let through, by reason.",
    ),
    (
        THROTTLE_PROBABILITY,
        "Probability with which the adaptive throttle refuses a new call.",
    ),
    (
        CONCURRENCY_LIMIT,
        "Calls allowed in flight now (bulkhead, or the adaptive concurrency limit).",
    ),
    (
        FAULTS_INJECTED_TOTAL,
        "Faults injected into attempts on purpose (fault injection), by kind.",
    ),
    (
        HEDGES_STARTED_TOTAL,
        "Hedges started: extra attempts of idempotent calls slower than the hedge delay.",
    ),
    (
        HEDGES_WON_TOTAL,
        "Calls a hedge answered first (the attempt it hedged was cancelled).",
    ),
    (
        KEYED_KEYS,
        "Keys of a keyed service with a supervisor of their own.",
    ),
    (
        KEYED_OPEN_KEYS,
        "Keys of a keyed service whose breaker keeps traffic off them.",
    ),
    (
        KEYED_OVERFLOW_CALLS_TOTAL,
        "Calls of a keyed service run under its shared overflow supervisor.",
    ),
    (
        KEYED_EVICTIONS_TOTAL,
        "Idle keys dropped from a keyed service.",
    ),
    (
        KEY_CALLS_TOTAL,
        "Calls of one key of a keyed service, by outcome (unlabeled keys under key=\"_other\").",
    ),
    (
        KEY_OPEN,
        "1 while one key's breaker keeps traffic off it, else 0.",
    ),
    (
        FLEET_FALLBACK,
        "1 while a fleet service decides on its own share because the fleet's store is away.",
    ),
    (
        FLEET_FALLBACKS_TOTAL,
        "Times a fleet service fell back from the fleet's store to its own share.",
    ),
];

/// The families warden renders itself (per-key series of keyed services, which must disappear
/// with their key), not through the `metrics` recorder.
pub const RENDERED_FAMILIES: [&str; 2] = [KEY_CALLS_TOTAL, KEY_OPEN];
