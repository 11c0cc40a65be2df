//! Fault injection: seeded latency, errors and hangs flow through the same timeout, health,
//! breaker and retry path as real ones, are counted and reported, stop when cleared or expired;
//! and without the cargo feature `fault-injection` every way to switch them on is refused.
//!
//! `cargo test --test chaos` runs the refusals; `cargo test --features fault-injection --test
//! chaos` runs the rest (CI runs both).

mod common;

use common::*;
use warden::prelude::*;

#[cfg(not(feature = "fault-injection"))]
mod without_the_feature {
    use super::*;
    use warden::ControlError;

    #[track_caller]
    fn assert_refused(error: &ConfigError, field: &str) {
        assert_eq!(error.field(), Some(field), "{error}");
        assert!(
            error
                .to_string()
                .contains("enable the cargo feature `fault-injection`"),
            "{error}"
        );
    }

    #[actix::test]
    async fn faults_are_refused_everywhere() {
        const { assert!(!warden::chaos::ENABLED) };
        // The builder...
        let error = ServiceSupervisor::builder("chaos-off")
            .config(plain_config())
            .faults(FaultConfig::new().errors(0.5))
            .start()
            .unwrap_err();
        assert_refused(&error, "faults");
        // ...a configuration file (even one that injects nothing)...
        let error = ServicesFile::from_toml_str(
            "[services.db]\ntimeout = \"1s\"\n\n[services.db.faults]\nerror_probability = 0.0\n",
        )
        .unwrap_err();
        assert_refused(&error, "services.db.faults");
        // ...and at run time.
        let svc = start("chaos-off", plain_config());
        match svc.inject_faults(FaultConfig::new().errors(1.0)).await {
            Err(ControlError::Config(error)) => assert_refused(&error, "faults"),
            other => panic!("expected a ConfigError, got {other:?}"),
        }
        // Nothing was injected; clearing is harmless.
        svc.clear_faults().await.unwrap();
        for _ in 0..100 {
            succeed(&svc).await.unwrap();
        }
        assert_eq!(svc.counts().await.unwrap().success, 100);
    }
}

#[cfg(feature = "fault-injection")]
mod with_the_feature {
    use super::*;

    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Duration;

    use actix::Actor;
    use tokio::time::Instant;
    use warden::messages::{EventKind, SupervisorEvent};
    use warden::observe::{self, PrometheusHandle};
    use warden::outcome::FaultKind;
    use warden::ControlError;

