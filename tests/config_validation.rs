//! Configuration: a TOML file of several services loads with human-readable durations; every
//! invalid value is a `ConfigError` naming its field; parse errors carry the line.

use std::time::Duration;

use warden::prelude::*;

const SERVICES: &str = r#"
[services.database]
timeout = "2s"
max_in_flight = 32

[services.database.breaker]
consecutive_failures = 3
failure_rate_threshold = 0.5
window = { kind = "count", size = 50 }
minimum_calls = 10
open_duration = { base = "30s", max = "5m", multiplier = 2.0, jitter = 0.1 }

[services.database.retry]
max_attempts = 3
backoff = { kind = "full_jitter", base = "100ms" }
max_delay = "2s"

[services.external_api]
timeout = "10s"
deadline = "30s"

[services.external_api.breaker]
window = { kind = "time", duration = "30s" }
slow_call_rate_threshold = 0.5
slow_call_duration = "5s"

[services.external_api.retry]
backoff = { kind = "decorrelated_jitter", base = "200ms" }
budget = { ratio = 0.1, min_per_second = 5, window = "10s" }

[services.cache]
timeout = "50ms"
health = { degraded_latency = "20ms", unhealthy_latency = "100ms" }
"#;

#[test]
fn toml_file_of_several_services_loads() {
    let file = ServicesFile::from_toml_str(SERVICES).unwrap();
    assert_eq!(file.services.len(), 3);
    let db = &file.services["database"];
    assert_eq!(db.timeout, Some(Duration::from_secs(2)));
    assert_eq!(db.breaker.consecutive_failures, Some(3));
    assert_eq!(db.breaker.open_duration.max, Duration::from_secs(300));
    assert_eq!(
        db.retry.backoff,
        Backoff::FullJitter {
            base: Duration::from_millis(100)
        }
    );
    let api = &file.services["external_api"];
    assert_eq!(
        api.breaker.window,
        SlidingWindow::Time {
            duration: Duration::from_secs(30)
        }
    );
    assert_eq!(api.retry.budget.ratio, 0.1);
    let cache = &file.services["cache"];
    assert_eq!(cache.timeout, Some(Duration::from_millis(50)));
    assert_eq!(
        cache.health.degraded_latency,
        Some(Duration::from_millis(20))
    );
    // Unspecified fields keep their defaults.
    assert_eq!(
        cache.max_in_flight,
        SupervisorConfig::default().max_in_flight
    );
}

#[test]
fn optional_settings_switch_off_with_false_or_off() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.batch]
        timeout = false
        deadline = "off"
        [services.batch.breaker]
        failure_rate_threshold = false
        [services.batch.health]
        max_age = false
        degraded_latency = "off"
        unhealthy_latency = false
        "#,
    )
    .unwrap();
    let batch = &file.services["batch"];
    assert_eq!((batch.timeout, batch.deadline), (None, None));
    assert_eq!(batch.breaker.failure_rate_threshold, None);
    assert_eq!(batch.health.max_age, None);
    assert_eq!(
        (
            batch.health.degraded_latency,
            batch.health.unhealthy_latency
        ),
        (None, None)
    );
    // And back: a loaded file serializes to TOML that loads to the same configuration.
    let text = toml::to_string(&file).unwrap();
    assert_eq!(ServicesFile::from_toml_str(&text).unwrap(), file);
}

