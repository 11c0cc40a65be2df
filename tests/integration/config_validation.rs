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
fn optional_settings_switch_off_with_off() {
    let file = ServicesFile::from_toml_str(
        r#"
        [services.batch]
        timeout = "off"
        deadline = "off"
        [services.batch.breaker]
        failure_rate_threshold = "off"
        [services.batch.health]
        max_age = "off"
        degraded_latency = "off"
        unhealthy_latency = "off"
        [services.batch.retry]
        budget = "off"
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
    assert!(!batch.retry.budget.enabled);
    // And back: a loaded file serializes to TOML that loads to the same configuration.
    let text = toml::to_string(&file).unwrap();
    assert_eq!(ServicesFile::from_toml_str(&text).unwrap(), file);
    // Off has one spelling: `false` is refused, naming the field and the word to write.
    for (body, field) in [
        ("timeout = false", "services.s.timeout"),
        (
            "[services.s.breaker]\nconsecutive_failures = false",
            "services.s.breaker.consecutive_failures",
        ),
        (
            "[services.s.retry.budget]\nenabled = false",
            "services.s.retry.budget",
        ),
    ] {
        let text = format!("[services.s]\n{body}\n");
        let err = ServicesFile::from_toml_str(&text).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse { field: Some(f), .. } if f.starts_with(field)),
            "{body}: {err}"
        );
    }
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
        // Every float field: negative, NaN, infinite, above its range.
        ("breaker = { failure_rate_threshold = -0.5 }", "services.s.breaker.failure_rate_threshold"),
        ("breaker = { failure_rate_threshold = inf }", "services.s.breaker.failure_rate_threshold"),
        ("breaker = { slow_call_rate_threshold = 1.01 }", "services.s.breaker.slow_call_rate_threshold"),
        ("breaker = { slow_call_rate_threshold = nan }", "services.s.breaker.slow_call_rate_threshold"),
        ("breaker = { slow_call_rate_threshold = 0 }", "services.s.breaker.slow_call_rate_threshold"),
        ("breaker = { open_duration = { multiplier = nan } }", "services.s.breaker.open_duration.multiplier"),
        ("breaker = { open_duration = { multiplier = inf } }", "services.s.breaker.open_duration.multiplier"),
        ("breaker = { open_duration = { multiplier = -2.0 } }", "services.s.breaker.open_duration.multiplier"),
        ("breaker = { open_duration = { jitter = -0.1 } }", "services.s.breaker.open_duration.jitter"),
        ("breaker = { open_duration = { jitter = nan } }", "services.s.breaker.open_duration.jitter"),
        ("breaker = { open_duration = { base = \"0s\" } }", "services.s.breaker.open_duration.base"),
        ("breaker = { open_duration = { max = \"1s\" } }", "services.s.breaker.open_duration.max"),
        ("retry = { backoff = { kind = \"exponential\", base = \"1s\", factor = nan } }", "services.s.retry.backoff.factor"),
        ("retry = { backoff = { kind = \"exponential\", base = \"1s\", factor = -inf } }", "services.s.retry.backoff.factor"),
        ("retry = { backoff = { kind = \"full_jitter\", base = \"0s\" } }", "services.s.retry.backoff.base"),
        ("retry = { backoff = { kind = \"decorrelated_jitter\", base = \"0ms\" } }", "services.s.retry.backoff.base"),
        ("retry = { budget = { ratio = -0.2 } }", "services.s.retry.budget.ratio"),
        ("retry = { budget = { ratio = inf } }", "services.s.retry.budget.ratio"),
        ("retry = { budget = { window = \"500ms\" } }", "services.s.retry.budget.window"),
        ("health = { degraded_success_rate = nan }", "services.s.health.degraded_success_rate"),
        ("health = { degraded_success_rate = -0.1 }", "services.s.health.degraded_success_rate"),
        ("health = { unhealthy_success_rate = nan }", "services.s.health.unhealthy_success_rate"),
        ("health = { unhealthy_success_rate = -inf }", "services.s.health.unhealthy_success_rate"),
        ("health = { unhealthy_latency = \"0s\" }", "services.s.health.unhealthy_latency"),
        ("health = { window_size = 5, minimum_calls = 6 }", "services.s.health.minimum_calls"),
        // max < min in every pair.
        ("timeout = \"10s\"\ndeadline = \"9999ms\"", "services.s.deadline"),
        ("health = { degraded_latency = \"2s\", unhealthy_latency = \"1999ms\" }", "services.s.health.unhealthy_latency"),
        ("health = { degraded_success_rate = 0.5, unhealthy_success_rate = 0.51 }", "services.s.health.unhealthy_success_rate"),
        ("retry = { backoff = { kind = \"constant\", delay = \"2s\" }, max_delay = \"1s\" }", "services.s.retry.max_delay"),
        ("breaker = { consecutive_failures = \"off\", failure_rate_threshold = \"off\" }", "services.s.breaker.consecutive_failures"),
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
        Err(ConfigError::Parse { line, message, .. }) => {
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

/// Loads `text` and returns the parse error's (line, field, message).
fn parse_error(text: &str) -> (Option<usize>, Option<String>, String) {
    match ServicesFile::from_toml_str(text) {
        Err(ConfigError::Parse {
            line,
            field,
            message,
        }) => (line, field, message),
        other => panic!("{text:?} gave {other:?}"),
    }
}

/// Negative numbers, wrong duration units, bare numbers for durations and wrong types are
/// parse errors naming the key's full path and its line, for every field.
#[test]
fn every_unparsable_value_names_its_key_and_line() {
    let s = "services.s";
    let cases: &[(&str, &str)] = &[
        // negative integers
        ("max_in_flight = -1", "max_in_flight"),
        ("mailbox_capacity = -64", "mailbox_capacity"),
        ("seed = -5", "seed"),
        (
            "breaker.consecutive_failures = -3",
            "breaker.consecutive_failures",
        ),
        ("breaker.minimum_calls = -1", "breaker.minimum_calls"),
        ("breaker.half_open_probes = -1", "breaker.half_open_probes"),
        ("retry.max_attempts = -2", "retry.max_attempts"),
        (
            "retry.budget.min_per_second = -10",
            "retry.budget.min_per_second",
        ),
        ("health.window_size = -100", "health.window_size"),
        ("health.minimum_calls = -1", "health.minimum_calls"),
        // An internally tagged table is read whole: the error names the table.
        (
            "breaker.window = { kind = \"count\", size = -3 }",
            "breaker.window",
        ),
        // wrong types
        ("max_in_flight = 1.5", "max_in_flight"),
        (
            "breaker.consecutive_failures = true",
            "breaker.consecutive_failures",
        ),
        (
            "breaker.failure_rate_threshold = \"half\"",
            "breaker.failure_rate_threshold",
        ),
        ("retry.budget.enabled = \"yes\"", "retry.budget.enabled"),
        (
            "health.degraded_success_rate = \"high\"",
            "health.degraded_success_rate",
        ),
        // wrong units, negative and bare-number durations
        ("timeout = \"5 parsecs\"", "timeout"),
        ("timeout = \"-1s\"", "timeout"),
        ("timeout = 5", "timeout"),
        ("deadline = \"30 sec please\"", "deadline"),
        (
            "breaker.slow_call_duration = \"2 fortnights\"",
            "breaker.slow_call_duration",
        ),
        (
            "breaker.half_open_max_wait = \"1h30\"",
            "breaker.half_open_max_wait",
        ),
        (
            "breaker.open_duration = { base = \"3 eons\" }",
            "breaker.open_duration.base",
        ),
        (
            "breaker.open_duration = { max = 300 }",
            "breaker.open_duration.max",
        ),
        ("retry.max_delay = \"10 s s\"", "retry.max_delay"),
        ("retry.budget.window = \"-10s\"", "retry.budget.window"),
        ("health.max_age = \"a minute\"", "health.max_age"),
        ("health.max_age = true", "health.max_age"),
        ("timeout = 5", "timeout"),
        (
            "health.degraded_latency = \"1 lightyear\"",
            "health.degraded_latency",
        ),
        (
            "health.unhealthy_latency = \"5 sekunden\"",
            "health.unhealthy_latency",
        ),
        (
            "breaker.window = { kind = \"time\", duration = \"ten seconds\" }",
            "breaker.window",
        ),
        (
            "retry.backoff = { kind = \"constant\", delay = \"1 blink\" }",
            "retry.backoff",
        ),
        // unknown variants
        (
            "breaker.window = { kind = \"sliding\", size = 3 }",
            "breaker.window.kind",
        ),
        (
            "retry.backoff = { kind = \"fibonacci\", base = \"1s\" }",
            "retry.backoff.kind",
        ),
    ];
    for (body, field) in cases {
        // The offending key on line 4, after a header, a comment and a valid key.
        let text = format!("[services.s]\n# comment\ntimeout = \"1s\"\n{body}\n");
        let text = if body.starts_with("timeout") {
            text.replace("timeout = \"1s\"\n", "\n")
        } else {
            text
        };
        let (line, got, message) = parse_error(&text);
        assert_eq!(line, Some(4), "line for {body}: {message}");
        assert_eq!(
            got.as_deref(),
            Some(format!("{s}.{field}").as_str()),
            "for {body}: {message}"
        );
        let shown = ConfigError::Parse {
            line,
            field: got,
            message,
        }
        .to_string();
        assert!(
            shown.starts_with(&format!("cannot parse `{s}.{field}` at line 4: ")),
            "{shown}"
        );
    }
}

/// An unknown key at any level names the key (message) and the table holding it (field), with
/// the line.
#[test]
fn unknown_keys_at_every_level_are_named_with_their_line() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("[service.db]\ntimeout = \"1s\"\n", "service", Some("service")),
        ("[services.db]\ntimout = \"1s\"\n", "timout", Some("services.db.timout")),
        ("[services.db.breaker]\nconsecutive = 3\n", "consecutive", Some("services.db.breaker.consecutive")),
        ("[services.db]\nbreaker = { window = { kind = \"count\", sise = 3 } }\n", "sise", Some("services.db.breaker.window")),
        ("[services.db.breaker.open_duration]\nbase = \"1s\"\nmaximum = \"2s\"\n", "maximum", Some("services.db.breaker.open_duration.maximum")),
        ("[services.db.retry]\nattempts = 3\n", "attempts", Some("services.db.retry.attempts")),
        ("[services.db.retry]\nbackoff = { kind = \"exponential\", base = \"1s\", factr = 2.0 }\n", "factr", Some("services.db.retry.backoff")),
        ("[services.db.retry.budget]\nfloor = 3\n", "floor", Some("services.db.retry.budget.floor")),
        ("[services.db.health]\nwindow = 3\n", "window", Some("services.db.health.window")),
    ];
    for (text, key, field) in cases {
        let (line, got, message) = parse_error(text);
        let expected_line = text.lines().position(|l| l.contains(key)).map(|i| i + 1);
        assert_eq!(line, expected_line, "{text:?}: {message}");
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert_eq!(got.as_deref(), *field, "{text:?}");
    }
}