    fn recorder() -> &'static PrometheusHandle {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        HANDLE.get_or_init(|| observe::install_recorder().expect("first recorder of this process"))
    }

    /// The value of one exported series of `family` for `service` with `label`.
    fn exported(family: &str, service: &str, label: &str) -> u64 {
        let text = recorder().render();
        let series = format!("{family}{{service=\"{service}\",{label}}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |value| value.parse().expect("a number"))
    }

    fn events(svc: &ServiceHandle) -> Arc<Mutex<Vec<SupervisorEvent>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collector = Collector(Arc::clone(&seen)).start();
        let svc = svc.clone();
        actix::spawn(async move { svc.subscribe(collector.recipient()).await.unwrap() });
        seen
    }

    fn injected(seen: &Mutex<Vec<SupervisorEvent>>, kind: FaultKind) -> usize {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::FaultInjected { kind })
            .count()
    }

    /// A call that counts its invocations and succeeds at once.
    async fn counted(svc: &ServiceHandle, hits: &Hits) -> Result<(), CallError<DepError>> {
        let hits = hits.clone();
        svc.call(move || {
            hits.hit();
            async { Ok::<(), DepError>(()) }
        })
        .await
    }

    /// Within 5 standard deviations of `n × p` (binomial), so a change of seed still passes.
    #[track_caller]
    fn assert_rate(seen: usize, n: usize, p: f64) {
        let expected = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (seen as f64 - expected).abs() <= 5.0 * sd,
            "{seen} of {n}, expected about {expected}"
        );
    }

    #[actix::test]
    async fn injected_errors_come_at_their_rate_and_never_reach_the_dependency() {
        recorder();
        pause_aligned().await;
        let svc = ServiceSupervisor::builder("chaos-errors")
            .config(plain_config())
            .faults(FaultConfig::new().errors(0.25).seed(1))
            .start()
            .unwrap();
        let seen = events(&svc);
        settle().await;
        let hits = Hits::default();
        let mut failed = 0;
        for _ in 0..1000 {
            match counted(&svc, &hits).await {
                Ok(()) => {}
                Err(CallError::Injected { attempts: 1 }) => failed += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_rate(failed, 1000, 0.25);
        assert_eq!(
            hits.get() as usize,
            1000 - failed,
            "an injected error skips the op"
        );
        let counts = svc.counts().await.unwrap();
        assert_eq!(counts.failure as usize, failed);
        assert_eq!(counts.success as usize, 1000 - failed);
        assert_eq!(counts.attempts, 1000);
        // The health window saw them as failures.
        let health = svc.health().await.unwrap();
        assert!(health.stats.failures > 0);
        // Reported: events and the metric.
        settle().await;
        assert_eq!(injected(&seen, FaultKind::Error), failed);
        assert_eq!(
            exported(
                "warden_faults_injected_total",
                "chaos-errors",
                "kind=\"error\""
            ) as usize,
            failed
        );
        assert_eq!(
            exported(
                "warden_faults_injected_total",
                "chaos-errors",
                "kind=\"hang\""
            ),
            0
        );
    }

    #[actix::test]
    async fn the_same_seed_injects_the_same_faults() {
        pause_aligned().await;
        let run = |name: &str| {
            let svc = ServiceSupervisor::builder(name)
                .config(plain_config())
                .faults(FaultConfig::new().errors(0.5).seed(99))
                .start()
                .unwrap();
            async move {
                let mut answers = Vec::new();
                for _ in 0..64 {
                    answers.push(succeed(&svc).await.is_ok());
                }
                answers
            }
        };
        let first = run("chaos-seed-a").await;
        let second = run("chaos-seed-b").await;
        assert_eq!(first, second);
        assert!(first.contains(&true) && first.contains(&false));
    }

    #[actix::test]
    async fn injected_latency_delays_the_attempt_then_runs_the_operation() {
        pause_aligned().await;
        let svc = ServiceSupervisor::builder("chaos-latency")
            .config(plain_config())
            .faults(
                FaultConfig::new()
                    .latency(0.4, Duration::from_millis(200))
                    .seed(2),
            )
            .start()
            .unwrap();
        let hits = Hits::default();
        let mut delayed = 0;
        for _ in 0..500 {
            let begun = Instant::now();
            counted(&svc, &hits).await.unwrap();
            let took = begun.elapsed();
            if took >= Duration::from_millis(200) {
                assert_about(took, Duration::from_millis(200));
                delayed += 1;
            } else {
                assert!(took < Duration::from_millis(2), "{took:?}");
            }
        }
        assert_rate(delayed, 500, 0.4);
        assert_eq!(hits.get(), 500, "every operation ran");
        assert_eq!(svc.counts().await.unwrap().success, 500);
        // The health window measured the delays.
        let health = svc.health().await.unwrap();
        assert!(health.stats.p99.unwrap() >= Duration::from_millis(200));
    }

    #[actix::test]
    async fn latency_reaching_the_timeout_is_a_timeout_and_the_operation_never_runs() {
        pause_aligned().await;
        let svc = ServiceSupervisor::builder("chaos-slow")
            .config(SupervisorConfig {
                timeout: Some(Duration::from_millis(100)),
                ..plain_config()
            })
            .faults(FaultConfig::new().latency(1.0, Duration::from_millis(300)))
            .start()
            .unwrap();
        let hits = Hits::default();
        let begun = Instant::now();
        let answer = counted(&svc, &hits).await;
        assert!(
            matches!(answer, Err(CallError::TimedOut { attempts: 1 })),
            "{answer:?}"
        );
        assert_about(begun.elapsed(), Duration::from_millis(100));
        assert_eq!(hits.get(), 0);
        assert_eq!(svc.counts().await.unwrap().timeout, 1);
    }

    #[actix::test]
    async fn injected_hangs_end_in_the_timeout() {
        recorder();
        pause_aligned().await;
        let svc = ServiceSupervisor::builder("chaos-hang")
            .config(SupervisorConfig {
                timeout: Some(Duration::from_millis(100)),
                ..plain_config()
            })
            .faults(FaultConfig::new().hangs(0.3).seed(3))
            .start()
            .unwrap();
        let seen = events(&svc);
        settle().await;
        let hits = Hits::default();
        let mut hung = 0;
        for _ in 0..300 {
            let begun = Instant::now();
            match counted(&svc, &hits).await {
                Ok(()) => {}
                Err(CallError::TimedOut { attempts: 1 }) => {
                    assert_about(begun.elapsed(), Duration::from_millis(100));
                    hung += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_rate(hung, 300, 0.3);
        assert_eq!(hits.get() as usize, 300 - hung);
        let counts = svc.counts().await.unwrap();
        assert_eq!(counts.timeout as usize, hung);
        // Real timeouts: counted, reported and exported as such.
        settle().await;
        assert_eq!(injected(&seen, FaultKind::Hang), hung);
        let timeouts = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::TimedOut { .. }))
            .count();
        assert_eq!(timeouts, hung);
        let text = recorder().render();
        let line = format!("warden_timeouts_total{{service=\"chaos-hang\"}} {hung}");
        assert!(text.contains(&line), "{line} not in the exposition");
    }

    #[actix::test]
    async fn the_breaker_trips_on_injected_errors_and_retries_treat_them_as_transient() {
        pause_aligned().await;
        let svc = ServiceSupervisor::builder("chaos-trip")
            .config(SupervisorConfig {
                breaker: BreakerConfig::consecutive(3),
                retry: RetryConfig::constant(3, Duration::from_millis(10))
                    .budget(warden::retry::BudgetConfig::off()),
                ..plain_config()
            })
            .faults(FaultConfig::new().errors(1.0))
            .start()
            .unwrap();
        let seen = events(&svc);
        settle().await;
        let hits = Hits::default();
        // Three attempts, three injected errors: the breaker opens before a fourth.
        let answer = counted(&svc, &hits).await;
        assert!(
            matches!(answer, Err(CallError::Injected { attempts: 3 })),
            "{answer:?}"
        );
        assert_eq!(
            svc.breaker_status().await.unwrap().state,
            BreakerState::Open
        );
        let answer = counted(&svc, &hits).await;
        assert!(matches!(answer, Err(CallError::Open { .. })), "{answer:?}");
        assert_eq!(hits.get(), 0);
        let counts = svc.counts().await.unwrap();
        assert_eq!(
            (
                counts.failure,
                counts.rejected_open,
                counts.attempts,
                counts.retries
            ),
            (1, 1, 3, 2)
        );
        settle().await;
        assert_eq!(injected(&seen, FaultKind::Error), 3);
        assert!(seen.lock().unwrap().iter().any(|e| matches!(
            &e.kind,
            EventKind::StateChanged(t) if t.to == BreakerState::Open
        )));
    }

    #[actix::test]
    async fn faults_injected_at_run_time_stop_when_cleared() {
        pause_aligned().await;
        let svc = start("chaos-runtime", plain_config());
        let hits = Hits::default();
        counted(&svc, &hits).await.unwrap();
        svc.inject_faults(FaultConfig::new().errors(1.0))
            .await
            .unwrap();
        for _ in 0..5 {
            let answer = counted(&svc, &hits).await;
            assert!(
                matches!(answer, Err(CallError::Injected { .. })),
                "{answer:?}"
            );
        }
        svc.clear_faults().await.unwrap();
        for _ in 0..5 {
            counted(&svc, &hits).await.unwrap();
        }
        assert_eq!(hits.get(), 6);
        let counts = svc.counts().await.unwrap();
        assert_eq!((counts.success, counts.failure), (6, 5));

        // Invalid configurations are refused, naming the field.
        let refused = |result: Result<(), ControlError>| match result {
            Err(ControlError::Config(error)) => error.field().map(str::to_string),
            other => panic!("expected a ConfigError, got {other:?}"),
        };
        let field = refused(svc.inject_faults(FaultConfig::new().errors(1.5)).await);
        assert_eq!(field.as_deref(), Some("faults.error_probability"));
        // A hang needs a timeout or a deadline to end it.
        let untimed = ServiceSupervisor::builder("chaos-untimed")
            .config(plain_config())
            .timeout(None)
            .start()
            .unwrap();
        let field = refused(untimed.inject_faults(FaultConfig::new().hangs(0.1)).await);
        assert_eq!(field.as_deref(), Some("faults.hang_probability"));
        let error = ServiceSupervisor::builder("chaos-untimed-2")
            .config(plain_config())
            .timeout(None)
            .faults(FaultConfig::new().hangs(0.1))
            .start()
            .unwrap_err();
        assert_eq!(error.field(), Some("faults.hang_probability"));
        // Nothing was switched on by the refusals.
        counted(&svc, &hits).await.unwrap();
    }

    #[actix::test]
    async fn injection_stops_by_itself_when_it_expires() {
        pause_aligned().await;
        let svc = start("chaos-expiry", plain_config());
        svc.inject_faults(
            FaultConfig::new()
                .errors(1.0)
                .expires_after(Duration::from_secs(60)),
        )
        .await
        .unwrap();
        assert!(matches!(
            succeed(&svc).await,
            Err(CallError::Injected { .. })
        ));
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert!(matches!(
            succeed(&svc).await,
            Err(CallError::Injected { .. })
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        succeed(&svc).await.unwrap();
    }

    #[actix::test]
    async fn faults_configured_in_toml_apply_from_the_first_call() {
        pause_aligned().await;
        let file = ServicesFile::from_toml_str(
            r#"
            [services.db]
            timeout = "100ms"
            retry = { max_attempts = 1 }

            [services.db.faults]
            error_probability = 1.0
            expires_after = "1m"
            seed = 5
            "#,
        )
        .unwrap();
        let config = &file.services["db"];
        assert_eq!(
            config.faults,
            Some(
                FaultConfig::new()
                    .errors(1.0)
                    .expires_after(Duration::from_secs(60))
                    .seed(5)
            )
        );
        let registry = warden::RegistryHandle::start().unwrap();
        let handles = registry.spawn_all(file).await.unwrap();
        let answer = fail(&handles[0]).await;
        assert!(
            matches!(answer, Err(CallError::Injected { attempts: 1 })),
            "{answer:?}"
        );
        // Invalid values name their path.
        let error = ServicesFile::from_toml_str(
            "[services.db.faults]\nerror_probability = 0.5\nhang_probability = 0.6\n",
        )
        .unwrap_err();
        assert_eq!(error.field(), Some("services.db.faults.error_probability"));
    }
}