#[test]
fn toml_file_loads_from_disk_and_missing_file_is_an_io_error() {
    let dir = std::env::temp_dir().join(format!("warden-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("services.toml");
    std::fs::write(&path, SERVICES).unwrap();
    assert_eq!(
        ServicesFile::from_toml_file(&path).unwrap().services.len(),
        3
    );
    let err = ServicesFile::from_toml_file(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Loads one service `s` with `body` as its section and returns the error's field.
fn invalid_field(body: &str) -> String {
    let text = format!("[services.s]\n{body}\n");
    match ServicesFile::from_toml_str(&text) {
        Err(ConfigError::Invalid { field, reason }) => {
            assert!(!reason.is_empty());
            assert_eq!(reason, reason.to_lowercase(), "lowercase reason");
            field
        }
        other => panic!("{body:?} gave {other:?}"),
    }
}

#[test]
fn every_invalid_value_names_its_field() {
    let cases: &[(&str, &str)] = &[
        ("timeout = \"0s\"", "services.s.timeout"),
        ("deadline = \"0s\"", "services.s.deadline"),
        ("timeout = \"5s\"\ndeadline = \"1s\"", "services.s.deadline"),
        ("max_in_flight = 0", "services.s.max_in_flight"),
        ("mailbox_capacity = 0", "services.s.mailbox_capacity"),
        ("breaker = { consecutive_failures = 0 }", "services.s.breaker.consecutive_failures"),
        ("breaker = { failure_rate_threshold = 0.0 }", "services.s.breaker.failure_rate_threshold"),
        ("breaker = { failure_rate_threshold = 1.5 }", "services.s.breaker.failure_rate_threshold"),
        ("breaker = { failure_rate_threshold = nan }", "services.s.breaker.failure_rate_threshold"),
        ("breaker = { slow_call_rate_threshold = -0.1 }", "services.s.breaker.slow_call_rate_threshold"),
        ("breaker = { slow_call_duration = \"0s\" }", "services.s.breaker.slow_call_duration"),
        ("breaker = { window = { kind = \"count\", size = 0 } }", "services.s.breaker.window.size"),
        ("breaker = { window = { kind = \"time\", duration = \"0s\" } }", "services.s.breaker.window.duration"),
        ("breaker = { minimum_calls = 0 }", "services.s.breaker.minimum_calls"),
        ("breaker = { open_duration = { base = \"0s\", max = \"1s\", multiplier = 2.0, jitter = 0.0 } }", "services.s.breaker.open_duration.base"),
        ("breaker = { open_duration = { base = \"10s\", max = \"1s\", multiplier = 2.0, jitter = 0.0 } }", "services.s.breaker.open_duration.max"),
        ("breaker = { open_duration = { base = \"1s\", max = \"10s\", multiplier = 0.5, jitter = 0.0 } }", "services.s.breaker.open_duration.multiplier"),
        ("breaker = { open_duration = { base = \"1s\", max = \"10s\", multiplier = 2.0, jitter = 1.0 } }", "services.s.breaker.open_duration.jitter"),
        ("breaker = { half_open_probes = 0 }", "services.s.breaker.half_open_probes"),
        ("breaker = { half_open_max_wait = \"0s\" }", "services.s.breaker.half_open_max_wait"),
        ("retry = { max_attempts = 0 }", "services.s.retry.max_attempts"),
        ("retry = { backoff = { kind = \"exponential\", base = \"0s\", factor = 2.0 } }", "services.s.retry.backoff.base"),
        ("retry = { backoff = { kind = \"exponential\", base = \"1s\", factor = 0.5 } }", "services.s.retry.backoff.factor"),
        ("retry = { max_delay = \"0s\" }", "services.s.retry.max_delay"),
        ("retry = { backoff = { kind = \"full_jitter\", base = \"5s\" }, max_delay = \"1s\" }", "services.s.retry.max_delay"),
        ("retry = { budget = { ratio = 1.5 } }", "services.s.retry.budget.ratio"),
        ("retry = { budget = { ratio = nan } }", "services.s.retry.budget.ratio"),
        ("retry = { budget = { window = \"0s\" } }", "services.s.retry.budget.window"),
        ("health = { window_size = 0 }", "services.s.health.window_size"),
        ("health = { max_age = \"0s\" }", "services.s.health.max_age"),
        ("health = { minimum_calls = 0 }", "services.s.health.minimum_calls"),
        ("health = { minimum_calls = 500 }", "services.s.health.minimum_calls"),
        ("health = { degraded_success_rate = 1.5 }", "services.s.health.degraded_success_rate"),
        ("health = { unhealthy_success_rate = 0.99 }", "services.s.health.unhealthy_success_rate"),
        ("health = { degraded_latency = \"0s\" }", "services.s.health.degraded_latency"),
        ("health = { unhealthy_latency = \"10ms\" }", "services.s.health.unhealthy_latency"),
    ];
    for (body, field) in cases {
        assert_eq!(invalid_field(body), *field, "for {body}");
    }
}

#[test]
fn a_breaker_with_no_trip_policy_is_refused() {
    let mut config = SupervisorConfig::default();
    config.breaker.consecutive_failures = None;
    config.breaker.failure_rate_threshold = None;
    config.breaker.slow_call_rate_threshold = None;
    let err = config.validate().unwrap_err();
    assert_eq!(err.field(), Some("breaker.consecutive_failures"));
}

#[test]
fn parse_errors_carry_the_line_and_name_the_key() {
    let unknown_key = "[services.db]\ntimeout = \"1s\"\ntimout_typo = \"2s\"\n";
    match ServicesFile::from_toml_str(unknown_key) {
        Err(ConfigError::Parse { line, message }) => {
            assert_eq!(line, Some(3));
            assert!(message.contains("timout_typo"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let wrong_unit = "[services.db]\n\ntimeout = \"5 parsecs\"\n";
    match ServicesFile::from_toml_str(wrong_unit) {
        Err(ConfigError::Parse { line, .. }) => assert_eq!(line, Some(3)),
        other => panic!("{other:?}"),
    }
    let wrong_type = "[services.db]\nmax_in_flight = \"many\"\n";
    assert!(matches!(
        ServicesFile::from_toml_str(wrong_type),
        Err(ConfigError::Parse { line: Some(2), .. })
    ));
    let duplicate = "[services.db]\ntimeout = \"1s\"\n[services.db]\ntimeout = \"2s\"\n";
    assert!(matches!(
        ServicesFile::from_toml_str(duplicate),
        Err(ConfigError::Parse { line: Some(3), .. })
    ));
    let negative = "[services.db]\nmax_in_flight = -1\n";
    assert!(matches!(
        ServicesFile::from_toml_str(negative),
        Err(ConfigError::Parse { line: Some(2), .. })
    ));
}

#[test]
fn empty_service_name_is_refused() {
    let err = ServicesFile::from_toml_str("[services.\"\"]\ntimeout = \"1s\"\n").unwrap_err();
    assert_eq!(err.field(), Some("services.name"));
}

#[test]
fn builder_refuses_invalid_values_without_panicking() {
    let err = ServiceSupervisor::builder("db")
        .max_in_flight(0)
        .validate()
        .unwrap_err();
    assert_eq!(err.field(), Some("max_in_flight"));
    let err = ServiceSupervisor::builder("").validate().unwrap_err();
    assert_eq!(err.field(), Some("name"));
    assert_eq!(err.to_string(), "invalid `name`: must not be empty");
}