#[test]
fn service_names_empty_blank_control_long_and_duplicate_are_refused() {
    for name in ["\"\"", "\"   \"", "\"db\\u0007\"", "\"tab\\there\""] {
        let err = ServicesFile::from_toml_str(&format!("[services.{name}]\ntimeout = \"1s\"\n"))
            .unwrap_err();
        assert_eq!(err.field(), Some("services.name"), "{name}: {err}");
    }
    let long = "x".repeat(129);
    let err =
        ServicesFile::from_toml_str(&format!("[services.{long}]\ntimeout = \"1s\"\n")).unwrap_err();
    assert_eq!(err.field(), Some("services.name"), "{err}");
    assert!(ServicesFile::from_toml_str(&format!("[services.{}]\n", "x".repeat(128))).is_ok());

    // Twice the same service: the second table is named with its line.
    let (line, field, message) =
        parse_error("[services.db]\ntimeout = \"1s\"\n\n[services.db]\ntimeout = \"2s\"\n");
    assert_eq!(line, Some(4));
    assert_eq!(field.as_deref(), Some("services.db"));
    assert!(message.contains("duplicate"), "{message}");
    // The same key twice in a table.
    let (line, field, message) = parse_error("[services.db]\ntimeout = \"1s\"\ntimeout = \"2s\"\n");
    assert_eq!(
        (line, field.as_deref()),
        (Some(3), Some("timeout")),
        "{message}"
    );
    // Dotted and inline forms of the same service.
    let (line, _, message) =
        parse_error("services.db.timeout = \"1s\"\n[services.db]\nmax_in_flight = 3\n");
    assert_eq!(line, Some(2), "{message}");
}

#[test]
fn syntax_errors_carry_the_line() {
    for (text, expected) in [
        ("[services.db\ntimeout = \"1s\"\n", 1),
        ("[services.db]\ntimeout = \n", 2),
        ("[services.db]\n\n\ntimeout = \"1s\n", 4),
        ("[services.db]\nmax_in_flight = 3 3\n", 2),
        ("services = 5\n", 1),
    ] {
        let (line, _, message) = parse_error(text);
        assert_eq!(line, Some(expected), "{text:?}: {message}");
        let err = ServicesFile::from_toml_str(text).unwrap_err().to_string();
        assert!(err.contains(&format!("at line {expected}")), "{err}");
        assert!(err.starts_with("cannot parse"), "{err}");
    }
}

/// NaN, infinities and out-of-range values built in code (not only from TOML) are refused by
/// `validate` with the field named, without panicking.
#[test]
fn values_built_in_code_are_validated_too() {
    let cases: Vec<(SupervisorConfig, &str)> = vec![
        (
            SupervisorConfig {
                timeout: Some(Duration::ZERO),
                ..SupervisorConfig::default()
            },
            "timeout",
        ),
        (
            SupervisorConfig {
                breaker: BreakerConfig::default().failure_rate(
                    f64::NAN,
                    SlidingWindow::default(),
                    10,
                ),
                ..SupervisorConfig::default()
            },
            "breaker.failure_rate_threshold",
        ),
        (
            SupervisorConfig {
                breaker: BreakerConfig::default().slow_calls(f64::INFINITY, Duration::from_secs(1)),
                ..SupervisorConfig::default()
            },
            "breaker.slow_call_rate_threshold",
        ),
        (
            SupervisorConfig {
                breaker: BreakerConfig::default().open_exponential(
                    Duration::from_secs(1),
                    Duration::from_secs(5),
                    f64::NAN,
                ),
                ..SupervisorConfig::default()
            },
            "breaker.open_duration.multiplier",
        ),
        (
            SupervisorConfig {
                breaker: BreakerConfig::default().jitter(f64::NEG_INFINITY),
                ..SupervisorConfig::default()
            },
            "breaker.open_duration.jitter",
        ),
        (
            SupervisorConfig {
                retry: RetryConfig::default().budget(BudgetConfig {
                    ratio: f64::NAN,
                    ..BudgetConfig::default()
                }),
                ..SupervisorConfig::default()
            },
            "retry.budget.ratio",
        ),
        (
            SupervisorConfig {
                health: HealthConfig {
                    degraded_success_rate: f64::NAN,
                    ..HealthConfig::default()
                },
                ..SupervisorConfig::default()
            },
            "health.degraded_success_rate",
        ),
    ];
    for (config, field) in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
        let err = ServiceSupervisor::builder("db")
            .config(config)
            .validate()
            .unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }
}
